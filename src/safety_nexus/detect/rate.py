"""Rate of change: a smoothed slope beyond what the signal's slope normally does.

The slope is an EWMA (weight `rate_lambda`) of first differences between consecutive samples of
a signal, each divided by the real time between them in periods (so that jittered sampling,
dropped samples and gaps give the slope per period of real time, not per sample: a difference
across a ten-minute gap is a tenth of a minute's worth per period), and winsorised at `rate_clip`
times the signal's typical difference (so a spike, whose two differences cancel anyway, cannot
make a ramp). The slope's own typical size is
learned the same robust way as the baseline scale (mean absolute value × √(π/2), baseline
weights), which makes the test right for white noise and for smooth, autocorrelated signals
alike. A finding fires when |slope| > `rate_threshold` of its sigmas and clears below
`rate_clear` × that. Evidence is in unit per second: observed = slope / period, baseline = 0,
sigma = the slope's typical size / period.

Example (seeded): signal 1 starts to ramp at 1σ per sample at sample 1500.

>>> import numpy as np
>>> from safety_nexus.core import Frame
>>> from safety_nexus.detect import DetectorBank
>>> from safety_nexus.detect.testing import make_table
>>> rng = np.random.default_rng(5)
>>> values = rng.normal(size=(2000, 2))
>>> values[1500:, 1] += np.arange(500.0)
>>> bank = DetectorBank(make_table(2), detectors=["rate"])
>>> result = bank.process(Frame(np.arange(2000.0), values))
>>> [(f.signal, f.kind.value, f.time) for f in result.findings]
[('a1.s1', 'rate', 1509.0)]
>>> result.findings[0].unit
'V/s'
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from safety_nexus.core.types import FindingKind
from safety_nexus.detect.base import (
    BIG32,
    F32,
    F64,
    KAPPA,
    ActiveSet,
    BaselineView,
    Bools,
    Columns,
    Hits,
    Index,
    ScratchState,
    const32,
)
from safety_nexus.detect.config import DetectConfig


class RateDetector(ScratchState):
    """EWMA of winsorised first differences, standardised by its own learned scale."""

    name: ClassVar[str] = "rate"
    kind: ClassVar[FindingKind] = FindingKind.RATE
    evidence_unit: ClassVar[str] = "{unit}/s"
    _scratch = (
        "_d32",
        "_rd",
        "_tmp",
        "_ae",
        "_thr",
        "_fire",
        "_lp",
        "_c",
        "_nc",
        "_floor",
        "_ip32",
    )

    def __init__(self, cols: Columns, config: DetectConfig) -> None:
        self.config = config
        self.period = cols.period
        self.n = n = cols.n
        self._dmad: F32 = np.zeros(n, dtype=np.float32)  # typical |difference|
        self._dstd: F32 = np.full(n, config.min_sigma, dtype=np.float32)
        self._dinv: F32 = np.full(n, 1.0 / config.min_sigma, dtype=np.float32)
        self._slope: F32 = np.zeros(n, dtype=np.float32)  # EWMA of differences (unit/sample)
        self._smad: F32 = np.zeros(n, dtype=np.float32)  # typical |slope|
        self._gate: F32 = np.ones(n, dtype=np.float32)  # 0 freezes _smad while active
        self._since: F32 = np.zeros(n, dtype=np.float32)  # periods since the previous sample
        self._row_t = -np.inf  # time of the previous row
        self._act = ActiveSet(n)
        self._alloc_scratch()

    def _alloc_scratch(self) -> None:
        n = self.n
        self._d32: F32 = np.empty(n, dtype=np.float32)
        self._rd: F32 = np.empty(n, dtype=np.float32)
        self._tmp: F32 = np.empty(n, dtype=np.float32)
        self._ae: F32 = np.empty(n, dtype=np.float32)
        self._thr: F32 = np.empty(n, dtype=np.float32)
        self._lp: F32 = np.empty(n, dtype=np.float32)
        self._fire: Bools = np.empty(n, dtype=np.bool_)
        self._c: F32 = const32(n, self.config.rate_clip)
        self._nc: F32 = const32(n, -self.config.rate_clip)
        self._floor: F32 = const32(n, self.config.min_sigma)
        self._ip32: F32 = (1.0 / np.asarray(self.period, dtype=np.float64)).astype(np.float32)

    @property
    def active(self) -> Bools:
        return self._act.mask

    def update(self, t: float, x: F64, ctx: BaselineView) -> Hits | None:
        del x
        cfg = self.config
        d, rd, tmp, ae = self._d32, self._rd, self._tmp, self._ae
        a = ctx.a
        c, nc = self._c, self._nc
        if ctx.warmb is not None:
            # The scale of differences is not known during warm-up: do not clip yet.
            c, nc = np.where(ctx.warmb, c, BIG32), np.where(ctx.warmb, nc, -BIG32)
        # The difference per period of real time: `_since` counts the periods since each
        # signal's previous sample, row by row (float32: a row's step is small, times are not).
        step = t - self._row_t
        self._row_t = t
        since = self._since
        if step < np.inf:
            np.multiply(self._ip32, np.float32(step), out=tmp)
            np.add(since, tmp, out=since)
        np.copyto(d, ctx.d, casting="same_kind")
        np.divide(d, since, out=d)  # NaN where missing or first (0/0 too)
        np.multiply(since, ctx.pm, out=tmp)
        np.subtract(since, tmp, out=since)  # a sample came: restart the count
        np.multiply(d, self._dinv, out=d)
        np.fmin(d, c, out=d)  # NaN (missing) becomes finite; its weight below is 0
        np.fmax(d, nc, out=d)
        np.multiply(d, self._dstd, out=rd)  # winsorised difference, in the signal's unit
        # slope += lambda·present·(rd − slope)
        np.multiply(ctx.pm, np.float32(cfg.rate_lambda), out=self._lp)
        np.subtract(rd, self._slope, out=tmp)
        np.multiply(tmp, self._lp, out=tmp)
        np.add(self._slope, tmp, out=self._slope)
        # typical |difference|
        np.abs(rd, out=rd)
        np.subtract(rd, self._dmad, out=rd)
        np.multiply(rd, a, out=rd)
        np.add(self._dmad, rd, out=self._dmad)
        # typical |slope| (frozen while a finding is active, so a ramp is not learned as normal)
        np.abs(self._slope, out=ae)
        np.subtract(ae, self._smad, out=tmp)
        np.multiply(tmp, a, out=tmp)
        if len(self._act):
            np.multiply(tmp, self._gate, out=tmp)
        np.add(self._smad, tmp, out=self._smad)
        if ctx.first is not None:
            # The first sample has no difference: forget what its NaN turned into.
            first = ctx.first
            self._dmad[first] = 0.0
            self._slope[first] = 0.0
            self._smad[first] = 0.0
        np.multiply(self._dmad, np.float32(KAPPA), out=self._dstd)
        np.fmax(self._dstd, self._floor, out=self._dstd)
        np.divide(np.float32(1.0), self._dstd, out=self._dinv)
        np.multiply(self._smad, np.float32(KAPPA * cfg.rate_threshold), out=self._thr)
        fire = self._fire
        np.greater(ae, self._thr, out=fire)
        np.logical_and(fire, ctx.pmb, out=fire)
        if ctx.warmb is not None:
            np.logical_and(fire, ctx.warmb, out=fire)
        if len(self._act):
            return self._with_active(t, ctx)
        if not fire.any():
            return None
        return self._hits(np.flatnonzero(fire), np.empty(0, dtype=np.intp))

    def _with_active(self, t: float, ctx: BaselineView) -> Hits | None:
        del t
        idx = self._act.idx
        calm = self._ae[idx] < self._thr[idx] * np.float32(self.config.rate_clear)
        recovered = idx[calm & ctx.pmb[idx]]
        np.greater(self._fire, self._act.mask, out=self._fire)
        onsets = np.flatnonzero(self._fire)
        if not onsets.shape[0] and not recovered.shape[0]:
            return None
        return self._hits(onsets, recovered)

    def _hits(self, onsets: Index, recovered: Index) -> Hits:
        if onsets.shape[0]:
            self._act.add(onsets)
            self._gate[onsets] = 0.0
        if recovered.shape[0]:
            self._act.remove(recovered)
            self._gate[recovered] = 1.0
        period = self.period[onsets]
        thr = self._thr[onsets].astype(np.float64)
        slope = self._slope[onsets].astype(np.float64)
        return Hits(
            onsets,
            score=np.abs(slope) / thr,
            observed=slope / period,
            baseline=np.zeros(onsets.shape[0]),
            sigma=self._smad[onsets].astype(np.float64) * KAPPA / period,
            recovered=recovered,
        )
