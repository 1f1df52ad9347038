"""Variance changes: CUSUM on the squared standardised residual, both directions.

For z ~ N(0, σ²) the log-likelihood ratio of std ratio λ against 1 is linear in z², so Page's
test for a change of variance is a CUSUM on q = z² with allowance
k(λ) = ln(λ²)·λ²/(λ² − 1): upward S ← max(0, S + q − k_up), downward S ← max(0, S + k_down − q).
z is winsorised at `variance_clip` so that a single spike cannot fire it. The new std is
estimated from the run as σ·√(k ± S/N) and reported in the signal's unit (observed = new std,
baseline = old std). As for level shifts, the baseline scale then moves `recentre` of the way
to the new std (on a log scale) and the finding stays active until the std is back within
`return_fraction` × the largest log-distance seen from the reference std stored at the onset.

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
)
from safety_nexus.detect.config import DetectConfig


class VarianceDetector(ScratchState):
    """Two one-sided CUSUMs on z² (increase and decrease of the noise level)."""

    name: ClassVar[str] = "variance"
    kind: ClassVar[FindingKind] = FindingKind.VARIANCE
    evidence_unit: ClassVar[str] = "{unit}"
    _scratch = ("_q", "_c", "_nc")

    def __init__(self, cols: Columns, config: DetectConfig) -> None:
        self.config = config
        self.period = cols.period
        self.n = cols.n
        # Row 0: S += q − k_up; row 1: S += k_down − q (written as −q − (−k_down)).
        self._cusum = Cusum(
            [1.0, -1.0],
            [config.variance_k_up, -config.variance_k_down],
            [config.variance_h_up, config.variance_h_down],
            cols.n,
        )
        self._act = ActiveSet(cols.n)
        # While active: log of the std before the change and the largest log-distance from it.
        self._ref: F32 = np.zeros(cols.n, dtype=np.float32)
        self._peak: F32 = np.zeros(cols.n, dtype=np.float32)
        self._alloc_scratch()

    def _alloc_scratch(self) -> None:
        self._q: F32 = np.empty(self.n, dtype=np.float32)
        self._c: F32 = const32(self.n, self.config.variance_clip)
        self._nc: F32 = const32(self.n, -self.config.variance_clip)

    @property
    def active(self) -> Bools:
        return self._act.mask

    def update(self, t: float, x: F64, ctx: BaselineView) -> Hits | None:
        del t, x
        q = self._q
        np.fmin(ctx.z, self._c, out=q)  # NaN (missing) becomes finite; its weight is 0
        np.fmax(q, self._nc, out=q)
        np.multiply(q, q, out=q)
        fired = self._cusum.step(q, ctx.pw)
        moved = ctx.moved
        if moved.shape[0]:
            # A level shift was just established on these signals: their recent z² measured
            # the step, not the noise.
            self._cusum.reset(moved)
            fired = bool(self._cusum.fired.any())
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
            # Mean of q over the run: sign·(k + S/N) undoes the sign convention of each row.
            qhat = sgn * (cs.k[row, 0] + cs.S[row, cols] / np.maximum(runs, 1.0))
            factor = np.sqrt(np.clip(qhat, 1e-4, None))
            cs.reset(cols)
            sd = ctx.std[cols].astype(np.float64)
            ctx.scale_by(cols, factor**self.config.recentre)
            new = ~self._act.mask[cols]
            onsets = cols[new]
            if onsets.shape[0]:
                self._ref[onsets] = np.log(sd[new])
                self._peak[onsets] = self.config.recentre * np.abs(np.log(factor[new]))
                score = ratio[new]
                observed = sd[new] * factor[new]
                baseline = sd[new]
                sigma = sd[new]
                self._act.add(onsets)
        recovered: Index = np.empty(0, dtype=np.intp)
        if len(self._act):
            # Signals that fired this row are judged on the next one, once their scale has moved.
            idx = np.setdiff1d(self._act.idx, cols, assume_unique=True) if fired else self._act.idx
            log_std = np.log(ctx.std[idx])
            dist = np.abs(log_std - self._ref[idx])
            peak = np.maximum(self._peak[idx], dist)
            self._peak[idx] = peak
            back = dist <= np.float32(self.config.return_fraction) * peak
            recovered = idx[back]
            if recovered.shape[0]:
                self._act.remove(recovered)
                # Back within tolerance: the reference scale is the best estimate of normal.
                ctx.scale_by(
                    recovered, np.exp(self._ref[recovered] - log_std[back]).astype(np.float64)
                )
        if onsets.shape[0] or recovered.shape[0]:
            return Hits(onsets, score, observed, baseline, sigma, recovered)
        return None
