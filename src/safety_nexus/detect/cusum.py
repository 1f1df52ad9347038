"""Level shifts: two-sided CUSUM (Page, 1954) on the standardised, winsorised residual.

For each allowance k in `cusum_k` (in sigmas) the detector runs an upper and a lower statistic
S ← max(0, S ± z − k) and fires when one exceeds its threshold h. A small k catches shifts far
below any threshold (a sustained 0.1σ shift is found in about 1.5 thousand samples with the
defaults); a large k keeps big shifts quick. On firing the statistics of that signal reset, the
shift is estimated from the run (k + S/N sigmas, the CUSUM's own maximum-likelihood-style
estimate) and reported in the signal's unit, and the baseline is told to slow down so that the
new level is not absorbed as normal. The finding clears when the statistic has not fired again
for `hysteresis` × the detection run.

Example (seeded): a 0.25σ step at sample 3000 on one of two signals.

>>> import numpy as np
>>> from safety_nexus.core import Frame
>>> from safety_nexus.detect import DetectorBank
>>> from safety_nexus.detect.testing import make_table
>>> rng = np.random.default_rng(1)
>>> values = rng.normal(size=(6000, 2))
>>> values[3000:, 1] += 0.25
>>> bank = DetectorBank(make_table(2), detectors=["cusum"])
>>> result = bank.process(Frame(np.arange(6000.0), values))
>>> [(f.signal, f.kind.value) for f in result.findings]
[('a1.s1', 'level_shift')]
>>> f = result.findings[0]
>>> 3000 < f.time < 4500, round(f.deviation, 1)
(True, 0.3)
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from safety_nexus.core.types import FindingKind
from safety_nexus.detect.base import (
    F64,
    ActiveSet,
    BaselineView,
    Bools,
    Columns,
    Cusum,
    Hits,
    Index,
    ScratchState,
    hold_until,
)
from safety_nexus.detect.config import DetectConfig


class LevelShiftDetector(ScratchState):
    """CUSUM bank for level shifts of unknown size (one up/down pair per allowance)."""

    name: ClassVar[str] = "cusum"
    kind: ClassVar[FindingKind] = FindingKind.LEVEL_SHIFT
    evidence_unit: ClassVar[str] = "{unit}"

    def __init__(self, cols: Columns, config: DetectConfig) -> None:
        self.config = config
        self.period = cols.period
        ks = list(config.cusum_k)
        hs = list(config.cusum_h)
        self._cusum = Cusum([1.0] * len(ks) + [-1.0] * len(ks), ks + ks, hs + hs, cols.n)
        self._act = ActiveSet(cols.n)
        self._clear_at: F64 = np.full(cols.n, np.inf, dtype=np.float64)

    def _alloc_scratch(self) -> None:
        pass

    def nbytes(self) -> int:
        return self._cusum.nbytes() + self._act.nbytes() + self._clear_at.nbytes

    @property
    def active(self) -> Bools:
        return self._act.mask

    def update(self, t: float, x: F64, ctx: BaselineView) -> Hits | None:
        del x
        fired = self._cusum.step(ctx.zc, ctx.pw)
        if not fired and not len(self._act):
            return None
        return self._events(t, ctx, fired)

    def _events(self, t: float, ctx: BaselineView, fired: bool) -> Hits | None:
        cfg = self.config
        onsets: Index = np.empty(0, dtype=np.intp)
        score = observed = baseline = sigma = np.empty(0)
        if fired:
            cols = np.flatnonzero(self._cusum.fired.any(axis=0))
            row, ratio, runs = self._cusum.best(cols)
            cs = self._cusum
            k = cs.k[row, 0].astype(np.float64)
            sgn = cs.sign[row, 0].astype(np.float64)
            shift = sgn * (k + cs.S[row, cols] / np.maximum(runs, 1.0))  # in sigmas
            cs.reset(cols)
            new = ~self._act.mask[cols]
            onsets = cols[new]
            self._clear_at[cols] = hold_until(
                t, runs, self.period[cols], cfg.hysteresis, cfg.min_hold
            )
            if onsets.shape[0]:
                sd = ctx.std[onsets].astype(np.float64)
                mu = ctx.mean[onsets]
                score = ratio[new]
                observed = mu + shift[new] * sd
                baseline = mu
                sigma = sd
                self._act.add(onsets)
                ctx.set_gate(onsets, self.config.shift_adapt, 0.0)
        recovered: Index = np.empty(0, dtype=np.intp)
        if len(self._act):
            idx = self._act.idx
            recovered = idx[self._clear_at[idx] < t]
            if recovered.shape[0]:
                self._act.remove(recovered)
                self._clear_at[recovered] = np.inf
                ctx.set_gate(recovered, 1.0, 1.0)
        if onsets.shape[0] or recovered.shape[0]:
            return Hits(onsets, score, observed, baseline, sigma, recovered)
        return None
