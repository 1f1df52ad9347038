"""Turn scattered samples (signal, time, value) into dense frames over the site's signal index.

Samples of one batch may come in any order and at any times; the frame has one row per distinct
timestamp, NaN where a signal has no sample at that time. Per signal, time must move forward
across batches: the detectors are causal and a late sample cannot be scored honestly.
"""

from __future__ import annotations

import threading

import numpy as np
from numpy.typing import NDArray

from safety_nexus.core.errors import IngestError
from safety_nexus.core.types import Frame, SignalTable


class FrameAssembler:
    """Builds frames from sample columns and enforces per-signal time order. Thread-safe."""

    def __init__(self, table: SignalTable) -> None:
        self._n = len(table)
        self._ids = table.ids
        self._last = np.full(self._n, -np.inf)
        self._lock = threading.Lock()

    def assemble(
        self,
        columns: NDArray[np.int64],
        times: NDArray[np.float64],
        values: NDArray[np.float64],
    ) -> Frame:
        """Validate and build. On error nothing is recorded: a rejected batch leaves no trace."""
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
        with self._lock:
            late = times <= self._last[columns]
            if late.any():
                i = int(np.flatnonzero(late)[0])
                sid = self._ids[int(columns[i])]
                raise IngestError(
                    f"samples[{i}]: timestamps out of order: {times[i]:.3f} for signal '{sid}'"
                    f" is not after its latest accepted sample ({self._last[columns[i]]:.3f})",
                    reason="out_of_order",
                    status=409,
                )
            row_times, rows = np.unique(times, return_inverse=True)
            grid = np.full((row_times.shape[0], self._n), np.nan)
            # with duplicate (time, signal) pairs the last one in the batch wins
            grid[rows, columns] = values
            np.maximum.at(self._last, columns, times)
        return Frame(times=row_times, values=grid)

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
