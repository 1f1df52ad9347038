"""Turn scattered samples (signal, time, value) into dense frames over the site's signal index.

Samples of one batch may come in any order and at any times; the frame has one row per distinct
timestamp, NaN where a signal has no sample at that time. Per signal, time must move forward
across batches: the detectors are causal and a late sample cannot be scored honestly. With a
`tolerance` (seconds), samples are held in a reorder buffer (`ingest.reorder`) and released in
time order once the stream has moved that far past them, so that batches up to `tolerance` out
of order are accepted; what comes later than that is rejected as before (409 `out_of_order`).
"""

from __future__ import annotations

import threading

import numpy as np
from numpy.typing import NDArray

from safety_nexus.core.errors import IngestError
from safety_nexus.core.types import Frame, SignalTable
from safety_nexus.ingest.reorder import ReorderBuffer


class FrameAssembler:
    """Builds frames from sample columns and enforces per-signal time order. Thread-safe.

    `assemble` returns the rows that are due (with a tolerance, possibly none yet, and possibly
    rows of earlier batches); `flush` returns whatever is still held.
    """

    def __init__(self, table: SignalTable, tolerance: float = 0.0) -> None:
        self._n = len(table)
        self._ids = table.ids
        self._buffer = ReorderBuffer(self._n, tolerance)
        self._last = self._buffer.released  # latest released sample time, per signal
        self._lock = threading.Lock()

    @property
    def tolerance(self) -> float:
        return self._buffer.tolerance

    @property
    def held(self) -> int:
        """Samples waiting in the reorder buffer."""
        with self._lock:
            return len(self._buffer)

    @property
    def late(self) -> int:
        """Samples rejected as too late since start."""
        return self._buffer.late

    def flush(self) -> Frame:
        """Release everything held (on stop)."""
        with self._lock:
            return self._buffer.flush()

    def due(self, now: float) -> Frame:
        """Release what the clock says is older than the tolerance (idle ticks)."""
        with self._lock:
            return self._buffer.due(now)

    def seed(self, last_times: NDArray[np.float64]) -> None:
        """Per signal, the latest sample time already processed (after a restart with restored
        detector state): older samples are late."""
        with self._lock:
            np.maximum(self._last, last_times, out=self._last)

    @property
    def oldest_held(self) -> float:
        """The oldest sample time still in the reorder buffer (inf when it holds nothing)."""
        with self._lock:
            return self._buffer.oldest

    def assemble(
        self,
        columns: NDArray[np.int64],
        times: NDArray[np.float64],
        values: NDArray[np.float64],
        now: float | None = None,
    ) -> Frame:
        """Validate and build. On error nothing is recorded: a rejected batch leaves no trace."""
        with self._lock:
            self._check(columns, times, values)
            return self._buffer.push(columns, times, values, now)

    def check(
        self, columns: NDArray[np.int64], times: NDArray[np.float64], values: NDArray[np.float64]
    ) -> None:
        """What `assemble` refuses, without taking the batch (the caller then logs it ahead
        and `push`es it, holding its own lock so nothing changes in between)."""
        with self._lock:
            self._check(columns, times, values)

    def push(
        self,
        columns: NDArray[np.int64],
        times: NDArray[np.float64],
        values: NDArray[np.float64],
        now: float | None = None,
    ) -> Frame:
        """Take a batch that passed `check`; returns the rows now due."""
        with self._lock:
            return self._buffer.push(columns, times, values, now)

    def _check(
        self, columns: NDArray[np.int64], times: NDArray[np.float64], values: NDArray[np.float64]
    ) -> None:
        if not (columns.shape == times.shape == values.shape) or columns.ndim != 1:
            raise IngestError("columns, times and values must be 1-d arrays of one length")
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise IngestError(
                f"samples[{i}].value: {values[i]} is not a finite number "
                f"({int(bad.sum())} such sample(s) in the batch)",
                reason="non_finite",
            )
        bad = ~np.isfinite(times)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise IngestError(f"samples[{i}].time: not a finite timestamp", reason="bad_time")
        late = self._buffer.first_late(columns, times)
        if late is not None:
            i = late
            sid = self._ids[int(columns[i])]
            within = (
                f" (and more than {self.tolerance:g} s behind the stream)" if self.tolerance else ""
            )
            raise IngestError(
                f"samples[{i}]: timestamps out of order: {times[i]:.3f} for signal '{sid}'"
                f" is not after its latest accepted sample ({self._last[columns[i]]:.3f})" + within,
                reason="out_of_order",
                status=409,
            )
        # with duplicate (time, signal) pairs the last one wins (see ingest.reorder)

    def observe(self, frame: Frame) -> None:
        """Record samples that reached the pipeline by another path (the simulator, a replay)."""
        with self._lock:
            has = ~np.isnan(frame.values)
            if not has.any():
                return
            # last row index with a sample, per column
            last_row = frame.n_rows - 1 - np.argmax(has[::-1], axis=0)
            seen = has.any(axis=0)
            self._last[seen] = np.maximum(self._last[seen], frame.times[last_row[seen]])
