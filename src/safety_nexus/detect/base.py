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


@dataclass(frozen=True, slots=True)
class Columns:
    """The per-signal parameters of one shard, sliced from the SignalTable."""

    period: F64
    limit_lo: F64
    limit_hi: F64

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
    d: F64  # x minus the previous sample of the same signal; NaN where missing or first
    last_t: F64  # time of the latest sample, this row included; -inf before the first
    pmb: Bools  # sample present
    pm: F32  # sample present, 1/0
    pw: F32  # sample present and the signal warmed up, 1/0: weight of every statistic
    a: F32  # learning rate: 1/n during the running start, then the EWMA weight; 0 if missing
    warmb: Bools | None  # warmed up; None when every signal of the shard is
    first: Bools | None  # this row holds the signal's first sample ever; None when none does

    @property
    def moved(self) -> Index:
        """Columns whose mean a detector moved during this row (usually empty)."""
        ...

    def shift_mean(self, cols: Index, delta: F64) -> None:
        """Move the mean of `cols` by `delta` (unit) once this row is learned: re-centre on a
        level that a detector has established."""
        ...

    def scale_by(self, cols: Index, factor: F64) -> None:
        """Multiply the scale of `cols` by `factor` once this row is learned."""
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
        raise NotImplementedError

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
    """Page's CUSUM, R statistics side by side over n signals (state shape (R, n)).

    Row r accumulates S_r ← max(0, S_r + w·(sign_r·u − k_r)) and counts N_r, the weighted samples
    since S_r was last zero, so that mean(sign_r·u) over the run ≈ k_r + S_r / N_r (the usual
    estimate of the shift size once the statistic fires). `w` is the 0/1 sample weight.
    """

    _scratch = ("_inc", "_tmp", "_fired", "_zero")

    def __init__(self, sign: list[float], k: list[float], h: list[float], n: int) -> None:
        r = len(sign)
        self.sign = np.asarray(sign, dtype=np.float32).reshape(r, 1)
        self.k = np.asarray(k, dtype=np.float32).reshape(r, 1)
        self.h = np.asarray(h, dtype=np.float32).reshape(r, 1)
        self.S: F32 = np.zeros((r, n), dtype=np.float32)
        self.N: F32 = np.zeros((r, n), dtype=np.float32)
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
        return self._fired

    def best(self, cols: Index) -> tuple[NDArray[np.intp], F64, F64]:
        """For fired columns: the statistic with the largest S/h, its S/h, and its run length."""
        ratio = (self.S[:, cols] / self.h).astype(np.float64)
        row = np.argmax(ratio, axis=0)
        pick = np.arange(cols.shape[0])
        return row, ratio[row, pick], self.N[row, cols].astype(np.float64)

    def reset(self, cols: Index) -> None:
        self.S[:, cols] = 0.0
        self.N[:, cols] = 0.0
        self._fired[:, cols] = False


def const32(n: int, value: float) -> F32:
    return np.full(n, value, dtype=np.float32)
