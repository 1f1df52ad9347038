"""Control-loop oscillation: a sustained, regular swing of a signal around its local level.

A loop that starts hunting (a pump pressure or a fan speed under a badly tuned or fighting
controller) crosses its own local level again and again, at a steady interval and with a steady
amplitude. Noise crosses it too, but irregularly, and spends most of its time near the level.
The detector follows the residual against the baseline's local level in local sigmas (`zl`) with
hysteresis: a crossing is counted when the residual reaches `osc_hysteresis` sigmas on the side
opposite to the last one. Between two crossings lies a half-wave, with a length and, from the
mean of its positive part, an amplitude (for a sine A·sin θ crossing at ±h the half-wave runs
from θ₀ = asin(h/A) to π + θ₀, and its positive part averages A·(1 + cos θ₀)/π). A half-wave is
*regular* when the period it closes (it and the one before) is within `osc_tolerance` of the
previous period, and its amplitude reaches `osc_min_amplitude` sigmas; `osc_count` regular
half-waves in a row are an oscillation. Comparing periods rather than half-waves cancels the
offset noise puts between up- and down-crossings. With the defaults a swing of four noise sigmas
or more is flagged within about two and a half periods of its first crossing (three of onset).

The hot path is four in-place ufuncs and an `any` per row (q = zl·side, its positive part, the
running sum, the crossing test); crossings are rare on noise (the hysteresis is wide), and only
their columns do the bookkeeping. Evidence: observed = the amplitude (unit: the mean of the last
two half-waves', corrected for the part of the swing the local level follows), baseline = 0,
sigma = the local noise sigma, `Finding.period` = the period (seconds), score = regular
half-waves / `osc_count`.

Example (seeded): signal 1 starts to oscillate (period 20 samples, amplitude 5σ) at t = 1500.

>>> import numpy as np
>>> from safety_nexus.core import Frame
>>> from safety_nexus.detect import DetectorBank
>>> from safety_nexus.detect.testing import make_table
>>> rng = np.random.default_rng(8)
>>> values = rng.normal(size=(2000, 2))
>>> values[1500:, 1] += 5.0 * np.sin(2 * np.pi * np.arange(500) / 20.0)
>>> bank = DetectorBank(make_table(2), detectors=["oscillation"])
>>> result = bank.process(Frame(np.arange(2000.0), values))
>>> [(f.signal, f.kind.value, f.time, f.period) for f in result.findings]
[('a1.s1', 'oscillation', 1551.0, 19.5)]
>>> round(result.findings[0].observed, 1)
5.7
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from safety_nexus.core.types import FindingKind
from safety_nexus.detect.base import (
    EMPTY_INDEX,
    F32,
    F64,
    ActiveSet,
    BaselineView,
    Bools,
    Columns,
    Hits,
    Index,
    ScratchState,
)
from safety_nexus.detect.config import DetectConfig

EMPTY_F32: F32 = np.empty(0, dtype=np.float32)


class OscillationDetector(ScratchState):
    """Regular crossings of the local level with hysteresis: period and amplitude."""

    name: ClassVar[str] = "oscillation"
    kind: ClassVar[FindingKind] = FindingKind.OSCILLATION
    evidence_unit: ClassVar[str] = "{unit}"
    _scratch = ("_q", "_cross", "_amp_prev", "_period_est", "_pos", "_zero")

    def __init__(self, cols: Columns, config: DetectConfig) -> None:
        self.config = config
        self.period = cols.period
        self.n = n = cols.n
        # One 1-D array per field: on the few crossing columns of a row, 1-D fancy indexing is
        # several times cheaper than indexing a packed 2-D array.
        self._side: F32 = np.ones(n, dtype=np.float32)  # +1 / −1: the side last crossed to
        self._t_cross: F64 = np.full(n, np.nan)  # time of the last crossing
        self._half: F32 = np.full(n, np.nan, dtype=np.float32)  # last half-period (samples)
        self._full: F32 = np.full(n, np.nan, dtype=np.float32)  # last two half-periods
        self._run: F32 = np.zeros(n, dtype=np.float32)  # regular half-waves in a row
        self._sum: F32 = np.zeros(n, dtype=np.float32)  # Σ max(q, 0) over the half-wave
        self._amp: F32 = np.zeros(n, dtype=np.float32)  # last big half-wave's amplitude (unit)
        self._act = ActiveSet(n)
        self._alloc_scratch()

    def _alloc_scratch(self) -> None:
        cfg = self.config
        self._q: F32 = np.empty(self.n, dtype=np.float32)
        self._cross: Bools = np.empty(self.n, dtype=np.bool_)
        self._amp_prev: F32 = EMPTY_F32  # parallel to this row's onsets
        self._period_est: F32 = EMPTY_F32  # parallel to this row's onsets
        self._pos: F32 = np.empty(self.n, dtype=np.float32)
        self._zero: F32 = np.zeros(self.n, dtype=np.float32)
        # The half-wave of a sine A·sin θ between crossings at ±h runs from θ₀ = asin(h/A) to
        # π + θ₀; its positive part sums to A·(1 + cos θ₀) over π, i.e. π·mean = M with
        # A = (M² + h²)/(2M): A ≥ A_min ⟺ mean ≥ (A_min + √(A_min² − h²))/π.
        h, a_min = cfg.osc_hysteresis, max(cfg.osc_min_amplitude, cfg.osc_hysteresis)
        self._mean_min = np.float32((a_min + math.sqrt(a_min * a_min - h * h)) / math.pi)
        self._neg_h = np.float32(-h)
        self._min_half = np.float32(cfg.osc_min_half)

    @property
    def active(self) -> Bools:
        return self._act.mask

    def update(self, t: float, x: F64, ctx: BaselineView) -> Hits | None:
        del x
        q = self._q
        np.multiply(ctx.zl, self._side, out=q)  # NaN where missing: fmax and < ignore it
        np.fmax(q, self._zero, out=self._pos)  # 0 where missing
        np.add(self._sum, self._pos, out=self._sum)
        np.less(q, self._neg_h, out=self._cross)
        crossed = self._cross.any()
        if not crossed and not len(self._act):
            return None
        onsets, recovered = EMPTY_INDEX, EMPTY_INDEX
        if crossed:
            onsets = self._crossings(t, np.flatnonzero(self._cross), ctx)
        if len(self._act):
            recovered = self._timed_out(t)
        if not onsets.shape[0] and not recovered.shape[0]:
            return None
        if recovered.shape[0]:
            self._act.remove(recovered)
        if onsets.shape[0]:
            self._act.add(onsets)
        return self._hits(onsets, recovered, ctx)

    def _crossings(self, t: float, idx: Index, ctx: BaselineView) -> Index:
        """Book-keep the crossings of `idx`; return the columns that become oscillating.

        Noise crosses too, so on a large shard most rows have some crossings, and on a few
        columns every NumPy call costs about the same whatever it does: the common path is a
        dozen calls, and only half-waves big enough for an oscillation go through the rest
        (noise spends most of a half-wave near 0: the amplitude test is what tells it apart)."""
        half = ((t - self._t_cross[idx]) / self.period[idx]).astype(np.float32)  # NaN: first
        total = self._sum[idx]
        big = np.flatnonzero((total >= self._mean_min * half) & (half >= self._min_half))
        onsets = self._big(idx[big], half[big], total[big], ctx) if big.shape[0] else EMPTY_INDEX
        # A period is two half-waves: comparing periods cancels the offset between up- and
        # down-crossings that noise puts on single half-waves.
        self._full[idx] = half + self._half[idx]
        self._half[idx] = half
        self._side[idx] = -self._side[idx]
        self._sum[idx] = -self._q[idx]  # the new half-wave starts beyond the hysteresis
        self._t_cross[idx] = t
        if big.shape[0] < idx.shape[0]:
            small = np.ones(idx.shape[0], dtype=np.bool_)
            small[big] = False
            self._run[idx[small]] = 0.0
        return onsets

    def _big(self, cols: Index, half: F32, total: F32, ctx: BaselineView) -> Index:
        """Half-waves with the amplitude of an oscillation: regular ones extend the run."""
        cfg = self.config
        h = np.float32(cfg.osc_hysteresis)
        big_m = np.float32(math.pi) * total / np.maximum(half, np.float32(1.0))
        amp = (big_m * big_m + h * h) / (np.float32(2.0) * big_m)
        prev = self._full[cols]
        full = half + self._half[cols]
        regular = np.abs(full - prev) <= np.float32(cfg.osc_tolerance) * prev  # NaN: False
        regular &= half <= np.float32(cfg.osc_max_half)
        run = (self._run[cols] + np.float32(1.0)) * regular
        self._run[cols] = run
        amp_prev = self._amp[cols]
        self._amp[cols] = amp * ctx.local_std[cols]
        fire = run >= cfg.osc_count
        if ctx.warmb is not None:
            fire &= ctx.warmb[cols]
        fire &= ~self._act.mask[cols]
        self._amp_prev = amp_prev[fire]
        self._period_est = 0.5 * (prev + full)[fire]  # the last two periods, samples
        out: Index = cols[fire]
        return out

    def _timed_out(self, t: float) -> Index:
        idx = self._act.idx
        since = (t - self._t_cross[idx]) / self.period[idx]
        late = since > self.config.osc_clear * self._half[idx]
        return idx[late]

    def gain(self, half: F64) -> F64:
        """How much of a swing with this half-period (samples) the residual against the local
        level keeps: |1 − z⁻¹| / |1 − (1 − α)z⁻¹| at ω = π / half (the local level is an EWMA
        with weight α that learns after the residual is taken)."""
        alpha = self.config.local_alpha
        w = np.pi / np.maximum(half, 1.0)
        num = 2.0 * np.abs(np.sin(w / 2.0))
        den = np.abs(1.0 - (1.0 - alpha) * np.exp(-1j * w))
        out: F64 = num / den
        return out

    def _hits(self, onsets: Index, recovered: Index, ctx: BaselineView) -> Hits:
        if not onsets.shape[0]:
            return Hits(recovered=recovered)
        half = 0.5 * self._period_est.astype(np.float64)
        amp_now = self._amp[onsets].astype(np.float64)
        amp_before = self._amp_prev.astype(np.float64)  # parallel to the onsets
        amp = 0.5 * (amp_now + amp_before) / self.gain(half)
        period_s = 2.0 * half * self.period[onsets]
        sd = ctx.local_std[onsets].astype(np.float64)
        return Hits(
            onsets,
            score=self._run[onsets].astype(np.float64) / self.config.osc_count,
            observed=amp,
            baseline=np.zeros(onsets.shape[0]),
            sigma=sd,
            recovered=recovered,
            period=period_s,
        )
