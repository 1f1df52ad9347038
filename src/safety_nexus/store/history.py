"""Telemetry history on disk as Parquet segments, for trends over hours and days.

Why Parquet. History is written once and read one signal at a time ("draw pump-3.pressure for
the last six hours"). A columnar file stores each signal as its own compressed column, so a
trend reads one column (plus `time`) and skips the other few hundred; zstd shrinks slowly
moving float32 telemetry several-fold; and the files are plain Parquet that pandas, Polars,
DuckDB or Spark read without Safety Nexus. Files are immutable, so there is nothing to corrupt:
a crash leaves at worst a temporary file that is ignored.

Layout. Segments are wide tables: `time` float64 plus one float32 column per signal id, NaN
where a signal had no sample at that time. The rows of the open segment stay in memory (at
most `segment_rows`, 4.7 MB for the demo city's 327 signals and 3600 rows); queries over them
never touch the disk. For durability, every `flush_seconds` (or on `flush()`) the rows not yet
on disk are written as a small part file; when the open segment reaches `segment_rows` (or on
`close()`), it is written whole as one sealed segment and its parts are deleted, so the
directory holds few, large files. A restart merges any parts left by a crash into a sealed
segment. File names carry the first and last time, so a range query opens only the segments
that overlap it:

    seg_<seq>_<first>_<last>.parquet          a sealed segment
    part_<seq>_<n>_<first>_<last>.parquet     a flushed piece of the open segment

Every file is written to a hidden temporary name, synced and renamed into place, so no reader
ever sees a partial file. Columns are found by name: when the site's signals change, old
segments still answer for the signals they hold and report no data for the ones they lack.
One process owns a directory at a time.
"""

from __future__ import annotations

import os
import queue
import re
import threading
import time as _time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from safety_nexus.core.closing import Closeable
from safety_nexus.core.errors import StoreError
from safety_nexus.core.types import Frame, SignalTable

F64 = NDArray[np.float64]

TIME_COLUMN = "time"
_NUM = r"(-?\d+\.\d+)"
_SEALED = re.compile(rf"^seg_(\d+)_{_NUM}_{_NUM}\.parquet$")
_PART = re.compile(rf"^part_(\d+)_(\d+)_{_NUM}_{_NUM}\.parquet$")
# File names round times to a microsecond; widen the overlap test so rounding never skips
# a file that holds a wanted row (the exact filter runs on the data).
_NAME_SLACK = 1e-5


@dataclass(frozen=True, slots=True)
class _Segment:
    path: Path
    seq: int
    first: float
    last: float


@dataclass(frozen=True, slots=True)
class HistoryWindow:
    """A signal's history over a range: one point per sample, or per bucket when downsampled.

    `minimum` and `maximum` are the extremes within each bucket (equal to `mean` for raw
    samples), so a trend can draw the envelope and no spike disappears in the averaging.
    """

    times: F64
    mean: F64
    minimum: F64
    maximum: F64
    downsampled: bool


class HistoryStore(Closeable):
    """Append frames, read one signal's history over a time range. Thread-safe."""

    def __init__(
        self,
        directory: Path,
        table: SignalTable,
        *,
        segment_rows: int = 3600,
        flush_seconds: float = 10.0,
        monotonic: Callable[[], float] = _time.monotonic,
    ) -> None:
        if segment_rows < 1:
            raise StoreError("history segments need at least one row")
        self._dir = Path(directory)
        self._table = table
        self._names = [TIME_COLUMN, *table.ids]
        self._segment_rows = int(segment_rows)
        self._flush_seconds = float(flush_seconds)
        # Durability is about wall time (how much a crash may lose), not simulated time, so
        # flushes follow a monotonic clock; tests inject their own.
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._closed = False

        n = len(table)
        self._times = np.empty(self._segment_rows, dtype=np.float64)
        self._values = np.empty((self._segment_rows, n), dtype=np.float32)
        self._rows = 0  # rows of the open segment held in memory
        self._flushed = 0  # of which already written as parts
        self._parts: list[Path] = []
        # The caller's mark (the ingest log's lsn) of the rows appended so far, and of those on
        # disk: each file carries the mark of the rows it completes (see `durable_mark`).
        self._mark = 0
        self._durable_mark = 0
        # Part files are written by one background thread, in order; `_parts_lock` guards what
        # it updates (the parts written and the durable mark).
        self._jobs: queue.Queue[tuple[pa.Table, str, int, F64, int, int] | None] = queue.Queue(2)
        self._rewrite_from = self._segment_rows  # the first row of a part that failed to write
        self._writer: threading.Thread | None = None
        self._write_error: StoreError | None = None
        self._parts_lock = threading.Lock()
        self._part_count = 0

        with self._errors("open the history"):
            self._dir.mkdir(parents=True, exist_ok=True)
            self._segments = self._recover()
            if self._segments:
                newest = max(self._segments, key=lambda seg: seg.seq)
                self._mark = self._durable_mark = _mark_of(newest.path)
        self._seq = max((s.seq for s in self._segments), default=-1) + 1
        self._last_flush = self._monotonic()

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        return self._dir

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except (pa.ArrowException, OSError) as err:
            raise StoreError(f"cannot {what} in {self._dir}: {err}") from err

    def _recover(self) -> list[_Segment]:
        """List sealed segments; seal parts a crash left behind; drop temporary files."""
        sealed: dict[int, _Segment] = {}
        parts: dict[int, list[tuple[int, Path]]] = {}
        for path in self._dir.iterdir():
            name = path.name
            if name.startswith(".") and name.endswith(".tmp"):
                path.unlink()  # an interrupted write; its data was never acknowledged as on disk
            elif m := _SEALED.match(name):
                seq = int(m[1])
                sealed[seq] = _Segment(path, seq, float(m[2]), float(m[3]))
            elif m := _PART.match(name):
                parts.setdefault(int(m[1]), []).append((int(m[2]), path))
        for seq, pieces in sorted(parts.items()):
            paths = [p for _, p in sorted(pieces)]
            if seq not in sealed:
                # Columns may differ only if the site changed between parts; promote fills in.
                table = pa.concat_tables(
                    [pq.read_table(p) for p in paths], promote_options="default"
                )
                times = np.asarray(table.column(TIME_COLUMN).to_numpy(), dtype=np.float64)
                table = _with_mark(table, max(_mark_of(p) for p in paths))
                sealed[seq] = self._write(table, _sealed_name(seq, times), seq, times)
            for p in paths:  # the sealed segment holds these rows: the parts are duplicates
                p.unlink()
        return sorted(sealed.values(), key=lambda s: (s.first, s.seq))

    def _write(self, table: pa.Table, name: str, seq: int, times: F64) -> _Segment:
        """Write atomically: temporary file, fsync, rename, fsync of the directory."""
        final = self._dir / name
        tmp = self._dir / f".{name}.tmp"
        try:
            pq.write_table(table, tmp, compression="zstd")
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self._dir)
        return _Segment(final, seq, float(times.min()), float(times.max()))

    def _arrow(self, start: int, stop: int) -> tuple[pa.Table, F64]:
        times = self._times[start:stop].copy()
        # Transposed once so each column is contiguous and converts without a strided copy.
        columns = np.ascontiguousarray(self._values[start:stop].T)
        arrays = [pa.array(times), *(pa.array(col) for col in columns)]
        return _with_mark(pa.Table.from_arrays(arrays, names=self._names), self._mark), times

    # -- writing ------------------------------------------------------------------------------

    @property
    def durable_mark(self) -> int:
        """The highest `mark` given to `append` whose rows are all on disk (0: none). The
        runtime marks rows with its ingest log's lsn, so after a crash it knows from here on
        which logged batches to process again."""
        with self._parts_lock:
            return self._durable_mark

    def append(self, frame: Frame, mark: int | None = None) -> None:
        """Buffer a frame's rows; seals a segment when full, writes a part when one is due.
        `mark` (rising) labels everything appended up to here; see `durable_mark`."""
        n = len(self._table)
        if frame.n_signals != n:
            raise StoreError(f"frame has {frame.n_signals} signals, the history holds {n}")
        if np.isnan(frame.times).any():
            raise StoreError("frame has NaN times")
        with self._lock, self._errors("append to the history"):
            self._check_open()
            done = 0
            while done < frame.n_rows:
                if self._rows == self._segment_rows:
                    self._seal()  # retries a seal that failed (disk full) on an earlier append
                take = min(frame.n_rows - done, self._segment_rows - self._rows)
                self._times[self._rows : self._rows + take] = frame.times[done : done + take]
                self._values[self._rows : self._rows + take] = frame.values[done : done + take]
                self._rows += take
                done += take
                if self._rows == self._segment_rows:
                    self._seal()
            # Only now: a segment sealed part-way through this frame does not hold all of it.
            if mark is not None:
                self._mark = max(self._mark, mark)
            if self._monotonic() - self._last_flush >= self._flush_seconds:
                self._flush_part()

    def flush(self) -> None:
        """Write the rows not yet on disk as one new file, atomically, and wait until it is."""
        with self._lock, self._errors("flush the history"):
            self._check_open()
            self._flush_part()
        self._drain()

    def _flush_part(self) -> None:
        """Hand the rows not yet on disk to the writer thread as one part file. The rows stay
        in memory (reads and the segment's seal use them), so the writer may lag: a part write
        of a wide site takes most of a second, which must not stall the pipeline."""
        self._last_flush = self._monotonic()
        self._raise_write_error()
        if self._flushed == self._rows:
            return
        table, times = self._arrow(self._flushed, self._rows)
        name = _part_name(self._seq, self._part_count, times)
        self._part_count += 1
        self._flushed = self._rows
        self._start_writer()
        job = (table, name, self._seq, times, self._mark, self._flushed - table.num_rows)
        self._jobs.put(job)  # bounded: a writer that falls behind holds the appender up

    def _start_writer(self) -> None:
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_parts, name="nexus-history-writer", daemon=True
            )
            self._writer.start()

    def _write_parts(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                table, name, seq, times, mark, first = job
                try:
                    path = self._write(table, name, seq, times).path
                except (pa.ArrowException, OSError) as err:
                    failure = StoreError(f"cannot flush the history in {self._dir}: {err}")
                    failure.__cause__ = err
                    with self._parts_lock:
                        self._write_error = failure
                        if seq == self._seq:  # its rows are still in memory: write them again
                            self._rewrite_from = min(self._rewrite_from, first)
                    continue
                with self._parts_lock:
                    if seq == self._seq:
                        self._parts.append(path)
                    self._durable_mark = max(self._durable_mark, mark)
            finally:
                self._jobs.task_done()

    def _drain(self) -> None:
        """Wait until every part handed to the writer is on disk; raise its failure, if any."""
        if self._writer is not None:
            self._jobs.join()
        self._raise_write_error()

    def _raise_write_error(self) -> None:
        """A failed part write surfaces on the next flush or append; its rows go out again
        with the next part (they never left memory)."""
        with self._parts_lock:
            err, self._write_error = self._write_error, None
            self._flushed = min(self._flushed, self._rewrite_from)
            self._rewrite_from = self._segment_rows
        if err is not None:
            raise err

    def _seal(self) -> None:
        if self._rows == 0:
            return
        self._drain()  # the segment replaces its parts: none may still be on its way
        table, times = self._arrow(0, self._rows)
        segment = self._write(table, _sealed_name(self._seq, times), self._seq, times)
        with self._parts_lock:
            self._durable_mark = self._mark
        for path in self._parts:
            path.unlink(missing_ok=True)
        self._segments.append(segment)
        self._segments.sort(key=lambda s: (s.first, s.seq))
        with self._parts_lock:
            self._parts = []
        self._part_count = 0
        self._rows = self._flushed = 0
        self._seq += 1
        self._last_flush = self._monotonic()

    def close(self) -> None:
        """Seal the open segment. Idempotent."""
        with self._lock:
            if self._closed:
                return
            with self._errors("close the history"):
                try:
                    self._seal()
                finally:
                    if self._writer is not None:
                        self._jobs.put(None)
                        self._writer.join()
                        self._writer = None
            self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the history is closed")

    def prune(self, before: float) -> int:
        """Delete sealed segments that end before `before`; returns how many."""
        with self._lock, self._errors("prune the history"):
            old = [s for s in self._segments if s.last < before]
            for segment in old:
                segment.path.unlink(missing_ok=True)
            self._segments = [s for s in self._segments if s.last >= before]
            return len(old)

    # -- reading ------------------------------------------------------------------------------

    def last_times(self, since: float) -> F64:
        """Per signal (table order), the latest time at or after `since` at which it has a
        value, on disk or in memory; -inf where it has none. Reads only the segments that
        reach `since`, so it is cheap for a recent `since`."""
        out = np.full(len(self._table), -np.inf)
        with self._lock:
            self._check_open()
            segments = [s for s in self._segments if s.last >= since - _NAME_SLACK]
            mem_t = self._times[: self._rows].copy()
            mem_v = self._values[: self._rows].copy()
        index = self._table.index
        with self._errors("read the history's latest times"):
            for segment in segments:
                data = pq.read_table(segment.path)
                times = np.asarray(data.column(TIME_COLUMN).to_numpy(), dtype=np.float64)
                for name in data.column_names[1:]:
                    col = index.get(name)
                    if col is None:
                        continue
                    vals = np.asarray(data.column(name).to_numpy(zero_copy_only=False))
                    has = ~np.isnan(vals) & (times >= since)
                    if has.any():
                        out[col] = max(out[col], float(times[has].max()))
        if mem_t.size:
            has = ~np.isnan(mem_v) & (mem_t >= since)[:, None]
            t = np.where(has, mem_t[:, None], -np.inf).max(axis=0)
            np.maximum(out, t, out=out)
        return out

    def read(
        self, signal: str, since: float, until: float, max_points: int = 2000
    ) -> tuple[F64, F64]:
        """Times and values of `signal` with `since <= time <= until`, at most `max_points`.

        Longer ranges are averaged into equal-time buckets; see `read_window` for the
        per-bucket minimum and maximum.
        """
        window = self.read_window(signal, since, until, max_points)
        return window.times, window.mean

    def read_window(
        self, signal: str, since: float, until: float, max_points: int = 2000
    ) -> HistoryWindow:
        if max_points < 1:
            raise StoreError("max_points must be at least 1")
        # Snapshot under the lock, read files outside it: sealed files never change, and the
        # open segment (including its parts on disk) is copied from memory.
        with self._lock:
            self._check_open()
            segments = [
                s
                for s in self._segments
                if s.first <= until + _NAME_SLACK and s.last >= since - _NAME_SLACK
            ]
            col = self._table.index.get(signal)
            if col is None or self._rows == 0:
                mem_t = np.empty(0, dtype=np.float64)
                mem_v = np.empty(0, dtype=np.float64)
            else:
                mem_t = self._times[: self._rows].copy()
                mem_v = self._values[: self._rows, col].astype(np.float64)

        pieces_t: list[F64] = []
        pieces_v: list[F64] = []
        with self._errors(f"read {signal!r} from the history"):
            for segment in segments:
                with pq.ParquetFile(segment.path) as pf:
                    if signal not in pf.schema_arrow.names:
                        continue  # written before this signal existed
                    data = pf.read(columns=[TIME_COLUMN, signal])
                pieces_t.append(np.asarray(data.column(0).to_numpy(), dtype=np.float64))
                pieces_v.append(np.asarray(data.column(1).to_numpy(), dtype=np.float64))
        pieces_t.append(mem_t)
        pieces_v.append(mem_v)

        times = np.concatenate(pieces_t)
        values = np.concatenate(pieces_v)
        keep = (times >= since) & (times <= until) & ~np.isnan(values)
        times, values = times[keep], values[keep]
        if times.size > 1 and np.any(np.diff(times) < 0):
            order = np.argsort(times, kind="stable")
            times, values = times[order], values[order]
        return _downsample(times, values, max_points)


def _downsample(times: F64, values: F64, max_points: int) -> HistoryWindow:
    """Mean, min and max per equal-time bucket; `times` must be sorted."""
    n = times.size
    if n <= max_points:
        return HistoryWindow(times, values, values.copy(), values.copy(), downsampled=False)
    t0 = times[0]
    span = times[-1] - t0
    if span > 0:
        bucket = np.minimum(((times - t0) / span * max_points).astype(np.int64), max_points - 1)
    else:
        bucket = np.zeros(n, dtype=np.int64)
    # Sorted times give non-decreasing buckets, so each bucket is one contiguous run.
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    counts = np.diff(np.r_[starts, n])
    return HistoryWindow(
        times=np.add.reduceat(times - t0, starts) / counts + t0,  # relative: keeps precision
        mean=np.add.reduceat(values, starts) / counts,
        minimum=np.minimum.reduceat(values, starts),
        maximum=np.maximum.reduceat(values, starts),
        downsampled=True,
    )


def _sealed_name(seq: int, times: F64) -> str:
    return f"seg_{seq:08d}_{float(times.min()):.6f}_{float(times.max()):.6f}.parquet"


def _part_name(seq: int, part: int, times: F64) -> str:
    return f"part_{seq:08d}_{part:05d}_{float(times.min()):.6f}_{float(times.max()):.6f}.parquet"


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable on POSIX; not possible (nor needed) on Windows.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_MARK_KEY = b"nexus.mark"


def _with_mark(table: pa.Table, mark: int) -> pa.Table:
    meta = dict(table.schema.metadata or {})
    meta[_MARK_KEY] = str(int(mark)).encode()
    return table.replace_schema_metadata(meta)


def _mark_of(path: Path) -> int:
    """The mark a file was written with (0 for files from before marks existed)."""
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(_MARK_KEY, b"0")
    return int(raw) if raw.isdigit() else 0
