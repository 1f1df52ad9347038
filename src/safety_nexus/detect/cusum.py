"""Level shifts: two-sided CUSUMs (Page, 1954) against two references, calibrated per signal.

*Against the long baseline* (the classic bank). For each allowance k in `cusum_k` (in sigmas)
an upper and a lower statistic S ← max(0, S ± z − k) on the winsorised residual z fire when one
exceeds its threshold h. A small k catches shifts far below any threshold (a sustained 0.1σ
shift is found in about 1.5 thousand samples with the defaults); a large k keeps big shifts
quick. The thresholds hold for independent noise, and these statistics run only on signals
whose residual is indistinguishable from it at each of their time scales: per signal and scale
T = h/k, the variance inflation of the residual (`base.Vif`: how much more a T-sample average of
it varies than one of independent samples) must be within its own scatter of 1 once that
estimate is precise, and below `vif_max` before. Real telemetry mostly fails that test — sensor
noise has a time constant, a temperature follows the load, a pressure the traffic, and a long
mean lags the daily cycle — and there these statistics would fire all day on the wander itself.

*Against the local level* (every signal). One more pair (`local_k`, `local_h`) watches the
residual against the local level (a dozen samples of memory), standardised by its own measured
VIF: a step stands out against where the signal just was, however the signal wanders over
hours. It cannot see shifts of the size of the wander, and that is the limit of a baseline
without a model of the day (seasonality-aware baselines are another detector family).

On firing, all statistics of that signal reset and the shift is estimated from the run (k + S/N
effective sigmas, the usual CUSUM estimate; the raw residual when the step is bigger than the
winsorised statistic can express; for the local reference, corrected for what the local level
absorbed during the run) and reported in the signal's unit against the level before the run.
The baseline mean then moves `recentre` × that estimate towards the new level (the estimate is
biased upwards for shifts near the detection limit; what is left is caught by the next firing),
and after a step the local level restarts from the current sample, so that the other detectors
stay calibrated, while this detector keeps the pre-shift mean as its reference: the finding
stays active while the mean is away from it and clears once it is back within
`return_fraction` × the largest distance seen (a return is itself a shift the CUSUM detects).

*At the statistical limit* (residuals known to be white: a benchmark, or a signal checked
offline). `vif_gate=False` runs the long-baseline statistics from warm-up on, `local_cusum=False`
drops the local pair, `cusum_sides` watches a known direction only, and a signal whose expected
shift δ is known gets its own allowance δ/2 and threshold (`DetectorBank(cusum_design=...)`,
designed with `detect.design`): the optimal CUSUM for it. With a baseline that remembers long
(`halflife`, `DetectorBank.prime`) the delays come within a few per cent of the optimal
CUSUM's (benchmarks/shift_delay.py). `rearm` forgets a signal's finding and watches afresh.

Example (seeded): a signal that wanders by itself (an AR(1) process of std 1 with a time
constant of 200 samples, plus white noise of std 0.5) raises nothing, though its level swings
by several of its noise sigmas all the time; a step of 2.5 (five noise sigmas) is found at once.

>>> import numpy as np
>>> from safety_nexus.core import Frame
>>> from safety_nexus.detect import DetectorBank
>>> from safety_nexus.detect.testing import make_table
>>> rng = np.random.default_rng(1)
>>> wander = np.zeros(8000)
>>> for i in range(1, 8000):
...     wander[i] = 0.995 * wander[i - 1] + 0.1 * rng.normal()
>>> values = (wander + 0.5 * rng.normal(size=8000))[:, None]
>>> values[6000:] += 2.5
>>> bank = DetectorBank(make_table(1), detectors=["cusum"])
>>> result = bank.process(Frame(np.arange(8000.0), values))
>>> [(f.time, round(f.deviation, 1)) for f in result.findings]
[(6005.0, 2.5)]

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
    BIG32,
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
    Vif,
)
from safety_nexus.detect.config import DetectConfig


def time_scale(k: float, h: float) -> float:
    """Samples a CUSUM with allowance k and threshold h integrates over: h/k, the window over
    which an in-control excursion most likely reaches h (h² for k = 0, a pure random walk)."""
    return h / k if k > 0 else h * h


class LevelShiftDetector(ScratchState):
    """CUSUM bank for level shifts of unknown size: one up/down pair per allowance against the
    long baseline (run where the residual is white), one against the local level (run on every
    signal, standardised by its measured VIF)."""

    name: ClassVar[str] = "cusum"
    kind: ClassVar[FindingKind] = FindingKind.LEVEL_SHIFT
    evidence_unit: ClassVar[str] = "{unit}"
    _scratch = ("_u", "_wt", "_big", "_lb", "_white", "_bound", "_okl", "_strict")
    _uses_vif: bool = True  # (state pickled before the setting existed)

    def __init__(self, cols: Columns, config: DetectConfig) -> None:
        self.config = config
        self.n = n = cols.n
        ks = [*config.cusum_k, config.local_k]
        hs = [*config.cusum_h, config.local_h]
        self._long = L = len(config.cusum_k)  # inputs 0..L-1: long baseline; input L: local
        # A direction the long-baseline statistics do not watch gets an infinite allowance:
        # S = max(0, S ± u − 1e30) stays 0, at no cost in the hot path.
        off = float(BIG32)
        up = [off if config.cusum_sides == "down" else k for k in config.cusum_k]
        down = [off if config.cusum_sides == "up" else k for k in config.cusum_k]
        kq = np.asarray([[*up, config.local_k], [*down, config.local_k]], dtype=np.float32)
        hq = np.asarray([hs, hs], dtype=np.float32)
        self._kk = np.asarray(ks, dtype=np.float64)  # (the shift estimate needs k exactly)
        self._k_own: F64 | None = None
        if cols.cusum_k is not None and cols.cusum_h is not None:
            # Signals whose expected shift is known get their own allowance and threshold on
            # the first long-baseline statistic (same sides); their other ones are off.
            own = np.isfinite(cols.cusum_k) & np.isfinite(cols.cusum_h)
            kq = np.repeat(kq[:, :, None], n, axis=2)
            hq = np.repeat(hq[:, :, None], n, axis=2)
            k_own = cols.cusum_k[own].astype(np.float32)
            kq[0, 0, own] = off if config.cusum_sides == "down" else k_own
            kq[1, 0, own] = off if config.cusum_sides == "up" else k_own
            kq[:, 1:L, own] = off
            hq[:, 0, own] = cols.cusum_h[own].astype(np.float32)
            self._k_own = np.where(own, cols.cusum_k, np.nan)
        self._cusum = Cusum(kq, hq, n)
        scales = [time_scale(k, h) for k, h in zip(ks, hs, strict=True)]
        opts = {
            "memory": config.vif_memory,
            "min_memory": config.vif_min_memory,
            "mature": config.vif_mature,
            "cap": 16.0,
        }
        # One estimator for all inputs: rows 0..L-1 the long-baseline ones, row L the local.
        self._vif = Vif(scales, n, **opts)
        # Before any long-baseline CUSUM runs, each of their VIFs must have seen this many
        # samples (or be calibrated, if sooner): a few hundred samples show most wander.
        self._seen_enough = np.minimum(
            self._vif.n_mature[:L], np.float32(config.vif_min_memory)
        ).astype(np.float32)
        self._grown = n == 0  # every VIF of every signal calibrated: the checks stop
        # Without the VIF gate the long-baseline CUSUMs always run (from warm-up on: their
        # weight is the baseline's); with no local pair either, no VIF is needed at all.
        self._on: Bools = np.full(n, not config.vif_gate, dtype=np.bool_)
        self._uses_vif = config.vif_gate or config.local_cusum
        self._local_on: Bools = np.zeros(n, dtype=np.bool_)  # the local CUSUM runs
        self._root: F32 = np.ones(n, dtype=np.float32)  # √VIF of the local CUSUM's input
        # Per input, (R, 1) or per signal (R, n).
        self._freeze_h = np.float32(config.vif_freeze) * self._cusum.h[0]
        self._hold_h = np.float32(config.long_hold) * self._cusum.h[0, :L]
        self._act = ActiveSet(n)
        # While active: the level before the shift, the largest distance from it so far, whether
        # that level is the local one, and how far the long mean was re-centred meanwhile.
        self._ref: F64 = np.zeros(n, dtype=np.float64)
        self._peak: F32 = np.zeros(n, dtype=np.float32)
        self._by_local: Bools = np.zeros(n, dtype=np.bool_)
        self._recentred: F32 = np.zeros(n, dtype=np.float32)
        self._alloc_scratch()

    def _alloc_scratch(self) -> None:
        shape = (self._long + 1, self.n)
        long = (self._long, self.n)
        self._u: F32 = np.empty(shape, dtype=np.float32)
        self._wt: F32 = np.empty(shape, dtype=np.float32)
        self._big: F32 = np.empty(shape, dtype=np.float32)
        self._lb: Bools = np.empty(shape, dtype=np.bool_)
        self._white: F32 = np.empty(long, dtype=np.float32)
        self._bound: F32 = np.empty(shape, dtype=np.float32)
        self._okl: Bools = np.empty(long, dtype=np.bool_)
        self._strict: Bools = np.empty(long, dtype=np.bool_)

    @property
    def active(self) -> Bools:
        return self._act.mask

    def rearm(self, cols: Index) -> F64:
        """Forget the level shifts of `cols` and watch them afresh: their findings clear (without
        a recovery), their statistics restart from zero, and the re-centring their findings
        caused is handed back (add it to the baseline mean) so that the level before them is
        the reference again. For an operator who rejects a finding, or a benchmark that needs
        independent runs. Call between frames."""
        cols = np.asarray(cols, dtype=np.intp)
        undo = -self._recentred[cols].astype(np.float64)
        self._recentred[cols] = 0.0
        self._cusum.reset(cols)
        self._vif.reset(cols)
        if self._act.mask[cols].any():
            self._act.remove(cols)
        return undo

    def update(self, t: float, x: F64, ctx: BaselineView) -> Hits | None:
        del t, x
        vif, cs, L = self._vif, self._cusum, self._long
        if self._uses_vif:
            # Smooth each input at its scale (winsorised residuals against the two levels).
            np.subtract(ctx.zc, vif.s[:L], out=vif.delta[:L])
            np.subtract(ctx.zlc, vif.s[L], out=vif.delta[L])
            vif.smooth(ctx.pw)
            if vif.due:  # every few rows: learn the VIFs and decide which CUSUMs run
                self._learn_and_switch()
        wt = self._wt
        np.multiply(self._on, ctx.pw, out=wt[0])
        wt[1:L] = wt[0]
        np.multiply(self._local_on, ctx.pw, out=wt[L])
        # The local CUSUM's input is standardised by its VIF: u = zlc / √VIF.
        u = self._u
        u[:L] = ctx.zc
        np.divide(ctx.zlc, self._root, out=u[L])
        fired = cs.step(u, wt)
        if not fired and not len(self._act):
            return None
        return self._events(ctx, fired)

    def _learn_and_switch(self) -> None:
        cfg, vif, cs, L = self.config, self._vif, self._cusum, self._long
        # Learn the VIFs where the CUSUMs are quiet. A shift that one long-baseline CUSUM is
        # accumulating also inflates the faster scales' estimates (a 1.5σ step is a slow climb
        # for the k = 1 CUSUM, a quick one for k = 0.25): the long-baseline VIFs learn only while
        # none of those CUSUMs climbs. An estimate that is still calibrating learns regardless:
        # stopping it whenever its CUSUM climbs would keep an under-estimate forever on a signal
        # that really is autocorrelated (there the CUSUM climbs all the time).
        lb, big = self._lb, cs.largest(self._big)
        np.less(big, self._freeze_h, out=lb)
        quiet = np.logical_and.reduce(lb[:L], axis=0)
        lb[:L] = quiet
        mature = None if self._grown else vif.mature
        if mature is not None:
            np.logical_or(lb, ~mature, out=lb)
            mature = mature[:L]
        vif.learn(lb)
        # The local CUSUM is standardised by an upper bound of its VIF, one standard error
        # above the estimate: an under-estimate costs findings all day on a wandering signal,
        # an over-estimate a little sensitivity, and the bound tightens as evidence comes.
        bound = vif.white(1.0, out=self._bound)
        np.multiply(bound[L], vif.v[L], out=self._root)
        np.maximum(self._root, np.float32(1.0), out=self._root)
        np.sqrt(self._root, out=self._root)
        # The long-baseline CUSUMs are the classic ones, calibrated for independent noise, and
        # run only where the residual against the long baseline is indistinguishable from it at
        # each of their scales. An estimate precise enough to tell a VIF of 1 from `vif_min`
        # (its `Vif.white` bound below vif_min) must be within `vif_significance` standard
        # errors of 1; one that is not yet (the slowest needs hours of a signal) only counts
        # against the signal above vif_max; and before any of them runs, each estimate must
        # have seen `vif_min_memory` samples (or be calibrated, if sooner): a few minutes show
        # most wander. On a signal that wanders by itself these CUSUMs would fire whenever the
        # wander carries the level more than k away, and a calibration on the wander would
        # change with the time of day. Two margins keep the switch steady: a running family
        # goes off only one standard error further out than a stopped one comes on (else an
        # estimate on the edge flips it back and forth, and the first samples of a shift,
        # learned before any CUSUM climbs, could switch off the CUSUM about to find it), and
        # nothing switches while any of them is above `long_hold` of its threshold.
        okl, strict = self._okl, self._strict
        white = self._white
        np.subtract(bound[:L], np.float32(1.0), out=white)  # one standard error
        np.multiply(white, np.float32(cfg.vif_significance), out=white)
        np.add(white, np.float32(1.0), out=white)
        np.less(white, np.float32(cfg.vif_min), out=strict)
        if mature is not None:
            np.logical_and(strict, mature, out=strict)
        margin = (white - np.float32(1.0)) * np.float32(1.0 / cfg.vif_significance)
        np.multiply(margin, self._on, out=margin)
        np.add(white, margin, out=white)
        np.copyto(white, np.float32(cfg.vif_max), where=~strict)
        np.less(vif.v[:L], white, out=okl)
        if mature is not None:
            np.logical_and(okl, vif.count[:L] >= self._seen_enough, out=okl)
        ok = np.logical_and.reduce(okl, axis=0)
        low = np.logical_and.reduce(big[:L] < self._hold_h, axis=0)
        if cfg.vif_gate:
            np.copyto(self._on, ok, where=low)
        # The local CUSUM runs once its VIF is calibrated (if it runs at all).
        if mature is not None:
            calibrated = vif.mature
            if cfg.local_cusum:
                np.copyto(self._local_on, calibrated[L])
            self._grown = bool(calibrated.all())

    def _events(self, ctx: BaselineView, fired: bool) -> Hits | None:
        cfg, cs, L = self.config, self._cusum, self._long
        onsets: Index = np.empty(0, dtype=np.intp)
        cols: Index = np.empty(0, dtype=np.intp)
        score = observed = baseline = sigma = np.empty(0)
        if fired:
            cols = np.flatnonzero(cs.fired)
            side, inp, ratio, runs = cs.best(cols)
            sgn = 1.0 - 2.0 * side
            local = inp == L
            n_run = np.maximum(runs, 1.0)
            # Mean of u over the run (k + S/N), back in the unit: u is the winsorised residual
            # over its std·√VIF.
            k = self._kk[inp]
            if self._k_own is not None:
                k_own = self._k_own[cols]
                k = np.where((inp == 0) & np.isfinite(k_own), k_own, k)
            mean_u = k + cs.S[side, inp, cols].astype(np.float64) / n_run
            sd = np.where(local, ctx.local_std[cols], ctx.std[cols]).astype(np.float64)
            # u was divided by √VIF for the local CUSUM, by nothing for the long-baseline ones.
            sd_eff = sd * np.where(local, self._root[cols].astype(np.float64), 1.0)
            run = sgn * mean_u * sd_eff
            # The level before the run: the long mean barely moves in a run; the local level
            # has absorbed about alpha·N times the mean residual by now.
            absorbed = np.where(local, cfg.local_alpha * n_run * run, 0.0)
            mu = np.where(local, ctx.local_mean[cols], ctx.mean[cols]) - absorbed
            # Winsorising caps what S/N can say about a big step: beyond the clip, the raw
            # residual on the same side is the better estimate.
            z = np.where(local, ctx.zl[cols], ctx.z[cols]).astype(np.float64)
            far = (z * sgn > cfg.clip) & (np.abs(z) * sd > np.abs(run))
            level = np.where(local, ctx.local_mean[cols], ctx.mean[cols])
            step = np.where(far, level + z * sd - mu, run + 0.5 * absorbed)
            cs.reset(cols)
            self._vif.reset(cols)
            ctx.shift_mean(cols, cfg.recentre * step)
            # After a step the local CUSUM found (or one beyond the clip), the local level
            # restarts from this sample rather than creep after it; after a slow shift it is
            # already there.
            renew = cols[local | far]
            if renew.shape[0]:
                ctx.relevel(renew)
            new = ~self._act.mask[cols]
            onsets = cols[new]
            self._recentred[cols] += (cfg.recentre * step).astype(np.float32)
            if onsets.shape[0]:
                # The level the finding is judged against: the long mean for a shift the
                # classic statistics found, the local level for a step (on a wandering signal
                # the long mean drifts with the day, and a finding judged by it might never
                # clear, hiding the next fault on that signal).
                self._by_local[onsets] = local[new]
                self._ref[onsets] = mu[new]
                self._peak[onsets] = cfg.recentre * np.abs(step[new])
                score = ratio[new]
                observed = mu[new] + step[new]
                baseline = mu[new]
                sigma = sd[new]
                self._act.add(onsets)
        recovered: Index = np.empty(0, dtype=np.intp)
        if len(self._act):
            # Signals that fired this row are judged on the next one, once their level moved.
            idx = np.setdiff1d(self._act.idx, cols, assume_unique=True) if fired else self._act.idx
            by_local = self._by_local[idx]
            level = np.where(by_local, ctx.local_mean[idx], ctx.mean[idx])
            dist = np.abs(level - self._ref[idx]).astype(np.float32)
            peak = np.maximum(self._peak[idx], dist)
            self._peak[idx] = peak
            back = dist <= np.float32(cfg.return_fraction) * peak
            recovered = idx[back]
            if recovered.shape[0]:
                self._act.remove(recovered)
                # Back within tolerance: the reference level is the best estimate of normal
                # (for a step, undo the re-centring it caused; the long mean did the rest).
                undo = np.where(
                    by_local[back],
                    -self._recentred[recovered].astype(np.float64),
                    self._ref[recovered] - ctx.mean[recovered],
                )
                ctx.shift_mean(recovered, undo)
                self._recentred[recovered] = 0.0
        if onsets.shape[0] or recovered.shape[0]:
            return Hits(onsets, score, observed, baseline, sigma, recovered)
        return None
