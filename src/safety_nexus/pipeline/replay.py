"""Reading recorded telemetry in the wide format `nexus sim run` writes.

One `timestamp` column (epoch seconds, or ISO-8601 with a time zone) and one column per signal
id. Columns for signals the site does not declare are an error that names them; signals with no
column simply have no samples.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from safety_nexus.core.errors import IngestError
from safety_nexus.core.types import Frame, SignalTable

TIME_COLUMNS = ("timestamp", "time")


def _read_table(path: Path) -> pa.Table:
    if not path.exists():
        raise IngestError(f"{path}: no such file", reason="missing_file")
    try:
        if path.suffix == ".parquet":
            return pq.read_table(path)
        if path.suffix in (".csv", ".gz"):
            return pacsv.read_csv(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise IngestError(f"{path}: cannot read: {err}", reason="bad_file") from err
    raise IngestError(f"{path}: expected a .csv or .parquet file", reason="bad_file")


def _times(column: pa.ChunkedArray, path: Path) -> np.ndarray:
    if pa.types.is_timestamp(column.type):
        if column.type.tz is None:
            raise IngestError(f"{path}: timestamps need a time zone (e.g. +00:00)", "bad_time")
        scale = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[column.type.unit]
        return np.asarray(column.cast(pa.int64()).to_numpy(), dtype=np.float64) / scale
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return np.asarray(column.to_numpy(), dtype=np.float64)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        out = np.empty(len(column), dtype=np.float64)
        for i, text in enumerate(column.to_pylist()):
            try:
                dt = datetime.fromisoformat(str(text))
            except ValueError:
                raise IngestError(
                    f"{path}: row {i + 1}: '{text}' is not a timestamp", reason="bad_time"
                ) from None
            if dt.tzinfo is None:
                raise IngestError(f"{path}: row {i + 1}: timestamp needs a time zone", "bad_time")
            out[i] = dt.timestamp()
        return out
    raise IngestError(f"{path}: timestamp column has unsupported type {column.type}", "bad_time")


def read_wide(path: Path, table: SignalTable) -> Frame:
    data = _read_table(path)
    names = data.column_names
    time_col = next((c for c in TIME_COLUMNS if c in names), None)
    if time_col is None:
        raise IngestError(f"{path}: no 'timestamp' column", reason="bad_shape")
    unknown = [c for c in names if c != time_col and c not in table.index]
    if unknown:
        shown = ", ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")
        raise IngestError(
            f"{path}: {len(unknown)} column(s) name no signal of the site: {shown}",
            reason="unknown_signal",
        )
    times = _times(data.column(time_col), path)
    if times.size > 1 and not np.all(np.diff(times) > 0):
        raise IngestError(f"{path}: timestamps are not strictly increasing", reason="out_of_order")
    values = np.full((times.shape[0], len(table)), np.nan)
    for name in names:
        if name == time_col:
            continue
        col = data.column(name)
        values[:, table.index[name]] = np.asarray(
            col.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
        )
    if np.isinf(values).any():
        raise IngestError(f"{path}: infinite values", reason="non_finite")
    return Frame(times=times, values=values)
