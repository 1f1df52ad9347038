"""Variance changes: CUSUM on the squared innovation of the local residual, both directions.

For z ~ N(0, σ²) the log-likelihood ratio of std ratio λ against 1 is linear in z², so Page's
test for a change of variance is a CUSUM on q = z² with allowance
k(λ) = ln(λ²)·λ²/(λ² − 1): upward S ← max(0, S + q − k_up), downward S ← max(0, S + k_down − q).
That test needs independent z. The residual against the long baseline of a real signal is
anything but (its square measures how far the daily cycle has carried the level), so the
detector works on the residual against the local level, and whitens it: with ρ the residual's
lag-1 autocorrelation (learned per signal), e_t = z_t − ρ·z_{t−1} is the innovation an AR(1)
model cannot predict, which is what more sensor noise or more turbulence makes bigger. q is e²
over its learned (winsorised) mean square, capped at `variance_clip`² so that a spike cannot fire
it alone. What correlation is left in q is measured at the upward test's time scale
(`base.Vif`), and the deviations q − 1 are shrunk by √VIF before they enter that test; the
downward test takes q as it is (q ≥ 0 bounds what a run of small values can add to it, while
only the cap bounds a run of large ones), and its threshold is the classic one. The upward
threshold is higher than the classic one (see `DetectConfig.variance_h_up`). Both tests wait
until the VIF is calibrated, and for a few local half-lives after a level shift, while the local
level settles on the new level (a step is not more noise).

The std ratio is estimated from the run (√(k ± S/N), in q) and reported in the signal's unit
(observed = new innovation std, baseline = old). The baseline's scales then move `recentre` of
the way to it (on a log scale) and the finding stays active until the innovation std is back
within `return_fraction` × the largest log-distance seen from the one stored at the onset.

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
    Vif,
    const32,
)
from safety_nexus.detect.config import DetectConfig


class VarianceDetector(ScratchState):
    """Two one-sided CUSUMs on the squared, whitened local innovation (increase and decrease)."""

    name: ClassVar[str] = "variance"
    kind: ClassVar[FindingKind] = FindingKind.VARIANCE
    evidence_unit: ClassVar[str] = "{unit}"
    _scratch = (
        "_z",
        "_e",
        "_qq",
        "_tmp",
        "_aw",
        "_lb",
        "_big",
        "_rmax",
        "_zero",
        "_qmax",
        "_one",
        "_c",
        "_nc",
        "_msmin",
        "_neff",
    )

    def __init__(self, cols: Columns, config: DetectConfig) -> None:
        self.config = config
        self.period = cols.period
        self.n = n = cols.n
        # Row 0: S += q − k_up; row 1: S += k_down − q (written as −q − (−k_down)).
        h = [config.variance_h_up, config.variance_h_down]
        self._cusum = Cusum([[config.variance_k_up], [-config.variance_k_down]], [h[:1], h[1:]], n)
        # The time scale of the upward test: its delay for the change it is tuned to.
        up2 = config.variance_up * config.variance_up
        scale = config.variance_h_up / max(up2 - config.variance_k_up, 1e-3)
        # The CUSUMs may fire once the VIF has seen `vif_mature` windows of its scale.
        self._vif = Vif(
            [scale],
            n,
            memory=config.vif_memory,
            min_memory=config.vif_min_memory,
            mature=config.vif_mature,
            cap=16.0,
        )
        self._freeze_h = np.float32(config.vif_freeze * min(h))
        self._grown = n == 0  # every signal's VIF calibrated: the check stops
        self._on: Bools = np.zeros(n, dtype=np.bool_)  # VIF calibrated: the CUSUMs may fire
        self._root: F32 = np.ones(n, dtype=np.float32)  # √VIF of the upward test's input
        self._settle: F32 = np.zeros(n, dtype=np.float32)  # samples still to wait after a shift
        self._settling = False
        # Learned per signal (baseline-like weights: a running average, then the EWMA).
        self._count: F32 = np.full(n, 1e-30, dtype=np.float32)  # warm samples, capped
        self._prev: F32 = np.zeros(n, dtype=np.float32)  # previous local residual
        self._crr: F32 = np.zeros(n, dtype=np.float32)  # mean of z_t·z_(t−1)
        self._czz: F32 = np.zeros(n, dtype=np.float32)  # mean of z_t²
        self._ms: F32 = np.ones(n, dtype=np.float32)  # winsorised mean square of e
        self._vq: F32 = np.full(n, 2.0, dtype=np.float32)  # variance of q (2 for χ²₁)
        self._rho: F32 = np.zeros(n, dtype=np.float32)  # lag-1 autocorrelation, clipped
        # Σ aw·(q − 1)² and Σ aw since the last learning step.
        self._sq: F32 = np.zeros(n, dtype=np.float32)
        self._sw: F32 = np.zeros(n, dtype=np.float32)
        self._act = ActiveSet(n)
        # While active: log of the innovation std before the change and the largest log-distance.
        self._ref: F64 = np.zeros(n, dtype=np.float64)
        self._peak: F32 = np.zeros(n, dtype=np.float32)
        self._alloc_scratch()

    def _alloc_scratch(self) -> None:
        n = self.n
        self._z: F32 = np.empty(n, dtype=np.float32)
        self._e: F32 = np.empty(n, dtype=np.float32)
        self._qq: F32 = np.empty((2, 1, n), dtype=np.float32)  # the two sides' inputs
        self._tmp: F32 = np.empty(n, dtype=np.float32)
        self._aw: F32 = np.empty(n, dtype=np.float32)
        self._lb: Bools = np.empty((1, n), dtype=np.bool_)
        self._big: F32 = np.empty((1, n), dtype=np.float32)
        self._rmax: F32 = const32(n, self.config.variance_rho_max)
        self._zero: F32 = const32(n, 0.0)
        self._qmax: F32 = const32(n, self.config.variance_clip**2)
        self._one: F32 = const32(n, 1.0)
        self._c: F32 = const32(n, self.config.clip)
        self._nc: F32 = const32(n, -self.config.clip)
        self._msmin: F32 = const32(n, 1e-12)
        self._neff: F32 = const32(n, self.config.n_eff)

    @property
    def active(self) -> Bools:
        return self._act.mask

    def update(self, t: float, x: F64, ctx: BaselineView) -> Hits | None:
        del t, x
        cfg = self.config
        e, tmp, aw = self._e, self._tmp, self._aw
        pw = ctx.pw
        # zlc is not winsorised during the warm-up (and can be huge then): clip it here.
        z = self._z
        np.fmin(ctx.zlc, self._c, out=z)
        np.fmax(z, self._nc, out=z)
        # Learning weight: a running average over the warm samples, then the baseline's EWMA.
        np.add(self._count, pw, out=self._count)
        np.minimum(self._count, self._neff, out=self._count)
        np.divide(pw, self._count, out=aw)
        # Lag-1 autocorrelation of the local residual (ρ itself is updated on learning rows),
        # and the innovation it leaves.
        np.multiply(z, self._prev, out=tmp)
        np.subtract(tmp, self._crr, out=tmp)
        np.multiply(tmp, aw, out=tmp)
        np.add(self._crr, tmp, out=self._crr)
        np.multiply(z, z, out=tmp)
        np.subtract(tmp, self._czz, out=tmp)
        np.multiply(tmp, aw, out=tmp)
        np.add(self._czz, tmp, out=self._czz)
        np.multiply(self._rho, self._prev, out=e)
        np.subtract(z, e, out=e)
        # prev ← z where a sample came (z is finite everywhere; its weight says whether).
        np.subtract(z, self._prev, out=tmp)
        np.multiply(tmp, ctx.pm, out=tmp)
        np.add(self._prev, tmp, out=self._prev)
        # q = e² over its winsorised mean square, capped; the downward test's input.
        qq = self._qq
        q = qq[1, 0]
        np.multiply(e, e, out=q)
        # A signal that stops moving drives ms to 0; the floor keeps q finite (and large).
        np.fmax(self._ms, self._msmin, out=self._ms)
        np.divide(q, self._ms, out=q)
        np.fmin(q, self._qmax, out=q)
        np.subtract(q, self._one, out=tmp)  # q − 1, also the input of the VIF
        np.multiply(self._ms, tmp, out=e)  # ms ← ms·(1 + aw·(q − 1))
        np.multiply(e, aw, out=e)
        np.add(self._ms, e, out=self._ms)
        vif = self._vif
        np.subtract(tmp, vif.s[0], out=vif.delta[0])
        vif.smooth(pw)
        np.multiply(tmp, tmp, out=e)  # (q − 1)², for the variance of q (learned below)
        np.multiply(e, aw, out=e)
        np.add(self._sq, e, out=self._sq)
        np.add(self._sw, aw, out=self._sw)
        if vif.due:
            self._learn()
        # The upward test gets q' = 1 + (q − 1)/√VIF, VIF = E[s²/c] / Var(q) floored at 1; the
        # downward one q itself: q ≥ 0 bounds what a run of correlated small values can add to
        # it (at most k_down a sample), while nothing bounds a run of large ones but the cap.
        np.divide(tmp, self._root, out=qq[0, 0])
        np.add(qq[0, 0], self._one, out=qq[0, 0])
        w = pw
        if not self._grown:
            w = np.where(self._on, pw, np.float32(0.0))
        if self._settling:
            # After a level shift the local level needs a few half-lives to settle on the new
            # level; meanwhile the residual measures the step, not the noise.
            np.subtract(self._settle, pw, out=self._settle)
            np.maximum(self._settle, np.float32(0.0), out=self._settle)
            w = np.where(self._settle > 0, np.float32(0.0), w)
            self._settling = bool(self._settle.any())
        fired = self._cusum.step(qq, w)
        moved = ctx.moved
        if moved.shape[0]:
            # A level shift was just established on these signals: their recent innovations
            # measured the step, not the noise.
            self._cusum.reset(moved)
            self._vif.reset(moved)
            self._settle[moved] = np.float32(3.0 * cfg.local_halflife)
            self._settling = True
            fired = bool(self._cusum.fired.any())
        if not fired and not len(self._act):
            return None
        return self._events(ctx, fired)

    def _learn(self) -> None:
        """Every few rows: ρ, the variance of q, and the VIF where the CUSUMs are quiet."""
        vif = self._vif
        rho = self._rho
        np.divide(self._crr, np.maximum(self._czz, np.float32(1e-30)), out=rho)
        np.fmax(rho, self._zero, out=rho)  # only positive correlation is whitened
        np.fmin(rho, self._rmax, out=rho)
        # vq moves towards the (weighted) mean of (q − 1)² since the last learning step, by the
        # weight those samples have (at most all of it, early in the running average).
        e, sw = self._e, self._sw
        np.divide(self._sq, np.maximum(sw, np.float32(1e-30)), out=e)
        np.subtract(e, self._vq, out=e)
        np.minimum(sw, np.float32(1.0), out=sw)
        np.multiply(e, sw, out=e)
        np.add(self._vq, e, out=self._vq)
        self._sq.fill(0.0)
        self._sw.fill(0.0)
        np.less(self._cusum.largest(self._big), self._freeze_h, out=self._lb)
        vif.learn(self._lb)
        np.divide(vif.v[0], self._vq, out=self._root)
        np.fmax(self._root, self._one, out=self._root)
        np.sqrt(self._root, out=self._root)
        if not self._grown:
            np.copyto(self._on, vif.mature[0])
            self._grown = bool(self._on.all())

    def _innovation_std(self, cols: Index, ctx: BaselineView) -> F64:
        """The innovation std of `cols`, in the signal's unit."""
        ms = self._ms[cols].astype(np.float64)
        sd: F64 = np.sqrt(ms) * ctx.local_std[cols].astype(np.float64)
        np.maximum(sd, self.config.min_sigma, out=sd)
        return sd

    def _events(self, ctx: BaselineView, fired: bool) -> Hits | None:
        cfg = self.config
        onsets: Index = np.empty(0, dtype=np.intp)
        cols: Index = np.empty(0, dtype=np.intp)
        score = observed = baseline = sigma = np.empty(0)
        if fired:
            cs = self._cusum
            cols = np.flatnonzero(cs.fired)
            side, _, ratio, runs = cs.best(cols)
            sgn = 1.0 - 2.0 * side
            # Mean of q' over the run: sign·(k + S/N) undoes the sign convention of each side;
            # then undo the VIF shrinkage to get the mean of q, the variance ratio.
            qp = sgn * (cs.k[side, 0, 0] + cs.S[side, 0, cols] / np.maximum(runs, 1.0))
            # Only the upward q' shrank.
            root = np.where(side == 0, self._root[cols].astype(np.float64), 1.0)
            qhat = 1.0 + (qp - 1.0) * root
            # q is capped at clip², so the ratio is too; the floor keeps a signal that stopped
            # moving from rescaling the baseline towards 0.
            factor = np.sqrt(np.clip(qhat, 1e-4, cfg.variance_clip**2))
            cs.reset(cols)
            self._vif.reset(cols)
            sd = self._innovation_std(cols, ctx)
            # e is in units of the local std, so moving that scale moves the innovation's.
            ctx.scale_by(cols, factor**cfg.recentre)
            new = ~self._act.mask[cols]
            onsets = cols[new]
            if onsets.shape[0]:
                self._ref[onsets] = np.log(sd[new])
                self._peak[onsets] = cfg.recentre * np.abs(np.log(factor[new]))
                score = ratio[new]
                observed = sd[new] * factor[new]
                baseline = sd[new]
                sigma = sd[new]
                self._act.add(onsets)
        recovered: Index = np.empty(0, dtype=np.intp)
        if len(self._act):
            # Signals that fired this row are judged on the next one, once their scale has moved.
            idx = np.setdiff1d(self._act.idx, cols, assume_unique=True) if fired else self._act.idx
            log_std = np.log(self._innovation_std(idx, ctx))
            dist = np.abs(log_std - self._ref[idx])
            peak = np.maximum(self._peak[idx], dist)
            self._peak[idx] = peak
            back = dist <= np.float32(cfg.return_fraction) * peak
            recovered = idx[back]
            if recovered.shape[0]:
                self._act.remove(recovered)
                # Back within tolerance: the reference scale is the best estimate of normal.
                ctx.scale_by(recovered, np.exp(self._ref[recovered] - log_std[back]))
        if onsets.shape[0] or recovered.shape[0]:
            return Hits(onsets, score, observed, baseline, sigma, recovered)
        return None
