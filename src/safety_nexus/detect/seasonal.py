"""Seasonality-aware baseline: what is normal for this hour of the day and this day of the week.

A grid load at 3 a.m. that looks like the load at 3 p.m. is normal in value and abnormal for
the hour; the plain baseline (one mean, one scale) cannot tell, and the local level follows it.
This detector learns, per signal, a daily profile (24 hourly knots, linearly interpolated, so a
piecewise-linear day) and day-of-week offsets (7 knots at noon, interpolated), and tests the
deviation of the signal from that expectation.

Seasons are slow, so the detector looks at the baseline's local level (already a smoothed value
of the signal) every `seasonal_every` seconds instead of at every sample: between looks it costs
one comparison per row. At a look it takes the residual r = level − expectation of every signal
that reported since the previous look, and keeps m, its EWMA over `seasonal_window` seconds, and
the typical size of m (mean absolute value × √(π/2), learned over `seasonal_days` days while m is
below half its threshold). A finding fires when |m| exceeds `seasonal_threshold` typical sizes and
`seasonal_min_sigmas` of the signal's local noise, once the signal has been watched for
`seasonal_warmup` days; it clears below `seasonal_clear` × the threshold. The profile learns from
every look (the residual winsorised at 4 typical sizes; a running average in its first days, then
an EWMA over `seasonal_days`), so a lasting change of the daily pattern is absorbed within days.
Hours and days are UTC: the profile is learned, so a site's time zone only shifts which knot holds
which local hour.

Evidence: observed = the local level, baseline = the seasonal expectation, sigma = the typical
size of m (how far the level strays from the profile on a normal day), score = |m| / threshold.

Example (seeded): a daily cycle sampled every 10 minutes; on day 8 signal 1's night looks like
its afternoon (the values stay inside the usual daily range).

>>> import numpy as np
>>> from safety_nexus.core import Frame
>>> from safety_nexus.detect import DetectorBank
>>> from safety_nexus.detect.testing import make_table
>>> rng = np.random.default_rng(11)
>>> times = 60.0 * np.arange(14400)  # ten days
>>> day = 5.0 * np.sin(2 * np.pi * (times / 86400.0 - 0.25))[:, None]
>>> values = 50.0 + day + 0.5 * rng.normal(size=(14400, 2))
>>> night = (times >= 7 * 86400.0) & (times < 7 * 86400.0 + 6 * 3600.0)
>>> values[night, 1] = 50.0 + 5.0 * np.sin(2 * np.pi * (times[night] / 86400.0 + 0.25))
>>> bank = DetectorBank(make_table(2, period=60.0), detectors=["seasonal"])
>>> result = bank.process(Frame(times, values))
>>> [(f.signal, f.kind.value, round((f.time - 7 * 86400.0) / 60.0)) for f in result.findings]
[('a1.s1', 'seasonal', 57)]
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
    KAPPA,
    ActiveSet,
    BaselineView,
    Bools,
    Columns,
    Hits,
    ScratchState,
)
from safety_nexus.detect.config import DetectConfig

DAY = 86400.0
HOUR = 3600.0
# The Unix epoch fell on a Thursday: day-of-week 0 is Monday.
EPOCH_WEEKDAY = 3.0
WINSOR = 4.0  # the profile learns residuals winsorised at this many typical sizes


def _knots(pos: float, n: int) -> tuple[int, int, float]:
    """Linear interpolation between knots at 0.5, 1.5, ... (cyclic over n): two knots and the
    weight of the second."""
    u = pos - 0.5
    lo = math.floor(u)
    return lo % n, (lo + 1) % n, u - lo


class SeasonalDetector(ScratchState):
    """Daily profile (24 knots) + day-of-week offsets (7 knots) of the local level."""

    name: ClassVar[str] = "seasonal"
    kind: ClassVar[FindingKind] = FindingKind.SEASONAL
    evidence_unit: ClassVar[str] = "{unit}"

    def __init__(self, cols: Columns, config: DetectConfig) -> None:
        self.config = config
        self.n = n = cols.n
        self.period = cols.period
        self._ref: F64 = np.full(n, np.nan)  # the first level seen: the profile is relative
        self._day: F32 = np.zeros((24, n), dtype=np.float32)  # hourly knots (row: contiguous)
        self._week: F32 = np.zeros((7, n), dtype=np.float32)  # day-of-week knots
        self._m: F32 = np.zeros(n, dtype=np.float32)  # EWMA of the residual
        self._m_mad: F32 = np.zeros(n, dtype=np.float32)  # typical |m|
        self._r_mad: F32 = np.zeros(n, dtype=np.float32)  # typical |residual|
        self._looks: F32 = np.zeros(n, dtype=np.float32)  # looks at the signal so far
        self._slot = -math.inf
        self._t_look = -math.inf
        self._act = ActiveSet(n)

    @property
    def active(self) -> Bools:
        return self._act.mask

    def update(self, t: float, x: F64, ctx: BaselineView) -> Hits | None:
        del x
        slot = math.floor(t / self.config.seasonal_every)
        if slot <= self._slot:
            return None
        self._slot = slot
        t_prev, self._t_look = self._t_look, t
        fresh = ctx.last_t > t_prev
        if ctx.warmb is not None:  # the local level means something once the baseline is warm
            fresh &= ctx.warmb
        return self._look(t, fresh, ctx)

    def expected(self, t: float) -> F64:
        """The profile's value for time t, per signal (unit; NaN before the first look)."""
        out: F64 = self._ref + self._profile(t)[0]
        return out

    def _profile(self, t: float) -> tuple[F32, tuple[int, int, float], tuple[int, int, float]]:
        """The daily and weekly offsets at time t (relative to the reference level), with the
        hour and weekday knots they interpolate between (learning moves the same knots)."""
        day = _knots((t % DAY) / HOUR, 24)
        week = _knots((t / DAY + EPOCH_WEEKDAY) % 7.0, 7)
        (i0, i1, f), (j0, j1, g) = day, week
        e = (1.0 - f) * self._day[i0] + f * self._day[i1]
        e += (1.0 - g) * self._week[j0] + g * self._week[j1]
        return e, day, week

    def _look(self, t: float, fresh: Bools, ctx: BaselineView) -> Hits | None:
        cfg = self.config
        every = cfg.seasonal_every
        # Looks per day at each signal: one per `every`, or one per sample if it is slower.
        spacing = np.maximum(self.period, every)
        per_day = (DAY / spacing).astype(np.float32)
        per_hour = (HOUR / spacing).astype(np.float32)
        level = ctx.local_mean
        first = fresh & np.isnan(self._ref)
        self._ref[first] = level[first]
        e, (i0, i1, f), (j0, j1, g) = self._profile(t)
        fw = fresh.astype(np.float32)
        r = np.where(fresh, level - self._ref, 0.0).astype(np.float32) - e
        r *= fw
        lam = (1.0 - np.exp(-spacing / cfg.seasonal_window)).astype(np.float32)
        self._m += lam * fw * (r - self._m)
        looks = self._looks
        armed = looks >= cfg.seasonal_warmup * per_day
        am = np.abs(self._m)
        # The floor: min_sigmas × the noise of the local level itself, σ·√(α/(2 − α)).
        alpha = cfg.local_alpha
        noise = np.float32(cfg.seasonal_min_sigmas * math.sqrt(alpha / (2.0 - alpha)))
        thr = np.maximum(
            np.float32(cfg.seasonal_threshold * KAPPA) * self._m_mad, noise * ctx.local_std
        )
        fire = fresh & armed & (am > thr)
        recovered = EMPTY_INDEX
        if len(self._act):
            idx = self._act.idx
            calm = fresh[idx] & (am[idx] < np.float32(cfg.seasonal_clear) * thr[idx])
            recovered = idx[calm]
            fire &= ~self._act.mask
        # -- learning --------------------------------------------------------------------
        # Typical sizes: from the last day of the warm-up on (earlier residuals are against a
        # profile still being learned), a running average and then an EWMA over
        # `seasonal_days`; only while m is well inside its threshold, so that an anomaly is not
        # learned as normal.
        since = looks - np.float32(cfg.seasonal_warmup - 1.0) * per_day
        floor_b = np.float32(1.0 / cfg.seasonal_days) / per_day
        b = np.maximum(np.float32(1.0) / np.maximum(since + 1.0, np.float32(1.0)), floor_b)
        calm_now = ~armed | (am < np.float32(0.5) * thr)
        bw = np.where(fresh & (since >= 0) & calm_now & ~self._act.mask, b, np.float32(0.0))
        self._m_mad += bw * (am - self._m_mad)
        self._r_mad += bw * (np.abs(r) - self._r_mad)
        # The profile: winsorised residuals, once their typical size is known.
        cap = np.where(since > 0, np.float32(WINSOR * KAPPA) * self._r_mad, np.float32(np.inf))
        rc = np.clip(r, -cap, cap)
        days_seen = np.floor(looks / per_day)
        k_hour = np.floor((t % HOUR) / spacing).astype(np.float32) + np.float32(1.0)
        bd = np.maximum(
            np.float32(1.0) / (days_seen * per_hour + k_hour),
            np.float32(1.0 / cfg.seasonal_days) / per_hour,
        )
        step = bd * rc * fw
        self._day[i0] += (1.0 - f) * step
        self._day[i1] += f * step
        # Day-of-week offsets: once the daily profile is armed, from what it leaves over; an
        # EWMA from 0 (no running start: the knots are interpolated across midnight, and a
        # weekly pattern takes weeks to tell from the daily one anyway).
        bk = np.float32(1.0 / cfg.seasonal_weeks) / per_day
        step_w = np.where(armed, bk * rc * fw, np.float32(0.0))
        self._week[j0] += (1.0 - g) * step_w
        self._week[j1] += g * step_w
        self._looks += fw
        # -- findings ----------------------------------------------------------------------
        onsets = np.flatnonzero(fire)
        if not onsets.shape[0] and not recovered.shape[0]:
            return None
        if recovered.shape[0]:
            self._act.remove(recovered)
        if onsets.shape[0]:
            self._act.add(onsets)
        expect = self._ref[onsets] + e[onsets].astype(np.float64)
        return Hits(
            onsets,
            score=(am[onsets] / thr[onsets]).astype(np.float64),
            observed=level[onsets].copy(),
            baseline=expect,
            sigma=(self._m_mad[onsets] * np.float32(KAPPA)).astype(np.float64),
            recovered=recovered,
        )
