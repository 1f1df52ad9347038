"""Level shifts: two-sided CUSUM (Page, 1954) on the standardised, winsorised residual.

For each allowance k in `cusum_k` (in sigmas) the detector runs an upper and a lower statistic
S ← max(0, S ± z − k) and fires when one exceeds its threshold h. A small k catches shifts far
below any threshold (a sustained 0.1σ shift is found in about 1.5 thousand samples with the
defaults); a large k keeps big shifts quick. On firing the statistics of that signal reset and
the shift is estimated from the run (k + S/N sigmas, the usual CUSUM estimate; the raw residual
when the step is bigger than the winsorised statistic can express) and reported in the signal's
unit. The baseline then moves `recentre` × that estimate towards the new level (the estimate is
biased upwards for shifts near the detection limit; what is left is caught by the next firing),
so that the other detectors stay calibrated, while this detector keeps the pre-shift mean as
its reference: the finding stays active while the mean is away from the reference and clears
once it is back within `return_fraction` × the largest distance seen (a return is itself a
shift that the CUSUM detects).

Example (seeded): a 0.25σ step at sample 3000 on one of two signals.

>>> import numpy as np
>>> from safety_nexus.core import Frame
>>> from safety_nexus.detect import DetectorBank
>>> from safety_nexus.detect.testing import make_table
>>> rng = np.random.default_rng(0)
>>> values = rng.normal(size=(6000, 2))
>>> values[3000:, 1] += 0.25
>>> bank = DetectorBank(make_table(2), detectors=["cusum"])
>>> result = bank.process(Frame(np.arange(6000.0), values))
>>> [(f.signal, f.kind.value) for f in result.findings]
[('a1.s1', 'level_shift')]
>>> f = result.findings[0]
>>> f.time, round(f.deviation, 2)
(3363.0, 0.26)
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from safety_nexus.core.types import FindingKind
from safety_nexus.detect.base import (
    F32,
    F64,
    ActiveSet,
    BaselineView,
    Bools,
    Columns,
    Cusum,
    Hits,
    Index,
    ScratchState,
)
from safety_nexus.detect.config import DetectConfig


class LevelShiftDetector(ScratchState):
    """CUSUM bank for level shifts of unknown size (one up/down pair per allowance)."""

    name: ClassVar[str] = "cusum"
    kind: ClassVar[FindingKind] = FindingKind.LEVEL_SHIFT
    evidence_unit: ClassVar[str] = "{unit}"

    def __init__(self, cols: Columns, config: DetectConfig) -> None:
        self.config = config
        ks = list(config.cusum_k)
        hs = list(config.cusum_h)
        self._cusum = Cusum([1.0] * len(ks) + [-1.0] * len(ks), ks + ks, hs + hs, cols.n)
        self._act = ActiveSet(cols.n)
        # While active: the mean before the shift and the largest distance from it so far.
        self._ref: F64 = np.zeros(cols.n, dtype=np.float64)
        self._peak: F32 = np.zeros(cols.n, dtype=np.float32)

    def _alloc_scratch(self) -> None:
        pass

    @property
    def active(self) -> Bools:
        return self._act.mask

    def update(self, t: float, x: F64, ctx: BaselineView) -> Hits | None:
        del t, x
        fired = self._cusum.step(ctx.zc, ctx.pw)
        if not fired and not len(self._act):
            return None
        return self._events(ctx, fired)

    def _events(self, ctx: BaselineView, fired: bool) -> Hits | None:
        onsets: Index = np.empty(0, dtype=np.intp)
        cols: Index = np.empty(0, dtype=np.intp)
        score = observed = baseline = sigma = np.empty(0)
        if fired:
            cs = self._cusum
            cols = np.flatnonzero(cs.fired.any(axis=0))
            row, ratio, runs = cs.best(cols)
            sgn = cs.sign[row, 0].astype(np.float64)
            shift = sgn * (cs.k[row, 0] + cs.S[row, cols] / np.maximum(runs, 1.0))  # sigmas
            # Winsorising caps what S/N can say about a big step: beyond the clip, the raw
            # residual on the same side is the better estimate.
            z = ctx.z[cols].astype(np.float64)
            far = (z * sgn > self.config.clip) & (z * sgn > np.abs(shift))
            shift = np.where(far, z, shift)
            cs.reset(cols)
            sd = ctx.std[cols].astype(np.float64)
            mu = ctx.mean[cols]
            delta = shift * sd
            ctx.shift_mean(cols, self.config.recentre * delta)
            new = ~self._act.mask[cols]
            onsets = cols[new]
            if onsets.shape[0]:
                self._ref[onsets] = mu[new]
                self._peak[onsets] = self.config.recentre * np.abs(delta[new])
                score = ratio[new]
                observed = mu[new] + delta[new]
                baseline = mu[new]
                sigma = sd[new]
                self._act.add(onsets)
        recovered: Index = np.empty(0, dtype=np.intp)
        if len(self._act):
            # Signals that fired this row are judged on the next one, once their mean has moved.
            idx = np.setdiff1d(self._act.idx, cols, assume_unique=True) if fired else self._act.idx
            dist = np.abs(ctx.mean[idx] - self._ref[idx]).astype(np.float32)
            peak = np.maximum(self._peak[idx], dist)
            self._peak[idx] = peak
            recovered = idx[dist <= np.float32(self.config.return_fraction) * peak]
            if recovered.shape[0]:
                self._act.remove(recovered)
                # Back within tolerance: the reference level is the best estimate of normal.
                ctx.shift_mean(recovered, self._ref[recovered] - ctx.mean[recovered])
        if onsets.shape[0] or recovered.shape[0]:
            return Hits(onsets, score, observed, baseline, sigma, recovered)
        return None
