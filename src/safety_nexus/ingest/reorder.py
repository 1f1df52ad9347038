"""A reorder buffer: samples that arrive a little out of order still reach the detectors in order.

Gateways batch, retry and interleave, so samples come a few seconds out of time order while the
detectors must see every signal's samples in order (they are causal: a late sample cannot be
scored honestly). The buffer holds each accepted sample until the stream's *watermark* (the
latest sample time seen, any signal) or the clock has moved `tolerance` seconds past it, then
releases everything up to there as one frame in time order. Within the tolerance (and for live
data, whose times are near the clock), any arrival order therefore gives the same rows as sorted
input.

Rules (a batch is checked as a whole, and a rejected batch leaves no trace):
  * a sample at or before the latest *released* sample of its signal is late: the batch is
    rejected with 409 `out_of_order`, as without a buffer, and counted (`late`);
  * a sample behind the horizon (`watermark − tolerance`) but after its signal's latest released
    sample is accepted and released at once: it is late for the frame it belonged to, not for
    its signal, and the pipeline keeps each signal in order;
  * duplicates (same signal, same time): while held, the later arrival replaces the earlier one
    (as within one batch, where the last one wins: a gateway's resend carries the newer reading);
    once released, a duplicate is late like any other sample at that time;
  * at most `max_held` samples are held: beyond that the oldest are released early (bounded
    memory; a sample later than those becomes late sooner);
  * the clock bounds the wait too: `push(..., now=)` and `due(now)` release what is older than
    `now − tolerance` by the clock, so that live data is never held longer than the tolerance
    (a lone gateway that goes quiet does not keep its last samples held) and a backlog from the
    past is passed on as it comes (in order per signal, as without a buffer);
  * `flush()` releases everything (on stop: nothing accepted is lost).
With `tolerance = 0` every batch is released as it comes: the behaviour without a buffer.
Not thread-safe: the FrameAssembler that owns it holds a lock.

Example: two batches, the second partly older than the first.

>>> import numpy as np
>>> buf = ReorderBuffer(2, tolerance=5.0)
>>> f = buf.push(np.array([0, 1]), np.array([10.0, 12.0]), np.array([1.0, 2.0]))
>>> f.n_rows  # nothing is 5 s behind the watermark (12) yet
0
>>> f = buf.push(np.array([0, 1]), np.array([11.0, 18.0]), np.array([3.0, 4.0]))
>>> f.times.tolist(), f.values.tolist()  # released up to 18 - 5 = 13, in time order
([10.0, 11.0, 12.0], [[1.0, nan], [3.0, nan], [nan, 2.0]])
>>> buf.flush().times.tolist()
[18.0]
"""

from __future__ import annotations

import heapq

import numpy as np
from numpy.typing import NDArray

from safety_nexus.core.types import Frame

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


class ReorderBuffer:
    """Holds samples for `tolerance` seconds of telemetry time and releases them in order.

    Held samples stay in the chunks they came in (one per batch, sorted by time on arrival), in
    a heap ordered by each chunk's oldest sample. A push costs what its own batch costs and a
    release touches only the chunks it releases from: the buffer may hold a million samples in
    hundreds of chunks while batches of a few thousand come and go.
    """

    def __init__(self, n: int, tolerance: float = 0.0, *, max_held: int = 1_000_000) -> None:
        if not (tolerance >= 0.0 and np.isfinite(tolerance)):
            raise ValueError("tolerance must be a finite number of seconds >= 0")
        if max_held < 1:
            raise ValueError("max_held must be >= 1")
        self.n = n
        self.tolerance = float(tolerance)
        self.max_held = max_held
        self.released: F64 = np.full(n, -np.inf)  # latest released sample time, per signal
        self.watermark = -np.inf  # latest sample time seen
        self.late = 0  # samples rejected as late
        # (oldest time, arrival number, chunk); a chunk's tail left by a release keeps its
        # arrival number, which decides between duplicates
        self._heap: list[tuple[float, int, _Chunk]] = []
        self._arrivals = 0
        self._held = 0

    def __len__(self) -> int:
        """Samples held."""
        return self._held

    @property
    def oldest(self) -> float:
        """The oldest sample time held (inf when empty)."""
        return self._heap[0][0] if self._heap else float("inf")

    def first_late(self, cols: I64, times: F64) -> int | None:
        """Index of the first sample of a batch that is too late for its signal, if any
        (counted as late: the caller rejects the batch)."""
        late = times <= self.released[cols]
        if not late.any():
            return None
        self.late += int(late.sum())
        return int(np.flatnonzero(late)[0])

    def push(self, cols: I64, times: F64, values: F64, now: float | None = None) -> Frame:
        """Hold a batch (already checked with `first_late`); returns what is now due, by the
        watermark and, if given, by the clock's `now`."""
        if cols.shape[0]:
            chunk = _Chunk.of(cols.astype(np.int64, copy=False), times, values)
            heapq.heappush(self._heap, (chunk.first, self._arrivals, chunk))
            self._arrivals += 1
            self._held += chunk.size
            self.watermark = max(self.watermark, chunk.last)
        horizon = self.watermark - self.tolerance
        if now is not None:
            horizon = max(horizon, now - self.tolerance)
        over = self._held - self.max_held
        if over > 0:
            horizon = max(horizon, self._making_room(over))
        return self.release(horizon)

    def _making_room(self, over: int) -> float:
        """The horizon that releases the `over` oldest samples (bounded memory), found among
        the samples of the oldest chunks, not among all held."""
        by_age = sorted(self._heap)  # by oldest time (arrival numbers are unique)
        # The chunks that start first until they hold `over` samples: the `over` oldest
        # samples are all at or before the latest end among them.
        bound, total = -np.inf, 0
        for _, _, chunk in by_age:
            total += chunk.size
            bound = max(bound, chunk.last)
            if total >= over:
                break
        head = [
            c.times if c.last <= bound else c.times[: np.searchsorted(c.times, bound, "right")]
            for first, _, c in by_age
            if first <= bound
        ]
        times = np.concatenate(head)
        return float(np.partition(times, over - 1)[over - 1])

    def due(self, now: float) -> Frame:
        """Release what is older than `now − tolerance` (wall-clock ticks)."""
        return self.release(now - self.tolerance)

    def flush(self) -> Frame:
        return self.release(np.inf)

    def release(self, horizon: float) -> Frame:
        """Everything held at or before `horizon`, as one frame in time order."""
        heap = self._heap
        taken: list[tuple[int, _Chunk]] = []
        while heap and heap[0][0] <= horizon:
            _, arrival, chunk = heapq.heappop(heap)
            if chunk.last > horizon:
                chunk, tail = chunk.split(horizon)
                heapq.heappush(heap, (tail.first, arrival, tail))
            taken.append((arrival, chunk))
            self._held -= chunk.size
        if not taken:
            return Frame(np.empty(0), np.empty((0, self.n)))
        taken.sort(key=lambda item: item[0])  # arrival order (for duplicates)
        parts = [chunk for _, chunk in taken]
        cols = np.concatenate([c.cols for c in parts])
        times = np.concatenate([c.times for c in parts])
        values = np.concatenate([c.values for c in parts])
        row_times, rows = np.unique(times, return_inverse=True)
        grid = np.full((row_times.shape[0], self.n), np.nan)
        grid[rows, cols] = values
        if np.count_nonzero(~np.isnan(grid)) != cols.shape[0]:
            # Duplicates (same signal, same time; values are finite, so a cell holding fewer
            # samples than were put there had some written twice): the last arrival wins.
            # Parts are in arrival order and sorted stably within, so position is arrival.
            order = np.lexsort((np.arange(cols.shape[0]), cols, times))
            key = rows[order] * self.n + cols[order]
            last = np.ones(key.shape[0], dtype=np.bool_)
            last[:-1] = key[1:] != key[:-1]
            pick = order[last]
            grid[rows[pick], cols[pick]] = values[pick]
        np.maximum.at(self.released, cols, times)
        return Frame(times=row_times, values=grid)


class _Chunk:
    """One pushed batch while it is held: its samples sorted by time (stably)."""

    __slots__ = ("cols", "first", "last", "times", "values")

    def __init__(self, cols: I64, times: F64, values: F64) -> None:
        self.cols, self.times, self.values = cols, times, values
        self.first = float(times[0])
        self.last = float(times[-1])

    @classmethod
    def of(cls, cols: I64, times: F64, values: F64) -> _Chunk:
        if times.shape[0] > 1 and not bool((times[1:] >= times[:-1]).all()):
            order = np.argsort(times, kind="stable")
            cols, times, values = cols[order], times[order], values[order]
        return cls(cols, times, values)

    @property
    def size(self) -> int:
        return int(self.times.shape[0])

    def split(self, horizon: float) -> tuple[_Chunk, _Chunk]:
        """(samples at or before `horizon`, the rest): both non-empty when first <= horizon
        < last."""
        i = int(np.searchsorted(self.times, horizon, side="right"))
        return (
            _Chunk(self.cols[:i], self.times[:i], self.values[:i]),
            _Chunk(self.cols[i:], self.times[i:], self.values[i:]),
        )
