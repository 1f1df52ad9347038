"""Time to threshold: when will a signal that trends toward its hard limit cross it?

Every `ttt_every` seconds the detector takes the latest sample of each signal that has reported
since its last look and fits a local linear trend to those looks by exponentially weighted least
squares (time constant `ttt_window` seconds; the weighted sums are kept per signal in coordinates
relative to its latest look, so a look costs a few array operations and no history is stored).
Raw samples, not the baseline's local level: that level is winsorised, so it cannot follow a fast
climb, and it would lag behind a ramp. The fit gives the slope b, its standard error (from the
residuals of the fit, taken as independent) and the level now. For a signal moving toward a
declared limit (`Columns.limit_lo` / `limit_hi`; ±inf: none) the crossing is forecast at
ETA = distance / |b|, with the interval distance / (|b| ± t·se), t being `ttt_z` widened to
Student's t for the few weighted looks behind the fit. Only signals with a limit keep state; a
look first screens them with the point forecast alone and works out standard errors for the few
that are near. The slope must also beat the signal's own wander: its typical |slope| is learned
(over `ttt_memory`, after `ttt_calibration` seconds of looks) and a forecast needs
`ttt_rate_sigmas` of it, because the residuals of a wandering signal are not independent and a
slope many standard errors from 0 can still be ordinary for it.

A finding (kind `time_to_threshold`) is raised when the slope is at least `ttt_significance`
standard errors from 0 and the forecast crossing lies within `ttt_horizon` seconds; it clears
when the forecast moves beyond `ttt_clear` × the horizon, when the slope stops being
significant at one standard error, or once the limit is crossed (the limit detector's finding
takes over). Evidence: observed = the slope (unit/s), baseline = 0, sigma = its standard error,
`Finding.eta` / `eta_low` / `eta_high` = the forecast in seconds from the finding's time, score
= horizon / ETA. `forecast(now)` (and `DetectorBank.time_to_threshold()`) give the same
forecast for every signal, for dashboards.

Example (seeded): signal 0 (limit 80) starts to climb at 0.05 per second at t = 3000; it will
cross at t = 4200. The first forecast comes late (a trend is learned from the past, and right
after a change of slope the past still holds the flat part); the next ones converge.

>>> import numpy as np
>>> from safety_nexus.core import Frame
>>> from safety_nexus.detect import DetectorBank
>>> from safety_nexus.detect.testing import make_table
>>> rng = np.random.default_rng(10)
>>> values = 20.0 + rng.normal(size=(4000, 2))
>>> values[3000:, 0] += 0.05 * np.arange(1000.0)
>>> bank = DetectorBank(make_table(2, limit_hi=80.0), detectors=["time_to_threshold"])
>>> result = bank.process(Frame(np.arange(4000.0), values))
>>> f = result.findings[0]
>>> (f.signal, f.kind.value, f.time)
('a0.s0', 'time_to_threshold', 3110.0)
>>> round(f.time + f.eta), round(f.time + f.eta_low), round(f.time + f.eta_high)
(4894, 4325, 6468)
>>> eta, low, high = bank.time_to_threshold()  # at t = 3999
>>> [round(3999 + v) for v in (eta[0], low[0], high[0])], float(eta[1])
([4204, 4170, 4255], inf)
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from safety_nexus.core.types import FindingKind
from safety_nexus.detect.base import (
    F64,
    KAPPA,
    ActiveSet,
    BaselineView,
    Bools,
    Columns,
    Hits,
    Index,
    ScratchState,
)
from safety_nexus.detect.config import DetectConfig

REBASE = 8.0  # the time origin moves once it is this many time constants behind
LEARN_EVERY = 6  # looks between updates of the typical slope


class TimeToThresholdDetector(ScratchState):
    """Exponentially weighted linear trend of the samples, extrapolated to the limits."""

    name: ClassVar[str] = "time_to_threshold"
    kind: ClassVar[FindingKind] = FindingKind.TIME_TO_THRESHOLD
    evidence_unit: ClassVar[str] = "{unit}/s"
    _scratch = ("_f", "_tmp", "_yv", "_inv", "_ui", "_b", "_lvl")

    def __init__(self, cols: Columns, config: DetectConfig) -> None:
        self.config = config
        self.n = cols.n
        # Only signals with a declared limit have something to forecast: the state is kept for
        # those columns alone (`_cols`), and the others cost nothing.
        self._cols: Index = np.flatnonzero(np.isfinite(cols.limit_lo) | np.isfinite(cols.limit_hi))
        self.period: F64 = cols.period[self._cols]
        self.lo: F64 = cols.limit_lo[self._cols]
        self.hi: F64 = cols.limit_hi[self._cols]
        n = int(self._cols.shape[0])
        # Weighted sums over the looks: time u relative to the origin `_t0` (s), y = sample −
        # ref. Every look decays all of them by the same factor (the weights are e^(−age/τ));
        # the origin moves now and then, so that u stays small.
        self._ref: F64 = np.zeros(n)  # the first look's sample (set while w is still 0)
        self._w: F64 = np.zeros(n)
        self._u: F64 = np.zeros(n)
        self._uu: F64 = np.zeros(n)
        self._y: F64 = np.zeros(n)
        self._uy: F64 = np.zeros(n)
        self._yy: F64 = np.zeros(n)
        self._t0 = 0.0
        # How fast the signal normally trends: typical |slope| (unit/s) and looks learned.
        self._bmad: F64 = np.zeros(n)
        self._bn: F64 = np.zeros(n)
        self._bthr: F64 = np.full(n, np.inf)  # the slope a forecast needs (unit/s)
        self._looks = 0
        self._slot = -math.inf  # the last look's slot, floor(t / ttt_every)
        self._t_look = -math.inf  # the last look's time
        self._act = ActiveSet(self.n)  # over the shard's columns
        self._alloc_scratch()

    @property
    def active(self) -> Bools:
        return self._act.mask

    def _alloc_scratch(self) -> None:
        m = int(self._cols.shape[0])
        self._f: F64 = np.empty(m)
        self._tmp: F64 = np.empty(m)
        self._yv: F64 = np.empty(m)
        self._inv: F64 = np.empty(m)
        self._ui: F64 = np.empty(m)
        self._b: F64 = np.empty(m)
        self._lvl: F64 = np.empty(m)

    def update(self, t: float, x: F64, ctx: BaselineView) -> Hits | None:
        del x
        slot = math.floor(t / self.config.ttt_every)
        if slot <= self._slot:
            return None
        self._slot = slot
        t_prev, self._t_look = self._t_look, t
        m = int(self._cols.shape[0])
        if not m:
            return None
        cols: Index | slice = self._cols if m < self.n else slice(None)
        fresh = ctx.last_t[cols] > t_prev
        if ctx.warmb is not None:  # no forecasts during warm-up
            fresh &= ctx.warmb[cols]
        self._learn(t, t - t_prev, fresh, ctx.last[cols])
        return self._test(fresh)

    def _learn(self, t: float, elapsed: float, fresh: Bools, sample: F64) -> None:
        """Decay the sums by the time since the last look, add a look at `sample` (where
        `fresh`) at time t. In place, with scalar factors: this runs on every look."""
        f, tmp, yv = self._f, self._tmp, self._yv
        w, u, uu, y, uy, yy = self._w, self._u, self._uu, self._y, self._uy, self._yy
        np.copyto(f, fresh)
        first = fresh & (w == 0.0)
        if first.any():
            self._ref[first] = sample[first]
        if t - self._t0 > REBASE * self.config.ttt_window:
            self._rebase(t)
        g = math.exp(-elapsed / self.config.ttt_window)  # 0 at the first look (elapsed inf)
        s = t - self._t0
        np.subtract(sample, self._ref, out=yv)  # y − ref where fresh, 0 elsewhere
        np.multiply(yv, f, out=yv)
        np.multiply(w, g, out=w)
        np.add(w, f, out=w)
        np.multiply(u, g, out=u)
        np.multiply(f, s, out=tmp)
        np.add(u, tmp, out=u)
        np.multiply(uu, g, out=uu)
        np.multiply(tmp, s, out=tmp)
        np.add(uu, tmp, out=uu)
        np.multiply(y, g, out=y)
        np.add(y, yv, out=y)
        np.multiply(uy, g, out=uy)
        np.multiply(yv, s, out=tmp)
        np.add(uy, tmp, out=uy)
        np.multiply(yy, g, out=yy)
        np.multiply(yv, yv, out=tmp)
        np.add(yy, tmp, out=yy)

    def _rebase(self, t0: float) -> None:
        """Move the time origin to t0: u → u − shift in every weighted sum."""
        shift = t0 - self._t0
        self._uu -= 2.0 * shift * self._u - shift * shift * self._w
        self._uy -= shift * self._y
        self._u -= shift * self._w
        self._t0 = t0

    def trend(self, sel: Index | slice = slice(None)) -> tuple[F64, F64, F64]:
        """Per signal with a limit (`_cols`, or the positions `sel` in it): the slope (unit/s),
        its standard error, and the level at the latest look; NaN where there
        is no trend yet."""
        w, u, uu = self._w[sel], self._u[sel], self._uu[sel]
        y, uy, yy = self._y[sel], self._uy[sel], self._yy[sel]
        with np.errstate(divide="ignore", invalid="ignore"):
            sxx = uu - u * u / w
            sxy = uy - u * y / w
            syy = yy - y * y / w
            b = sxy / sxx
            sse = np.maximum(syy - b * sxy, 0.0)
            se = np.sqrt(sse / np.maximum(w - 2.0, 1.0) / sxx)
            level = self._ref[sel] + y / w + b * ((self._t_look - self._t0) - u / w)
        ok = (w >= self.config.ttt_min_points) & (sxx > 0)
        nan = np.full(b.shape, np.nan)
        return np.where(ok, b, nan), np.where(ok, se, nan), np.where(ok, level, nan)

    def _eta(
        self, b: F64, se: F64, level: F64, sel: Index | slice = slice(None)
    ) -> tuple[F64, F64, F64, F64]:
        """Distance to the limit ahead (unit; ≤ 0 once crossed) and the forecast (s): ETA and
        its interval; inf where the signal does not move toward a limit."""
        cfg = self.config
        # A slope from a handful of weighted looks: Student's t, not the normal quantile, with
        # w − 2 degrees of freedom (Cornish–Fisher: t ≈ z·(1 + (z² + 1)/(4·dof))).
        dof = np.maximum(self._w[sel] - 2.0, 1.0)
        z = cfg.ttt_z * (1.0 + (cfg.ttt_z**2 + 1.0) / (4.0 * dof))
        with np.errstate(divide="ignore", invalid="ignore"):
            up = b > 0
            dist = np.where(up, self.hi[sel] - level, level - self.lo[sel])
            v = np.abs(b)
            eta = np.where(v > 0, dist / v, np.inf)
            eta_lo = dist / (v + z * se)
            slow = v - z * se
            eta_hi = np.where(slow > 0, dist / slow, np.inf)
        return dist, eta, eta_lo, eta_hi

    def _near(self, fresh: Bools) -> Bools:
        """Cheap pass over every tracked signal: a slope beyond what the signal normally does
        whose point forecast crosses a limit within the horizon (no standard errors yet: those
        are for the few candidates). In place; learns the typical slope every few looks."""
        cfg = self.config
        w, u, y = self._w, self._u, self._y
        inv, ui, b, lvl, t1 = self._inv, self._ui, self._b, self._lvl, self._tmp
        with np.errstate(divide="ignore", invalid="ignore"):  # no look yet: NaN, never near
            np.divide(1.0, w, out=inv)
            np.multiply(u, inv, out=ui)
            np.multiply(ui, y, out=t1)  # b = (uy − ū·y) / (uu − ū·u)
            np.subtract(self._uy, t1, out=b)
            np.multiply(ui, u, out=t1)
            np.subtract(self._uu, t1, out=t1)
            np.divide(b, t1, out=b)
            np.multiply(y, inv, out=lvl)  # level now = ref + ȳ + b·(s − ū)
            np.add(lvl, self._ref, out=lvl)
            np.subtract(self._t_look - self._t0, ui, out=t1)
            np.multiply(t1, b, out=t1)
            np.add(lvl, t1, out=lvl)
            # Crossing within the horizon: the level is inside and the level projected to the
            # horizon is beyond (hi ≤ proj while lvl < hi, or proj ≤ lo while lo < lvl).
            np.multiply(b, cfg.ttt_horizon, out=t1)
            np.add(t1, lvl, out=t1)
            near = (self.hi <= t1) & (lvl < self.hi)
            near |= (t1 <= self.lo) & (self.lo < lvl)
            np.abs(b, out=t1)
        near &= fresh
        near &= w >= cfg.ttt_min_points
        # Beyond the signal's own wander: residuals of a wandering signal are not independent,
        # so a slope many standard errors from 0 can still be ordinary for it.
        near &= t1 > self._bthr
        self._looks += 1
        if self._looks % LEARN_EVERY == 0:
            self._learn_scale(fresh, t1)
        return near

    def _learn_scale(self, fresh: Bools, absb: F64) -> None:
        """Typical |slope| (baseline-style robust scale: a running average, then an EWMA over
        `ttt_memory`), on every LEARN_EVERY-th look, while no finding is active; and the slope a
        forecast needs, which is infinite until `ttt_calibration` seconds of looks are in."""
        cfg = self.config
        learn = fresh & (self._w >= cfg.ttt_min_points) & np.isfinite(absb)
        if len(self._act):
            learn &= ~self._act.mask[self._cols]
        self._bn += learn
        rate = np.maximum(
            1.0 / np.maximum(self._bn, 1.0), LEARN_EVERY * cfg.ttt_every / cfg.ttt_memory
        )
        step = np.where(learn, rate * (np.where(learn, absb, 0.0) - self._bmad), 0.0)
        self._bmad += step
        armed = self._bn * (LEARN_EVERY * cfg.ttt_every) >= cfg.ttt_calibration
        self._bthr = np.where(armed, cfg.ttt_rate_sigmas * KAPPA * self._bmad, np.inf)

    def _test(self, fresh: Bools) -> Hits | None:
        """Onsets and recoveries at a look; positions are in `_cols`, the Hits in the shard."""
        cfg = self.config
        cols = self._cols
        near = self._near(fresh)
        watched = self._act.mask[cols]
        if not near.any() and not len(self._act):
            return None
        sel = np.flatnonzero(near | watched)
        b, se, level = self.trend(sel)
        dist, eta, eta_lo, eta_hi = self._eta(b, se, level, sel)
        was = watched[sel]
        with np.errstate(invalid="ignore"):
            moving = np.abs(b) > cfg.ttt_significance * se
            fire = near[sel] & moving & (dist > 0) & (eta <= cfg.ttt_horizon) & ~was
            calm = ~(np.abs(b) > se) | (dist <= 0) | (eta > cfg.ttt_clear * cfg.ttt_horizon)
            calm |= np.abs(b) < KAPPA * self._bmad[sel]  # back to its ordinary wander
        recovered = cols[sel[was & calm & fresh[sel]]]
        onsets = cols[sel[fire]]
        if not onsets.shape[0] and not recovered.shape[0]:
            return None
        if recovered.shape[0]:
            self._act.remove(recovered)
        if onsets.shape[0]:
            self._act.add(onsets)
        return Hits(
            onsets,
            score=cfg.ttt_horizon / np.maximum(eta[fire], 1e-9),
            observed=b[fire],
            baseline=np.zeros(onsets.shape[0]),
            sigma=se[fire],
            recovered=recovered,
            eta=eta[fire],
            eta_low=eta_lo[fire],
            eta_high=eta_hi[fire],
        )

    def forecast(self, now: float) -> tuple[F64, F64, F64]:
        """Per signal of the shard, seconds from `now` until the forecast crossing of a limit:
        ETA and its interval. inf where the signal is not moving toward a limit (no limit,
        moving away, or a slope within `ttt_z` standard errors of 0); 0 once beyond the limit;
        NaN where there is no trend yet."""
        b, se, level = self.trend()
        with np.errstate(invalid="ignore"):
            level = level + b * max(now - self._t_look, 0.0)
        dist, eta, eta_lo, eta_hi = self._eta(b, se, level)
        with np.errstate(invalid="ignore"):
            weak = ~(np.abs(b) > self.config.ttt_z * se)
            beyond = dist <= 0
        unknown = np.isnan(b)
        out = []
        for arr in (eta, eta_lo, eta_hi):
            arr = np.where(weak, np.inf, arr)
            arr = np.where(beyond, 0.0, arr)
            full = np.full(self.n, np.inf)  # no limit: never crosses one
            full[self._cols] = np.where(unknown, np.nan, arr)
            out.append(full)
        return out[0], out[1], out[2]
