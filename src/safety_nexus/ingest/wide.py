"""Reading a wide telemetry file of any origin in bounded chunks: a timestamp column and one
numeric column per signal, as a user's own CSV or Parquet export usually is.

It reads the files Safety Nexus writes itself (`nexus sim run`, replayed by `nexus serve
--replay`) and files from elsewhere (`nexus replay`), of any length, and decides:

* format by extension: `.csv`, `.csv.gz` or `.parquet`; anything else is an error;
* the time column is `time_column`, else the first of timestamp, time, ts, date, datetime
  (case-insensitive);
* timestamps are ISO-8601 text (with a zone offset, or without one: then read as UTC), native
  Parquet timestamps, or epoch numbers: seconds, or milliseconds when the first chunk's median
  is at least 1e11 (1e11 s is the year 5138, 1e11 ms is 1973);
* timestamps must increase strictly: an unsorted or repeated one is an error naming the row.
  Sorting would need the whole file in memory, and a repeated timestamp has no right answer;
* every other column is a signal and must be numeric (booleans read as 0/1). A text column is
  an error naming it and its first value; `ignore` drops columns by name. Empty cells, nulls,
  NaN and ±inf are gaps (±inf are counted in `nonfinite`).

Rows are numbered from 1 at the first data row (the CSV header is not a row). Chunks hold about
a megabyte of input (`chunk_bytes`; pyarrow reads a few dozen ahead), so memory does not grow
with the file.
"""

from __future__ import annotations

import gzip
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from safety_nexus.core.closing import Closeable
from safety_nexus.core.errors import IngestError
from safety_nexus.core.types import F64, Frame, SignalTable

__all__ = ["TIME_NAMES", "WideChunk", "WideReader", "read_frame"]

TIME_NAMES = ("timestamp", "time", "ts", "date", "datetime")
EPOCH_MS_ABOVE = 1e11
CHUNK_BYTES = 1 << 20

_BAD_NUMBER = re.compile(
    r"CSV column #(\d+): (?:Row #(\d+): )?CSV conversion error to \w+: invalid value '(.*)'"
)

TimeMode = Literal["native", "epoch", "aware", "naive"]


@dataclass(frozen=True, slots=True)
class WideChunk:
    """Consecutive rows of the file: `first_row` is the 0-based index of the first of them."""

    first_row: int
    stamps: pa.Array  # the timestamp column as text, as written in the input
    times: F64  # epoch seconds, strictly increasing
    values: F64  # (T, N) in the reader's column order; NaN = gap

    @property
    def n_rows(self) -> int:
        return int(self.times.shape[0])


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".csv.gz", ".csv", ".parquet"):
        if name.endswith(suffix):
            return suffix
    raise IngestError(f"{path}: expected a .csv, .csv.gz or .parquet file", reason="bad_file")


def _numeric(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_null(kind)
    )


class WideReader(Closeable):
    """Chunks of a wide CSV/Parquet file. Use as a context manager; iterate once."""

    def __init__(
        self,
        path: Path,
        *,
        time_column: str | None = None,
        ignore: Sequence[str] = (),
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.path = path
        self.format = _suffix(path)
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "no such file"
            raise IngestError(f"{path}: {what}", reason="missing_file")
        self.chunk_bytes = chunk_bytes
        self.rows_read = 0
        self.gaps = 0  # empty cells, nulls and NaN
        self.nonfinite = 0  # ±inf, read as gaps
        self.naive_times = False  # ISO text without a zone offset (read as UTC)
        self._mode: TimeMode | None = None
        self._epoch_scale = 1.0
        self._last_t = -math.inf
        self._last_stamp = ""
        self._raw: IO[bytes] | None = None
        self._row_bytes = 0.0
        self._size = max(1, path.stat().st_size)
        try:
            names, kinds, examples = self._inspect()
        except (pa.ArrowException, OSError) as err:
            raise IngestError(f"{path}: cannot read: {err}", reason="bad_file") from err
        self.all_columns = names
        self.time_column = self._find_time_column(names, time_column)
        unknown = [c for c in ignore if c not in names]
        if unknown:
            raise IngestError(f"{path}: no column '{unknown[0]}' to ignore", reason="bad_shape")
        dupes = sorted({c for c in names if names.count(c) > 1})
        if dupes:
            raise IngestError(f"{path}: column '{dupes[0]}' appears twice", reason="bad_shape")
        self.columns = tuple(c for c in names if c != self.time_column and c not in ignore)
        if not self.columns:
            raise IngestError(
                f"{path}: no signal columns besides '{self.time_column}'", reason="bad_shape"
            )
        for name in self.columns:
            if not _numeric(kinds[name]):
                example = examples.get(name)
                shown = f" (first value {example!r})" if example is not None else ""
                raise IngestError(
                    f"{path}: column '{name}' is not numeric{shown}: every column but the"
                    " timestamp must be a signal (leave it out with --ignore-column)",
                    reason="bad_value",
                )

    # -- opening ------------------------------------------------------------------------------

    def _inspect(self) -> tuple[list[str], dict[str, pa.DataType], dict[str, object]]:
        """Column names, their types and first non-null values (from the first block)."""
        if self.format == ".parquet":
            schema = pq.read_schema(self.path)
            return list(schema.names), {f.name: f.type for f in schema}, {}
        reader = self._open_csv(None)
        try:
            schema = reader.schema
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                batch = None
        finally:
            self._close_raw()
        examples: dict[str, object] = {}
        if batch is not None:
            for name, column in zip(schema.names, batch.columns, strict=True):
                present = column.drop_null()
                if len(present):
                    examples[name] = present[0].as_py()
        return list(schema.names), {f.name: f.type for f in schema}, examples

    def _find_time_column(self, names: list[str], wanted: str | None) -> str:
        if wanted is not None:
            if wanted not in names:
                raise IngestError(
                    f"{self.path}: no column '{wanted}' (--time-column); columns: "
                    + ", ".join(names[:10])
                    + (" …" if len(names) > 10 else ""),
                    reason="bad_shape",
                )
            return wanted
        lower = {n.strip().lower(): n for n in reversed(names)}
        for candidate in TIME_NAMES:
            if candidate in lower:
                return lower[candidate]
        if len(names) == 1 and any(sep in names[0] for sep in ";\t|"):
            raise IngestError(
                f"{self.path}: the header is one column, '{names[0]}': only comma-separated"
                " CSV is read",
                reason="bad_shape",
            )
        raise IngestError(
            f"{self.path}: no timestamp column (looked for {', '.join(TIME_NAMES)}); name it"
            " with --time-column",
            reason="bad_shape",
        )

    def _open_csv(self, types: dict[str, pa.DataType] | None) -> pacsv.CSVStreamingReader:
        self._close_raw()
        raw = self.path.open("rb")
        self._raw = raw
        source: IO[bytes] | gzip.GzipFile = raw
        if self.format == ".csv.gz":
            source = gzip.GzipFile(fileobj=raw, mode="rb")
        # One thread: reading ahead would run the progress (the file position) far ahead of the
        # rows scored, and parsing is not what takes the time.
        read = pacsv.ReadOptions(block_size=self.chunk_bytes, use_threads=False)
        if types is None:
            convert = pacsv.ConvertOptions()
        else:
            convert = pacsv.ConvertOptions(
                column_types=types, include_columns=list(types), strings_can_be_null=True
            )
        try:
            return pacsv.open_csv(source, read_options=read, convert_options=convert)
        except BaseException:
            self._close_raw()
            raise

    def _close_raw(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def close(self) -> None:
        self._close_raw()

    # -- reading ------------------------------------------------------------------------------

    def fraction(self) -> float:
        """How far through the file the reader is, 0..1 (for a progress bar)."""
        if self.format == ".parquet":
            return min(1.0, self.rows_read / self._size)
        if self._raw is None or self._raw.closed:
            return 1.0 if self.rows_read else 0.0
        if self.format == ".csv" and self._row_bytes:
            # pyarrow reads some 30 blocks ahead, so the file position runs ahead of the rows
            # handed out; the bytes per row of the first block measure them instead.
            return min(0.99, self.rows_read * self._row_bytes / self._size)
        return min(0.99, self._raw.tell() / self._size)

    def __iter__(self) -> Iterator[WideChunk]:
        wanted = [self.time_column, *self.columns]
        try:
            if self.format == ".parquet":
                parquet = pq.ParquetFile(self.path)
                self._size = max(1, parquet.metadata.num_rows)
                rows = max(1024, self.chunk_bytes // (8 * len(wanted)))
                batches: Iterator[pa.RecordBatch] = parquet.iter_batches(
                    batch_size=rows, columns=wanted
                )
            else:
                types = {self.time_column: pa.string()} | {c: pa.float64() for c in self.columns}
                batches = iter(self._open_csv(types))
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                if batch.num_rows:
                    yield self._chunk(batch)
        except pa.ArrowInvalid as err:
            raise self._read_error(err) from err
        except (pa.ArrowException, OSError, EOFError) as err:
            raise IngestError(f"{self.path}: cannot read: {err}", reason="bad_file") from err
        finally:
            self._close_raw()

    def _chunk(self, batch: pa.RecordBatch) -> WideChunk:
        first = self.rows_read
        stamp_col = batch.column(0)
        times = self._times(stamp_col, first)
        self._check_order(times, stamp_col, first)
        n = len(self.columns)
        values = np.empty((batch.num_rows, n), dtype=np.float64)
        for j in range(n):
            col = batch.column(j + 1)
            if not pa.types.is_floating(col.type):
                col = col.cast(pa.float64())
            values[:, j] = col.to_numpy(zero_copy_only=False)
        inf = np.isinf(values)
        if inf.any():
            self.nonfinite += int(inf.sum())
            values[inf] = np.nan
        self.gaps += int(np.isnan(values).sum())
        if not self.rows_read:
            self._row_bytes = min(self._size, self.chunk_bytes) / batch.num_rows
        self.rows_read += batch.num_rows
        stamps = stamp_col if pa.types.is_string(stamp_col.type) else stamp_col.cast(pa.string())
        return WideChunk(first, stamps, times, values)

    def _read_error(self, err: pa.ArrowInvalid) -> IngestError:
        m = _BAD_NUMBER.search(str(err))
        if m and int(m.group(1)) < len(self.all_columns):
            name = self.all_columns[int(m.group(1))]
            # pyarrow's "Row #" counts the header line; without it, search for the row
            row = int(m.group(2)) - 1 if m.group(2) else self._find_bad_number(name)
            where = f"row {row}: " if row is not None else ""
            return IngestError(
                f"{self.path}: {where}column '{name}' holds '{m.group(3)}', which is not a number"
                " (leave the column out with --ignore-column)",
                reason="bad_value",
            )
        return IngestError(f"{self.path}: cannot read: {err}", reason="bad_file")

    def _find_bad_number(self, name: str) -> int | None:
        """The row of the first cell of `name` that is not a number (error path: re-reads)."""
        row = 0
        try:
            for batch in self._open_csv({name: pa.string()}):
                for text in batch.column(0).to_pylist():
                    row += 1
                    if text is None:
                        continue
                    try:
                        float(text)
                    except ValueError:
                        return row
        except (pa.ArrowException, OSError, EOFError):
            return None
        finally:
            self._close_raw()
        return None

    # -- time ---------------------------------------------------------------------------------

    def _times(self, col: pa.Array, first: int) -> F64:
        if col.null_count:
            row = first + int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0]) + 1
            raise IngestError(f"{self.path}: row {row}: no timestamp", reason="bad_time")
        kind = col.type
        if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            if pa.types.is_date(kind):
                col = col.cast(pa.timestamp("s"))
            self._mode = "native"
            scale = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[col.type.unit]
            self.naive_times = col.type.tz is None
            return np.asarray(col.cast(pa.int64()).to_numpy(), dtype=np.float64) / scale
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            return self._epoch(np.asarray(col.cast(pa.float64()).to_numpy(), dtype=np.float64))
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return self._text_times(col, first)
        raise IngestError(
            f"{self.path}: timestamp column '{self.time_column}' has unsupported type {kind}",
            reason="bad_time",
        )

    def _epoch(self, raw: F64) -> F64:
        if self._mode is None:
            self._mode = "epoch"
            if raw.size and float(np.median(np.abs(raw))) >= EPOCH_MS_ABOVE:
                self._epoch_scale = 1e-3
        return raw * self._epoch_scale

    def _text_times(self, col: pa.Array, first: int) -> F64:
        if self._mode in (None, "epoch"):
            try:
                numbers = col.cast(pa.float64())
            except pa.ArrowInvalid:
                if self._mode == "epoch":
                    raise self._bad_time(col, first) from None
            else:
                return self._epoch(np.asarray(numbers.to_numpy(), dtype=np.float64))
        modes: list[TimeMode] = ["aware", "naive"]
        if self._mode == "naive":
            modes.reverse()
        for mode in modes:
            target = pa.timestamp("us", tz="UTC") if mode == "aware" else pa.timestamp("us")
            try:
                parsed = col.cast(target)
            except pa.ArrowInvalid:
                continue
            if self._mode is not None and mode != self._mode:
                break  # a file that changes its mind about zones half-way is an error
            self._mode = mode
            self.naive_times = mode == "naive"
            return np.asarray(parsed.cast(pa.int64()).to_numpy(), dtype=np.float64) / 1e6
        raise self._bad_time(col, first)

    def _bad_time(self, col: pa.Array, first: int) -> IngestError:
        """Name the first timestamp that does not parse like the ones before it."""
        zone: bool | None = {"aware": True, "naive": False}.get(self._mode or "")
        for i, text in enumerate(col.to_pylist()):
            row = first + i + 1
            if self._mode == "epoch":
                try:
                    float(text)
                except ValueError:
                    return IngestError(
                        f"{self.path}: row {row}: '{text}' is not an epoch number like the"
                        " timestamps before it",
                        reason="bad_time",
                    )
                continue
            try:
                has_zone = datetime.fromisoformat(str(text)).tzinfo is not None
            except ValueError:
                return IngestError(
                    f"{self.path}: row {row}: '{text}' is not a timestamp (ISO-8601 or epoch"
                    " seconds/milliseconds)",
                    reason="bad_time",
                )
            if zone is None:
                zone = has_zone
            elif has_zone != zone:
                having = "with" if has_zone else "without"
                return IngestError(
                    f"{self.path}: row {row}: timestamp '{text}' is {having} a zone offset,"
                    " unlike the ones before it",
                    reason="bad_time",
                )
        return IngestError(
            f"{self.path}: timestamps in rows {first + 1}–{first + len(col)} do not parse",
            reason="bad_time",
        )

    def _check_order(self, times: F64, stamps: pa.Array, first: int) -> None:
        if not np.all(np.isfinite(times)):
            i = int(np.flatnonzero(~np.isfinite(times))[0])
            raise IngestError(f"{self.path}: row {first + i + 1}: bad timestamp", "bad_time")
        prev = np.concatenate(([self._last_t], times[:-1]))
        bad = np.flatnonzero(times <= prev)
        if bad.size:
            i = int(bad[0])
            before = self._last_stamp if i == 0 else str(stamps[i - 1].as_py())
            how = "repeats" if times[i] == prev[i] else "is earlier than"
            raise IngestError(
                f"{self.path}: row {first + i + 1}: timestamp {stamps[i].as_py()} {how} the one"
                f" before it ({before}); rows must be sorted by time, without repeats",
                reason="out_of_order",
            )
        if times.size:
            self._last_t = float(times[-1])
            self._last_stamp = str(stamps[-1].as_py())


def read_frame(path: Path, table: SignalTable) -> Frame:
    """A whole wide file as one frame over the site's signals (small files: tests, tools).
    A column that names no signal of the site is an error naming it."""
    with WideReader(path) as reader:
        cols = [table.index.get(name) for name in reader.columns]
        unknown = [name for name, col in zip(reader.columns, cols, strict=True) if col is None]
        if unknown:
            raise IngestError(
                f"{path}: column '{unknown[0]}' names no signal of the site", "unknown_signal"
            )
        index = np.array(cols, dtype=np.intp)
        times: list[F64] = []
        rows: list[F64] = []
        for chunk in reader:
            grid = np.full((chunk.times.shape[0], len(table)), np.nan)
            grid[:, index] = chunk.values
            times.append(chunk.times)
            rows.append(grid)
    if not times:
        return Frame(np.empty(0), np.empty((0, len(table))))
    return Frame(np.concatenate(times), np.concatenate(rows))
