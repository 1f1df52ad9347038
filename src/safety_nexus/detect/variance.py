"""Variance changes: CUSUM on the squared standardised residual, both directions.

For z ~ N(0, σ²) the log-likelihood ratio of std ratio λ against 1 is linear in z², so Page's
test for a change of variance is a CUSUM on q = z² with allowance
k(λ) = ln(λ²)·λ²/(λ² − 1): upward S ← max(0, S + q − k_up), downward S ← max(0, S + k_down − q).
q is capped at `variance_clip`² so that a single spike cannot fire it. The new std is
estimated from the run as σ·√(k ± S/N) and reported in the signal's unit (observed = new std,
baseline = old std). Clearing works as for level shifts: no new firing for `hysteresis` × the run.

Example (seeded): the std of one signal doubles at sample 2000.

>>> import numpy as np
>>> from safety_nexus.core import Frame
>>> from safety_nexus.detect import DetectorBank
>>> from safety_nexus.detect.testing import make_table
>>> rng = np.random.default_rng(2)
>>> values = rng.normal(size=(4000, 2))
>>> values[2000:, 0] *= 2.0
>>> bank = DetectorBank(make_table(2), detectors=["variance"])
>>> result = bank.process(Frame(np.arange(4000.0), values))
>>> [(f.signal, f.kind.value) for f in result.findings]
[('a0.s0', 'variance')]
>>> f = result.findings[0]
>>> 2000 < f.time < 2100, round(f.observed / f.baseline, 0)
(True, 2.0)
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
    const32,
    hold_until,
)
from safety_nexus.detect.config import DetectConfig


class VarianceDetector(ScratchState):
    """Two one-sided CUSUMs on z² (increase and decrease of the noise level)."""

    name: ClassVar[str] = "variance"
    kind: ClassVar[FindingKind] = FindingKind.VARIANCE
    evidence_unit: ClassVar[str] = "{unit}"
    _scratch = ("_q", "_cap")

    def __init__(self, cols: Columns, config: DetectConfig) -> None:
        self.config = config
        self.period = cols.period
        self.n = cols.n
        # Row 0: S += q − k_up; row 1: S += k_down − q (written as −q − (−k_down)).
        self._cusum = Cusum(
            [1.0, -1.0],
            [config.variance_k_up, -config.variance_k_down],
            [config.variance_h, config.variance_h],
            cols.n,
        )
        self._act = ActiveSet(cols.n)
        self._clear_at: F64 = np.full(cols.n, np.inf, dtype=np.float64)
        self._alloc_scratch()

    def _alloc_scratch(self) -> None:
        self._q: F32 = np.empty(self.n, dtype=np.float32)
        self._cap: F32 = const32(self.n, self.config.variance_clip**2)

    def nbytes(self) -> int:
        return self._cusum.nbytes() + self._act.nbytes() + self._clear_at.nbytes

    @property
    def active(self) -> Bools:
        return self._act.mask

    def update(self, t: float, x: F64, ctx: BaselineView) -> Hits | None:
        del x
        q = self._q
        np.multiply(ctx.zc, ctx.zc, out=q)
        np.minimum(q, self._cap, out=q)
        fired = self._cusum.step(q, ctx.pw)
        if not fired and not len(self._act):
            return None
        return self._events(t, ctx, fired)

    def _events(self, t: float, ctx: BaselineView, fired: bool) -> Hits | None:
        cfg = self.config
        onsets: Index = np.empty(0, dtype=np.intp)
        score = observed = baseline = sigma = np.empty(0)
        if fired:
            cs = self._cusum
            cols = np.flatnonzero(cs.fired.any(axis=0))
            row, ratio, runs = cs.best(cols)
            k = cs.k[row, 0].astype(np.float64)
            sgn = cs.sign[row, 0].astype(np.float64)
            # Mean of q over the run: sign·(k + S/N) undoes the sign convention of each row.
            qhat = np.maximum(sgn * (k + cs.S[row, cols] / np.maximum(runs, 1.0)), 0.0)
            cs.reset(cols)
            new = ~self._act.mask[cols]
            onsets = cols[new]
            self._clear_at[cols] = hold_until(
                t, runs, self.period[cols], cfg.hysteresis, cfg.min_hold
            )
            if onsets.shape[0]:
                sd = ctx.std[onsets].astype(np.float64)
                score = ratio[new]
                observed = sd * np.sqrt(qhat[new])
                baseline = sd
                sigma = sd
                self._act.add(onsets)
        recovered: Index = np.empty(0, dtype=np.intp)
        if len(self._act):
            idx = self._act.idx
            recovered = idx[self._clear_at[idx] < t]
            if recovered.shape[0]:
                self._act.remove(recovered)
                self._clear_at[recovered] = np.inf
        if onsets.shape[0] or recovered.shape[0]:
            return Hits(onsets, score, observed, baseline, sigma, recovered)
        return None
