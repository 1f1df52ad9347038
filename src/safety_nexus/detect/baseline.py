"""Robust streaming baseline: mean and scale per signal, that every other detector standardises by.

Two memories per signal. The *mean* remembers long (`halflife`, thousands of samples), so that a
small, sustained shift stands out against it; the *local level* remembers short
(`local_halflife`, a dozen samples), so that a signal whose level wanders by itself — a
temperature following the load, a pressure following the traffic — is followed closely and a
step still stands out against where it just was. Each has its own robust scale (the local one
learned with the long memory: the noise level is a property of the sensor, the level is not).

The mean starts as an exact running average (weight 1/n) and turns into an EWMA of the configured
half-life once n reaches 1/alpha; during that running start the one-step residuals
x_n − mean_{n−1} of a stationary signal are independent, so a CUSUM on them is not fooled by the
baseline still learning. The scale is the mean absolute residual × √(π/2) (a std for Gaussian
noise, cheaper than a variance and less swayed by outliers).

Robust against what it must detect:
  * after warm-up, updates are winsorised at `clip` sigmas, so a spike moves the mean by at most
    alpha·clip·σ, and the long half-life keeps a small shift from being absorbed before the
    CUSUM has seen it;
  * once a detector has established a change (a level shift, a new noise level) it re-centres
    the baseline on it (`shift_mean`, `scale_by`) instead of letting the EWMA absorb it slowly:
    the other detectors stay calibrated, and the detector keeps its finding active against the
    reference it stored at the onset.
During the first `warmup` samples of a signal nothing is clipped (the scale is not known yet) and
detectors raise no findings.

Example (seeded): three signals around 10, 20 and 30 with std 1, 2 and 0.5.

>>> import numpy as np
>>> from safety_nexus.detect import Baseline, DetectConfig
>>> rng = np.random.default_rng(0)
>>> base = Baseline(3, DetectConfig(warmup=20))
>>> rows = np.array([10.0, 20.0, 30.0]) + rng.normal(size=(3000, 3)) * [1.0, 2.0, 0.5]
>>> for t, row in enumerate(rows):
...     base.learn(float(t), row)
>>> [round(float(v), 2) for v in base.mean], [round(float(v), 2) for v in base.std]
([9.99, 19.99, 30.01], [1.02, 1.98, 0.5])
"""

from __future__ import annotations

import numpy as np

from safety_nexus.core.errors import DetectError
from safety_nexus.detect.base import (
    BIG32,
    EMPTY_INDEX,
    F32,
    F64,
    KAPPA,
    Bools,
    Index,
    ScratchState,
    const32,
)
from safety_nexus.detect.config import DetectConfig


class Baseline(ScratchState):
    """Per-signal robust mean/scale over n signals; implements `BaselineView` between
    `prepare(t, x)` (compute the residuals of row x against the current baseline) and `commit()`
    (learn row x)."""

    _scratch = (
        "x",
        "z",
        "zc",
        "d",
        "pmb",
        "pm",
        "pw",
        "a",
        "warmb",
        "first",
        "_r64",
        "_r32",
        "_rc",
        "_inc64",
        "_tx",
        "_pw_cold",
        "_warm_cold",
        "_first_cold",
        "_c",
        "_nc",
        "_neff",
        "_floor",
        "zl",
        "zlc",
        "_al",
        "_alpha_l",
        "_rl64",
    )

    def __init__(self, n: int, config: DetectConfig | None = None) -> None:
        if n < 0:
            raise DetectError("baseline needs a non-negative number of signals")
        self.config = config or DetectConfig()
        self.n = n
        # Persistent state (what `nbytes` counts and what pickles).
        self.mean: F64 = np.zeros(n, dtype=np.float64)
        self.mad: F32 = np.zeros(n, dtype=np.float32)  # mean absolute residual
        self.std: F32 = np.ones(n, dtype=np.float32)
        self.inv_std: F32 = np.ones(n, dtype=np.float32)
        # Tiny rather than 0 so that pm / count is 0, not NaN, before the first sample.
        self.count: F32 = np.full(n, 1e-30, dtype=np.float32)
        self.last: F64 = np.full(n, np.nan, dtype=np.float64)  # previous sample of each signal
        self.last_t: F64 = np.full(n, -np.inf, dtype=np.float64)
        self.local_mean: F64 = np.zeros(n, dtype=np.float64)
        self.local_mad: F32 = np.zeros(n, dtype=np.float32)
        self.local_std: F32 = np.ones(n, dtype=np.float32)
        self.inv_local_std: F32 = np.ones(n, dtype=np.float32)
        # Re-centring requests of this row: (cols, mean delta, scale factor); relevel requests.
        self._pending: list[tuple[Index, F64 | None, F64 | None]] = []
        self._relevel: list[Index] = []
        self._moved_prev: Index = EMPTY_INDEX  # columns moved at the last commit
        self._n_cold = n  # signals not warmed up yet; 0 switches off the warm-up path
        self.t = float("-inf")
        self._alloc_scratch()

    def _alloc_scratch(self) -> None:
        n, cfg = self.n, self.config
        self.x: F64 = np.full(n, np.nan, dtype=np.float64)
        self.z: F32 = np.empty(n, dtype=np.float32)
        self.zc: F32 = np.empty(n, dtype=np.float32)
        self.d: F64 = np.empty(n, dtype=np.float64)
        self.pmb: Bools = np.empty(n, dtype=np.bool_)
        self.pm: F32 = np.empty(n, dtype=np.float32)
        self.a: F32 = np.empty(n, dtype=np.float32)
        self._r64: F64 = np.empty(n, dtype=np.float64)
        self._r32: F32 = np.empty(n, dtype=np.float32)
        self._rc: F32 = np.empty(n, dtype=np.float32)
        self._inc64: F64 = np.empty(n, dtype=np.float64)
        self._tx: F64 = np.empty(n, dtype=np.float64)
        self._pw_cold: F32 = np.empty(n, dtype=np.float32)
        self._warm_cold: Bools = np.empty(n, dtype=np.bool_)
        self._first_cold: Bools = np.empty(n, dtype=np.bool_)
        self._c: F32 = const32(n, cfg.clip)
        self._nc: F32 = const32(n, -cfg.clip)
        self._neff: F32 = const32(n, cfg.n_eff)
        self._floor: F32 = const32(n, cfg.min_sigma)
        self.zl: F32 = np.empty(n, dtype=np.float32)
        self.zlc: F32 = np.empty(n, dtype=np.float32)
        self._al: F32 = np.empty(n, dtype=np.float32)
        self._alpha_l: F32 = const32(n, cfg.local_alpha)
        self._rl64: F64 = np.empty(n, dtype=np.float64)
        self.pw: F32 = self.pm
        self.warmb: Bools | None = None
        self.first: Bools | None = None
        if self._n_cold:
            self._refresh_cold(force=True)

    def _refresh_cold(self, force: bool = False) -> None:
        """Warm-up bookkeeping, done only while some signal of the shard is still warming up."""
        warm = self._warm_cold
        np.greater_equal(self.count, np.float32(self.config.warmup), out=warm)
        n_cold = int(self.n - np.count_nonzero(warm))
        # Warm-up is monotone (count never decreases), so an unchanged count is an unchanged mask.
        changed = force or n_cold != self._n_cold
        self._n_cold = n_cold
        if not changed:
            return
        if n_cold == 0:
            self.warmb = None
            self.pw = self.pm
            self._c.fill(self.config.clip)
            self._nc.fill(-self.config.clip)
            return
        self.warmb = warm
        self.pw = self._pw_cold
        # No clipping before the scale is known.
        self._c.fill(BIG32)
        self._c[warm] = self.config.clip
        np.negative(self._c, out=self._nc)

    # -- the row cycle ------------------------------------------------------------------------

    def prepare(self, t: float, x: F64) -> None:
        """Residuals of row `x` (time `t`) against the current baseline; learns nothing yet."""
        self.t = t
        self.x = x
        np.subtract(x, self.mean, out=self._r64)
        np.copyto(self._r32, self._r64, casting="same_kind")
        np.equal(x, x, out=self.pmb)  # False only for NaN
        np.copyto(self.pm, self.pmb)
        if self._n_cold:
            self._refresh_cold()
            if self._n_cold:
                assert self.warmb is not None
                np.multiply(self.pm, self.warmb, out=self._pw_cold)
                np.less(self.count, np.float32(0.5), out=self._first_cold)
                np.logical_and(self._first_cold, self.pmb, out=self._first_cold)
                self.first = self._first_cold if self._first_cold.any() else None
            else:
                self.first = None
        np.add(self.count, self.pm, out=self.count)
        np.minimum(self.count, self._neff, out=self.count)
        np.divide(self.pm, self.count, out=self.a)
        np.multiply(self._r32, self.inv_std, out=self.z)
        # fmin/fmax (not clip): a NaN (missing) becomes a finite bound, so that multiplying by
        # the zero weight of a missing sample gives 0 and not NaN.
        np.fmin(self.z, self._c, out=self.zc)
        np.fmax(self.zc, self._nc, out=self.zc)
        np.subtract(x, self.local_mean, out=self._rl64)
        np.copyto(self.zl, self._rl64, casting="same_kind")
        np.multiply(self.zl, self.inv_local_std, out=self.zl)
        np.fmin(self.zl, self._c, out=self.zlc)
        np.fmax(self.zlc, self._nc, out=self.zlc)
        np.subtract(x, self.last, out=self.d)
        # last ← x where present: fmax(x, fmin(last, x)) is x if x is a number and last if x is
        # NaN, exactly and without a mask (`copyto(where=)` is several times slower, and much
        # slower still when the mask is irregular).
        np.fmin(self.last, x, out=self.last)
        np.fmax(x, self.last, out=self.last)
        tx = self._tx
        np.multiply(x, 0.0, out=tx)  # 0, or NaN where missing
        np.add(tx, t, out=tx)
        np.fmax(self.last_t, tx, out=self.last_t)  # times only grow

    def commit(self) -> None:
        """Learn the prepared row (after the detectors have seen it)."""
        a = self.a
        rc = self._rc
        np.multiply(self.zc, self.std, out=rc)  # winsorised residual, in the signal's unit
        np.multiply(rc, a, out=self._r32)
        np.copyto(self._inc64, self._r32)
        np.add(self.mean, self._inc64, out=self.mean)
        np.abs(rc, out=rc)
        np.subtract(rc, self.mad, out=rc)
        np.multiply(rc, a, out=rc)
        np.add(self.mad, rc, out=self.mad)
        # The local level: weight max(a, alpha_local) (a running average at first, like the
        # mean), its scale learned with the baseline's long weight a.
        al = self._al
        np.multiply(self.pm, self._alpha_l, out=al)
        np.maximum(al, a, out=al)
        rc = self._rc
        np.multiply(self.zlc, self.local_std, out=rc)
        np.multiply(rc, al, out=self._r32)
        np.copyto(self._inc64, self._r32)
        np.add(self.local_mean, self._inc64, out=self.local_mean)
        np.abs(rc, out=rc)
        np.subtract(rc, self.local_mad, out=rc)
        np.multiply(rc, a, out=rc)
        np.add(self.local_mad, rc, out=self.local_mad)
        if self.first is not None:
            # The first sample defines the mean exactly (the float32 path above would round it)
            # and says nothing about the scale (its residual is against the initial 0).
            first = self.first
            self.mean[first] = self.x[first]
            self.mad[first] = 0.0
            self.local_mean[first] = self.x[first]
            self.local_mad[first] = 0.0
            self.first = None
        self._moved_prev = self._moved_now()
        if self._pending:
            self._apply_pending()
        if self._relevel:
            cols = np.concatenate(self._relevel)
            self._relevel.clear()
            present = cols[self.pmb[cols]]
            self.local_mean[present] = self.x[present]
        np.multiply(self.mad, np.float32(KAPPA), out=self.std)
        np.fmax(self.std, self._floor, out=self.std)
        np.divide(np.float32(1.0), self.std, out=self.inv_std)
        np.multiply(self.local_mad, np.float32(KAPPA), out=self.local_std)
        np.fmax(self.local_std, self._floor, out=self.local_std)
        np.divide(np.float32(1.0), self.local_std, out=self.inv_local_std)

    def learn(self, t: float, x: F64) -> None:
        """prepare + commit: learn a row when no detector needs to look at it."""
        self.prepare(t, np.ascontiguousarray(x, dtype=np.float64))
        self.commit()

    # -- re-centring requested by detectors ----------------------------------------------------

    def _moved_now(self) -> Index:
        moved = [cols for cols, delta, _ in self._pending if delta is not None]
        return np.unique(np.concatenate(moved)) if moved else EMPTY_INDEX

    @property
    def moved(self) -> Index:
        """Columns whose mean a detector moved during this row or the previous one (so that a
        detector that runs before the one moving it still hears of it, a row later)."""
        if not self._pending:
            return self._moved_prev
        now = self._moved_now()
        if not self._moved_prev.shape[0]:
            return now
        return np.union1d(now, self._moved_prev)

    def shift_mean(self, cols: Index, delta: F64) -> None:
        self._pending.append((cols, delta, None))

    def scale_by(self, cols: Index, factor: F64) -> None:
        self._pending.append((cols, None, factor))

    def relevel(self, cols: Index) -> None:
        self._relevel.append(cols)

    def _apply_pending(self) -> None:
        for cols, delta, factor in self._pending:
            if delta is not None:
                self.mean[cols] += delta
            if factor is not None:
                f32 = factor.astype(np.float32)
                self.mad[cols] *= f32
                self.local_mad[cols] *= f32
        self._pending.clear()

    @property
    def warm(self) -> Bools:
        """Signals past their warm-up (a fresh array)."""
        return np.greater_equal(self.count, np.float32(self.config.warmup))

    def prime(self, mean: F64, std: F64, count: F64) -> None:
        """Start from known statistics, as if each signal had already seen `count` samples with
        this mean and std (e.g. a historian's long-term record): the mean and the local level
        are set to `mean`, both scales to `std`, and the running average carries on with the
        weight of `count` samples (at most the baseline's memory). A shift of δ sigmas can only
        be told from noise against a mean known to well under δ, i.e. from many more than 1/δ²
        samples; a fresh baseline would have to stream all of them first.

        Arrays of shape (n,); `std` > 0 and `count` ≥ 1. Signals with `count` ≥ `warmup` are
        warm at once. Detector state is not touched (call before the first row)."""
        n, cfg = self.n, self.config
        arrays = [np.asarray(a, dtype=np.float64) for a in (mean, std, count)]
        if any(a.shape != (n,) for a in arrays):
            raise DetectError(f"prime needs arrays of shape ({n},)")
        m, s, c = arrays
        if not (np.all(np.isfinite(m)) and np.all(np.isfinite(s)) and np.all(np.isfinite(c))):
            raise DetectError("prime needs finite mean, std and count")
        if np.any(s <= 0) or np.any(c < 1):
            raise DetectError("prime needs std > 0 and count >= 1")
        self.mean[:] = m
        self.local_mean[:] = m
        mad = (s / KAPPA).astype(np.float32)
        self.mad[:] = mad
        self.local_mad[:] = mad
        self.count[:] = np.minimum(c, cfg.n_eff)
        np.multiply(self.mad, np.float32(KAPPA), out=self.std)
        np.fmax(self.std, self._floor, out=self.std)
        np.divide(np.float32(1.0), self.std, out=self.inv_std)
        self.local_std[:] = self.std
        self.inv_local_std[:] = self.inv_std
        self._refresh_cold(force=True)
