"""What every detector shares: the protocol, the per-row view of the baseline, and small kernels.

A detector holds its state in arrays over the signals of one shard (a contiguous block of
columns) and is driven one row at a time: `update(t, x, ctx)` sees row `x` (NaN = no sample)
and the baseline *before* this row updates it, so a score at time t uses nothing after t. Most
rows change nothing, so the hot path is a handful of in-place ufuncs and `update` returns None;
only rows where some signal becomes abnormal (or recovers) build a `Hits`.

Conventions that keep the hot path cheap (measured, see benchmarks/README.md):
  * float32 state, except accumulators that need float64 (the mean of a signal with a large
    offset, times);
  * no scalar operands to min/max ufuncs (NumPy's scalar path is ~4× slower than array-array),
    so constant arrays are preallocated;
  * no mixed-dtype arithmetic (it goes through NumPy's casting buffers);
  * missing samples are masked by multiplying increments with a 0/1 weight, never by `where=`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from safety_nexus.core.types import FindingKind
    from safety_nexus.detect.config import DetectConfig

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]
Bools = NDArray[np.bool_]
Index = NDArray[np.intp]

# E|z| = sqrt(2/pi) for z ~ N(0, 1): scales are learned as mean absolute deviations (no sqrt in
# the hot path, more robust than the variance) and multiplied by this to read as a std.
KAPPA = math.sqrt(math.pi / 2.0)

# Stands in for "no clipping" in float32 (warm-up) and for "infinitely far" in run counters.
BIG32 = np.float32(1e30)

EMPTY_INDEX: Index = np.empty(0, dtype=np.intp)
EMPTY_F64: F64 = np.empty(0, dtype=np.float64)


def latest_rows(present: Bools) -> Index:
    """Per row and column of a (T, N) mask: the latest row at or before it where the column has
    a sample (−1 before its first): forward filling without a loop over rows."""
    idx: Index = np.where(present, np.arange(present.shape[0])[:, None], -1)
    np.maximum.accumulate(idx, axis=0, out=idx)
    return idx


@dataclass(frozen=True, slots=True)
class Columns:
    """The per-signal parameters of one shard, sliced from the SignalTable."""

    period: F64
    limit_lo: F64
    limit_hi: F64
    # Per-signal allowance and threshold of the long-baseline level-shift CUSUM, for signals
    # whose expected shift is known (NaN: the config's allowances); None: none is.
    cusum_k: F64 | None = None
    cusum_h: F64 | None = None

    @property
    def n(self) -> int:
        return int(self.period.shape[0])


@dataclass(frozen=True, slots=True)
class Hits:
    """What one detector saw on one row: onsets with their evidence, and recoveries.

    Indices are shard-local columns. Evidence arrays are parallel to `onsets`; `observed`,
    `baseline` and `sigma` are in the unit named by the detector's `evidence_unit`.
    """

    onsets: Index = field(default_factory=lambda: EMPTY_INDEX)
    score: F64 = field(default_factory=lambda: EMPTY_F64)
    observed: F64 = field(default_factory=lambda: EMPTY_F64)
    baseline: F64 = field(default_factory=lambda: EMPTY_F64)
    sigma: F64 = field(default_factory=lambda: EMPTY_F64)
    recovered: Index = field(default_factory=lambda: EMPTY_INDEX)
    # Optional evidence, parallel to `onsets` when not empty (see `Finding`): a time-to-
    # threshold forecast (seconds from the row's time) and its interval; a period (seconds).
    eta: F64 = field(default_factory=lambda: EMPTY_F64)
    eta_low: F64 = field(default_factory=lambda: EMPTY_F64)
    eta_high: F64 = field(default_factory=lambda: EMPTY_F64)
    period: F64 = field(default_factory=lambda: EMPTY_F64)


class BaselineView(Protocol):
    """The baseline as detectors see it during one row (all arrays are the shard's columns).

    Values describe the baseline *before* the row is learned. Arrays are scratch that the next
    row overwrites: detectors must not keep references to them across rows.
    """

    t: float
    x: F64  # the row; NaN = no sample
    mean: F64  # baseline mean
    std: F32  # baseline std (robust), floored at min_sigma
    inv_std: F32
    z: F32  # (x - mean) / std, NaN where missing
    zc: F32  # z winsorised at ±clip; finite everywhere (meaningless where missing)
    local_mean: F64  # the local level (short memory)
    local_std: F32  # robust std of the residual against the local level, floored
    zl: F32  # (x - local_mean) / local_std, NaN where missing
    zlc: F32  # zl winsorised at ±clip, finite everywhere
    d: F64  # x minus the previous sample of the same signal; NaN where missing or first
    last_t: F64  # time of the latest sample, this row included; -inf before the first
    last: F64  # the latest sample itself, this row included; NaN before the first
    pmb: Bools  # sample present
    pm: F32  # sample present, 1/0
    pw: F32  # sample present and the signal warmed up, 1/0: weight of every statistic
    a: F32  # learning rate: 1/n during the running start, then the EWMA weight; 0 if missing
    warmb: Bools | None  # warmed up; None when every signal of the shard is
    first: Bools | None  # this row holds the signal's first sample ever; None when none does

    @property
    def moved(self) -> Index:
        """Columns whose mean a detector moved during this row or the previous one (usually
        empty): a detector that runs before the one that moved it hears of it a row later."""
        ...

    def shift_mean(self, cols: Index, delta: F64) -> None:
        """Move the mean of `cols` by `delta` (unit) once this row is learned: re-centre on a
        level that a detector has established."""
        ...

    def relevel(self, cols: Index) -> None:
        """Restart the local level of `cols` from this row's sample once it is learned (after a
        step, instead of letting the local level creep after it)."""
        ...

    def scale_by(self, cols: Index, factor: F64) -> None:
        """Multiply the scales (long and local) of `cols` by `factor` once this row is learned."""
        ...


@runtime_checkable
class Detector(Protocol):
    """A streaming detector over the signals of one shard. Strictly causal and deterministic.

    `update` returns None for a row where nothing started or cleared (almost every row).
    """

    name: ClassVar[str]
    kind: ClassVar[FindingKind]
    evidence_unit: ClassVar[str]  # format string over {unit}: "{unit}", "s", "{unit}/s"

    def __init__(self, cols: Columns, config: DetectConfig) -> None: ...

    def update(self, t: float, x: F64, ctx: BaselineView) -> Hits | None: ...

    @property
    def active(self) -> Bools: ...

    def nbytes(self) -> int: ...


class ScratchState:
    """Arrays named in `_scratch` are per-row workspace: not pickled, rebuilt on unpickling.

    The pickled form is therefore the detector's real state only, which is what survives a
    restart and what `nbytes` reports.
    """

    _scratch: ClassVar[tuple[str, ...]] = ()

    def _alloc_scratch(self) -> None:
        # Nothing to rebuild for a detector without scratch; one with scratch must say how.
        if self._scratch:
            raise NotImplementedError(f"{type(self).__name__} must rebuild its scratch")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in self._scratch:
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._alloc_scratch()

    def state_arrays(self) -> Iterator[NDArray[Any]]:
        """Every array of persistent state, nested helpers included (may repeat shared ones)."""
        for name, value in self.__dict__.items():
            if name in self._scratch:
                continue
            if isinstance(value, np.ndarray):
                yield value
            elif isinstance(value, (ScratchState, ActiveSet)):
                yield from value.state_arrays()

    def extra_nbytes(self) -> int:
        """State held outside arrays (e.g. a dict of rare pending events)."""
        return 0

    def nbytes(self) -> int:
        """Bytes of persistent state (per-row scratch excluded: it is per shard, not per signal)."""
        return sum(a.nbytes for a in self.state_arrays()) + self.extra_nbytes()


class ActiveSet:
    """Which signals are currently abnormal for one kind: a mask plus its index list.

    The index list makes per-row clearing checks cost O(active) instead of O(signals).
    """

    def __init__(self, n: int) -> None:
        self.mask: Bools = np.zeros(n, dtype=np.bool_)
        self.idx: Index = EMPTY_INDEX

    def __len__(self) -> int:
        return int(self.idx.shape[0])

    def add(self, cols: Index) -> None:
        self.mask[cols] = True
        self.idx = np.flatnonzero(self.mask)

    def remove(self, cols: Index) -> None:
        self.mask[cols] = False
        self.idx = np.flatnonzero(self.mask)

    def state_arrays(self) -> Iterator[NDArray[Any]]:
        yield self.mask
        yield self.idx


class Cusum(ScratchState):
    """Page's CUSUM: an upper and a lower statistic for each of R inputs over n signals.

    State has shape (2, R, n). For input r, side 0 accumulates S ← max(0, S + w·(u_r − k[0, r]))
    and side 1 S ← max(0, S + w·(−u_r − k[1, r])); N counts the weighted samples since S was last
    zero, so that mean(±u_r) over the run ≈ k + S / N (the usual estimate of the shift size once
    the statistic fires). `u` and the weight `w` have shape (R, n) or (n,) (shared by every
    input); `w` is 0 for a missing sample, and also where a statistic is switched off.
    """

    _scratch = ("_inc", "_tmp", "_fired", "_zero")

    def __init__(self, k: list[list[float]] | F32, h: list[list[float]] | F32, n: int) -> None:
        # k and h: shape (2, R), or (2, R, n) for allowances and thresholds per signal.
        kk = np.asarray(k, dtype=np.float32)
        if kk.ndim not in (2, 3) or kk.shape[0] != 2:
            raise ValueError("k needs shape (2, R) or (2, R, n)")
        r = kk.shape[1]
        self.sign = np.asarray([1.0, -1.0], dtype=np.float32).reshape(2, 1, 1)
        hh = np.asarray(h, dtype=np.float32)
        self.k = kk if kk.ndim == 3 else kk.reshape(2, r, 1)
        self.h = hh if hh.ndim == 3 else hh.reshape(2, r, 1)
        self.S: F32 = np.zeros((2, r, n), dtype=np.float32)
        self.N: F32 = np.zeros((2, r, n), dtype=np.float32)
        self._alloc_scratch()

    def _alloc_scratch(self) -> None:
        shape = self.S.shape
        self._inc: F32 = np.empty(shape, dtype=np.float32)
        self._tmp: F32 = np.empty(shape, dtype=np.float32)
        self._fired: Bools = np.empty(shape, dtype=np.bool_)
        self._zero: F32 = np.zeros(shape, dtype=np.float32)

    def step(self, u: F32, w: F32) -> bool:
        """Advance one row; True if any statistic crossed its threshold (see `fired`)."""
        inc, s, n = self._inc, self.S, self.N
        np.multiply(self.sign, u, out=inc)
        np.subtract(inc, self.k, out=inc)
        np.multiply(inc, w, out=inc)
        np.add(s, inc, out=s)
        np.maximum(s, self._zero, out=s)
        np.add(n, w, out=n)
        # N ← 0 where S hit zero, without a mask: min(N, S·1e30) is N for any S > 1e-25 (S is a
        # sum of O(1) terms, far above that) and 0 for S = 0.
        np.multiply(s, BIG32, out=self._tmp)
        np.minimum(n, self._tmp, out=n)
        np.greater(s, self.h, out=self._fired)
        return bool(self._fired.any())

    @property
    def fired(self) -> Bools:
        """Per signal: some statistic crossed its threshold on the last row."""
        out: Bools = np.empty(self._fired.shape[-1], dtype=np.bool_)
        np.logical_or.reduce(self._fired.reshape(-1, self._fired.shape[-1]), axis=0, out=out)
        return out

    def best(self, cols: Index) -> tuple[Index, Index, F64, F64]:
        """For fired columns: side (0 up, 1 down) and input of the statistic with the largest
        S/h, that S/h, and its run length."""
        r = self.S.shape[1]
        h = self.h if self.h.shape[-1] == 1 else self.h[:, :, cols]
        ratio = (self.S[:, :, cols] / h).astype(np.float64).reshape(2 * r, -1)
        best = np.argmax(ratio, axis=0)
        pick = np.arange(cols.shape[0])
        side, inp = np.divmod(best, r)
        return side, inp, ratio[best, pick], self.N[side, inp, cols].astype(np.float64)

    def largest(self, out: F32) -> F32:
        """Per input and signal: the larger of the two sides' S (into `out`, shape (R, n))."""
        np.maximum(self.S[0], self.S[1], out=out)
        return out

    def reset(self, cols: Index) -> None:
        self.S[:, :, cols] = 0.0
        self.N[:, :, cols] = 0.0
        self._fired[:, :, cols] = False


class Vif(ScratchState):
    """Variance inflation of R inputs over n signals, each at its own time scale.

    A CUSUM that integrates over about T samples is calibrated for independent samples: over T
    samples their sum varies as √T. Autocorrelated input (sensor noise with a time constant,
    process dynamics, a level that wanders) varies more, by the factor √VIF, and a CUSUM fed with
    it raises findings all day. The VIF at scale T is measured per signal: s ← s + λ·w·(u − s) is
    the input smoothed by an EWMA with λ = 2/(T + 1) (whose variance on independent input matches
    a T-sample mean's), and c = λ/(2 − λ)·(1 − (1 − λ)^(2n)) is what the variance of s would be
    for independent unit-variance input n samples after the start (or a `reset`). s²/c is then an
    unbiased one-sample estimate of the VIF from the very first sample (the bias correction of an
    EWMA started at zero).

    The estimate `v` is the running average of these samples, then (once it has seen
    max(`memory`·T, `min_memory`) of them) their EWMA over that many: precise on a stationary
    signal, and still able to follow the day. It is *calibrated* (`mature`) after `mature`
    windows of T samples, and `white` says how far from 1 it may be on independent input. s
    moves with every sample, the estimate only every `EVERY` rows (`due`), with the weight of the
    samples seen since: s changes little within a few samples (T ≥ 7.5), and learning is the
    costly part. Two things keep a real shift out of the estimate: each sample is winsorised at
    `cap` × the current estimate (as the baseline winsorises residuals; the bias this leaves on
    Gaussian input is divided out), and it learns only where the caller's mask allows (callers
    stop it while the CUSUM it calibrates climbs).

    On independent input v ≈ 1 at every scale; on an AR(1) input with coefficient φ it tends to
    (1 + φ(1 − λ)) / (1 − φ(1 − λ)): about 2τ for a time constant τ much shorter than T, about T
    for one much longer (the input is then nearly constant over the window).
    """

    _scratch = ("_d", "_q", "_b", "_c", "_w", "_cap", "_one")
    EVERY: ClassVar[int] = 8  # rows between two learning steps

    def __init__(
        self,
        scales: list[float],
        n: int,
        *,
        memory: float,
        min_memory: float,
        mature: float,
        cap: float,
    ) -> None:
        r = len(scales)
        self.cap = np.float32(cap)
        # Winsorising a Gaussian s²/c ~ v·χ²₁ at cap·v keeps E[min(χ²₁, cap)] of v on average;
        # the samples are divided by that, so that the estimate stays unbiased.
        root = math.sqrt(cap / 2.0)
        kept = (
            1.0
            - (1.0 - cap) * math.erfc(root)
            - math.sqrt(2.0 * cap / math.pi) * math.exp(-cap / 2.0)
        )
        self.unbias = np.float32(1.0 / kept)
        t = np.asarray(scales, dtype=np.float64)
        lam = 2.0 / (t + 1.0)
        self.lam = lam.astype(np.float32).reshape(r, 1)
        # The recursion for c has a closed form: c_inf·(1 − (1 − λ)^(2n)) after n samples.
        self._c_inf = (lam / (2.0 - lam)).astype(np.float32).reshape(r, 1)
        self._log_decay = (2.0 * np.log1p(-lam)).astype(np.float32).reshape(r, 1)
        self._n_settled = (np.log(1e-8) / (2.0 * np.log1p(-lam))).tolist()
        span = np.maximum(memory * t, min_memory)
        self.a_min = (1.0 / span).astype(np.float32).reshape(r, 1)
        # Calibration samples (at least one; never beyond the EWMA's own span).
        self.n_mature = np.clip(mature * t, 1.0, span).astype(np.float32).reshape(r, 1)
        # Samples behind the estimate: it counts up to 2·span (an EWMA of span M averages about
        # 2M samples' worth). On white input the estimate's relative variance is then
        # spread/count: the mean of χ²₁ samples of s²/c taken every K = EVERY samples, each
        # correlated with the next by ρ = (1 − λ)^(2K), has variance (2K/count)·(1 + ρ)/(1 − ρ)
        # (about (T + 1)/count when K ≪ T, 2K/count when K ≫ T).
        self._n_cap = (2.0 * span).astype(np.float32).reshape(r, 1)
        rho = (1.0 - lam) ** (2 * self.EVERY)
        self._spread = (2.0 * self.EVERY * (1.0 + rho) / (1.0 - rho)).astype(np.float32)
        self._spread = self._spread.reshape(r, 1)
        self.s: F32 = np.zeros((r, n), dtype=np.float32)
        self.smoothed: F32 = np.zeros(n, dtype=np.float32)  # samples in s (since a reset)
        self.v: F32 = np.ones((r, n), dtype=np.float32)
        self.count: F32 = np.zeros((r, n), dtype=np.float32)  # samples learned, capped
        self.pending: F32 = np.zeros(n, dtype=np.float32)  # samples since the last learning
        self.rows = 0  # rows smoothed; learning is due every EVERY rows
        # Inputs whose c has not reached c_inf for every signal yet.
        self.unsettled: list[int] = list(range(r)) if n else []
        self._alloc_scratch()

    def _alloc_scratch(self) -> None:
        shape = self.s.shape
        self._d: F32 = np.empty(shape, dtype=np.float32)
        self._q: F32 = np.empty(shape, dtype=np.float32)
        self._b: F32 = np.empty(shape, dtype=np.float32)
        self._c: F32 = np.empty(shape, dtype=np.float32)
        self._w: F32 = np.empty(shape, dtype=np.float32)
        self._cap: F32 = np.empty(shape, dtype=np.float32)
        self._one: F32 = np.ones(shape, dtype=np.float32)

    def smooth(self, w: F32) -> F32:
        """Advance s by the input already written into `delta` (u − s, see `delta`) with the
        sample weight `w` (n,)."""
        d = self._d
        np.multiply(d, self.lam, out=d)
        np.multiply(d, w, out=d)
        np.add(self.s, d, out=self.s)
        np.add(self.pending, w, out=self.pending)
        self.rows += 1
        return self.s

    @property
    def delta(self) -> F32:
        """Scratch of shape (R, n): write u − s here before `smooth`."""
        return self._d

    @property
    def due(self) -> bool:
        """Whether this row (the last one smoothed) is a learning row."""
        return self.rows % self.EVERY == 0

    def learn(self, mask: Bools) -> None:
        """v ← v + b·(min(s²/c, cap·max(v, 1))·unbias − v) where `mask` (R, n) allows it, with
        w the samples seen since the last learning step and b = min(w·max(1/count, a_min), 1):
        a running average, then the EWMA. Call on `due` rows."""
        b, q, w, c = self._b, self._q, self._w, self._c
        # c after n samples since the start (or a reset) is c_inf·(1 − (1 − λ)^(2n)); once
        # every signal is far enough in for (1 − λ)^(2n) to vanish in float32, it is c_inf.
        np.add(self.smoothed, self.pending, out=self.smoothed)
        c[...] = self._c_inf
        if self.unsettled:
            # Only the inputs some signal still needs it for (the fast ones settle in minutes).
            least = float(self.smoothed.min())
            self.unsettled = [j for j in self.unsettled if least < self._n_settled[j]]
            for j in self.unsettled:
                cj = c[j]
                np.multiply(self._log_decay[j], self.smoothed, out=cj)
                np.exp(cj, out=cj)
                np.subtract(np.float32(1.0), cj, out=cj)
                np.multiply(cj, self._c_inf[j], out=cj)
        np.multiply(mask, self.pending, out=w)
        self.pending.fill(0.0)
        np.add(self.count, w, out=self.count)
        np.minimum(self.count, self._n_cap, out=self.count)
        # 1/count (never 1/0: a weight of 0 leaves b at 0 below).
        np.maximum(self.count, self._one, out=b)
        np.divide(np.float32(1.0), b, out=b)
        np.maximum(b, self.a_min, out=b)
        np.multiply(b, w, out=b)
        np.minimum(b, self._one, out=b)
        np.multiply(self.s, self.s, out=q)
        # Before the first sample c is 0 and so is s: 0/0 would be NaN, and 0·NaN too.
        np.maximum(c, np.float32(1e-30), out=c)
        np.divide(q, c, out=q)
        # The cap is relative to the estimate, floored at 1 (the estimate itself may be below 1,
        # and at 0 a purely relative cap could never let it grow again).
        np.maximum(self.v, self._one, out=self._cap)
        np.multiply(self._cap, self.cap, out=self._cap)
        np.minimum(q, self._cap, out=q)
        np.multiply(q, self.unbias, out=q)
        np.subtract(q, self.v, out=q)
        np.multiply(q, b, out=q)
        np.add(self.v, q, out=self.v)

    @property
    def mature(self) -> Bools:
        """Per input and signal: calibrated (a fresh array)."""
        return self.count >= self.n_mature

    def white(self, z: float, out: F32) -> F32:
        """Per input and signal: the largest estimate still within `z` standard errors of 1,
        the value on white input (the estimate's relative standard error there is about
        √(T/count))."""
        np.maximum(self.count, self._one, out=out)
        np.divide(self._spread, out, out=out)
        np.sqrt(out, out=out)
        np.multiply(out, np.float32(z), out=out)
        np.add(out, self._one, out=out)
        return out

    def reset(self, cols: Index) -> None:
        """Restart the smoothed input of `cols` (after a shift was established there); the bias
        correction restarts with it."""
        self.s[:, cols] = 0.0
        self.smoothed[cols] = 0.0
        self.pending[cols] = 0.0
        self.unsettled = list(range(self.s.shape[0]))


def const32(n: int, value: float) -> F32:
    return np.full(n, value, dtype=np.float32)
