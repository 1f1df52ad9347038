"""The last few minutes of telemetry in memory, for the dashboard's live values and trends.

A ring buffer of whole frames: `times` (capacity,) float64 and `values` (capacity, N) float32
over the site's signal index. Float32 halves the memory (an hour of the demo city at 1 Hz is
4.7 MB) and keeps ~7 significant digits, plenty for drawing; the exact latest value of every
signal is kept separately in float64, and survives the row that carried it being overwritten
(a signal sampled once a minute still has a latest value when the buffer holds 30 s).

Appends copy at most two contiguous slices and find each signal's latest sample with array
operations, so a 1000-row frame over thousands of signals costs no Python loop per signal.
One lock guards the arrays: the pipeline thread appends while the API reads; readers get copies.
"""

from __future__ import annotations

import threading

import numpy as np
from numpy.typing import NDArray

from safety_nexus.core.errors import StoreError
from safety_nexus.core.types import Frame, SignalTable

F64 = NDArray[np.float64]


class LiveTelemetry:
    """A thread-safe ring buffer of the most recent `capacity_rows` frame rows."""

    def __init__(self, table: SignalTable, capacity_rows: int) -> None:
        if capacity_rows < 1:
            raise StoreError("live telemetry needs a capacity of at least one row")
        n = len(table)
        self._table = table
        self._capacity = int(capacity_rows)
        self._times = np.full(self._capacity, np.nan, dtype=np.float64)
        self._values = np.full((self._capacity, n), np.nan, dtype=np.float32)
        self._head = 0  # where the next row goes
        self._size = 0  # rows held, up to capacity
        self._latest_time = np.full(n, np.nan, dtype=np.float64)
        self._latest_value = np.full(n, np.nan, dtype=np.float64)
        self._lock = threading.Lock()

    @property
    def table(self) -> SignalTable:
        return self._table

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        with self._lock:
            return self._size

    def append(self, frame: Frame) -> None:
        """Add a frame's rows, overwriting the oldest when full."""
        n = len(self._table)
        if frame.n_signals != n:
            raise StoreError(f"frame has {frame.n_signals} signals, live telemetry holds {n}")
        rows = frame.n_rows
        if rows == 0:
            return
        times = frame.times
        values = frame.values

        # Each signal's last non-NaN row in this frame: flip the rows, argmax finds the first
        # True per column, which is the last in the original order.
        present = ~np.isnan(values)
        has = present.any(axis=0)
        last_row = rows - 1 - np.argmax(present[::-1], axis=0)
        cols = np.flatnonzero(has)
        new_t = times[last_row[cols]]
        new_v = values[last_row[cols], cols]

        keep = min(rows, self._capacity)  # a frame larger than the buffer keeps its tail
        tail_t = times[rows - keep :]
        tail_v = values[rows - keep :]

        with self._lock:
            # A late frame must not replace a newer latest value (NaN compares False: replace).
            newer = ~(new_t < self._latest_time[cols])
            self._latest_time[cols[newer]] = new_t[newer]
            self._latest_value[cols[newer]] = new_v[newer]

            first = min(keep, self._capacity - self._head)
            self._times[self._head : self._head + first] = tail_t[:first]
            self._values[self._head : self._head + first] = tail_v[:first]
            rest = keep - first
            if rest:
                self._times[:rest] = tail_t[first:]
                self._values[:rest] = tail_v[first:]
            self._head = (self._head + keep) % self._capacity
            self._size = min(self._capacity, self._size + keep)

    def latest(self) -> tuple[F64, F64]:
        """Per signal, the time and value of its latest sample; NaN for signals never seen."""
        with self._lock:
            return self._latest_time.copy(), self._latest_value.copy()

    def window(self, index: int, since: float, until: float | None = None) -> tuple[F64, F64]:
        """Samples of signal `index` with `since <= time` (and `time < until`), oldest first."""
        if not 0 <= index < len(self._table):
            raise StoreError(
                f"no signal at index {index} (live telemetry holds {len(self._table)})"
            )
        with self._lock:
            if self._size < self._capacity:
                times = self._times[: self._size].copy()
                values = self._values[: self._size, index].astype(np.float64)
            else:
                order = np.r_[self._head : self._capacity, 0 : self._head]
                times = self._times[order]
                values = self._values[order, index].astype(np.float64)
        keep = (times >= since) & ~np.isnan(values)
        if until is not None:
            keep &= times < until
        times, values = times[keep], values[keep]
        if times.size > 1 and np.any(np.diff(times) < 0):
            # Late frames arrive out of order only rarely; sort then rather than always.
            order = np.argsort(times, kind="stable")
            times, values = times[order], values[order]
        return times, values
