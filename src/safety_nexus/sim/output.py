"""Writing simulated telemetry and its labels to files, and reading them back.

Telemetry is *wide*: a `timestamp` column, then one column per signal id in the site's order; an
empty cell (CSV) or null (Parquet) means no sample. Timestamps are UTC: ISO-8601 text with
milliseconds and a `Z` in CSV (`2026-06-01T00:00:01.000Z`), `timestamp[us, tz=UTC]` in Parquet.
Both are what `ingest.wide.WideReader` reads. Rows are buffered and written in chunks, so
a day of telemetry never has to fit in memory twice.

Labels go to `<stem>.labels.csv` beside the telemetry: scenario, run, signal, start, end (empty:
still abnormal when labelling stopped), kind, root_cause, effect; times in the same ISO-8601 form.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import cast, get_args

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from safety_nexus.core.closing import Closeable
from safety_nexus.core.errors import SimError
from safety_nexus.core.types import F64, Frame, SignalTable
from safety_nexus.sim.faults import Effect
from safety_nexus.sim.truth import Kind, Label

FORMATS = (".csv", ".parquet")
LABEL_FIELDS = ("scenario", "run", "signal", "start", "end", "kind", "root_cause", "effect")
CHUNK_ROWS = 4096


def labels_path(telemetry: Path) -> Path:
    """Where the labels of `telemetry` go: run.parquet → run.labels.csv."""
    return telemetry.with_name(f"{telemetry.stem}.labels.csv")


def iso(times: F64) -> list[str]:
    """Epoch seconds as ISO-8601 UTC text with milliseconds."""
    stamps = np.round(times * 1000.0).astype(np.int64).astype("datetime64[ms]")
    return [str(s) + "Z" for s in stamps]


def _from_iso(text: str) -> float:
    return datetime.fromisoformat(text).astimezone(UTC).timestamp()


class TelemetryWriter(Closeable):
    """Appends frames to a CSV or Parquet file (by suffix). Use as a context manager."""

    def __init__(self, path: Path, table: SignalTable) -> None:
        if path.suffix not in FORMATS:
            raise SimError(f"{path}: the output must end in .csv or .parquet")
        self.path = path
        self.ids = table.ids
        self.rows = 0
        self._times: list[F64] = []
        self._values: list[F64] = []
        self._buffered = 0
        time_type = pa.string() if path.suffix == ".csv" else pa.timestamp("us", tz="UTC")
        self.schema = pa.schema(
            [pa.field("timestamp", time_type, nullable=False)]
            + [pa.field(sid, pa.float64()) for sid in table.ids]
        )
        self._csv: pacsv.CSVWriter | None = None
        self._parquet: pq.ParquetWriter | None = None
        try:
            if path.suffix == ".csv":
                # Ids and ISO times never hold a comma or a quote: plain, unquoted CSV.
                options = pacsv.WriteOptions(quoting_style="none", quoting_header="none")
                self._csv = pacsv.CSVWriter(str(path), self.schema, write_options=options)
            else:
                self._parquet = pq.ParquetWriter(str(path), self.schema, compression="zstd")
        except (OSError, pa.ArrowException) as err:
            raise SimError(f"{path}: cannot write: {err}") from err

    def write(self, frame: Frame) -> None:
        if frame.n_signals != len(self.ids):
            raise SimError(f"frame has {frame.n_signals} columns, the table {len(self.ids)}")
        self._times.append(frame.times)
        self._values.append(frame.values)
        self._buffered += frame.n_rows
        if self._buffered >= CHUNK_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._buffered:
            return
        times = np.concatenate(self._times)
        values = np.concatenate(self._values)
        self._times, self._values, self._buffered = [], [], 0
        stamp: pa.Array
        if self._csv is not None:
            stamp = pa.array(iso(times), pa.string())
        else:
            micros = np.round(times * 1e6).astype(np.int64)
            stamp = pa.array(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        missing = np.isnan(values)
        columns = [stamp] + [
            pa.array(values[:, j], pa.float64(), mask=missing[:, j]) for j in range(len(self.ids))
        ]
        batch = pa.RecordBatch.from_arrays(columns, schema=self.schema)
        try:
            if self._csv is not None:
                self._csv.write_batch(batch)
            elif self._parquet is not None:
                self._parquet.write_batch(batch)
        except (OSError, pa.ArrowException) as err:
            raise SimError(f"{self.path}: cannot write: {err}") from err
        self.rows += len(times)

    def close(self) -> None:
        self._flush()
        if self._csv is not None:
            self._csv.close()
            self._csv = None
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None


def read_telemetry(path: Path) -> tuple[list[str], Frame]:
    """Read a file `TelemetryWriter` wrote: (signal ids in column order, the frame)."""
    try:
        data = pq.read_table(path) if path.suffix == ".parquet" else pacsv.read_csv(path)
    except (OSError, pa.ArrowException) as err:
        raise SimError(f"{path}: cannot read: {err}") from err
    if not data.column_names or data.column_names[0] != "timestamp":
        raise SimError(f"{path}: the first column must be 'timestamp'")
    stamp = data.column(0)
    if pa.types.is_timestamp(stamp.type):
        micros = stamp.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        times = np.asarray(micros.to_numpy(), dtype=np.float64) / 1e6
    else:
        times = np.asarray([_from_iso(str(t)) for t in stamp.to_pylist()], dtype=np.float64)
    ids = data.column_names[1:]
    values = np.empty((len(times), len(ids)))
    for j, name in enumerate(ids):
        col = data.column(name).cast(pa.float64())
        values[:, j] = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    return ids, Frame(times=times, values=values)


def write_labels(path: Path, labels: Iterable[Label]) -> int:
    rows = 0
    try:
        with path.open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(LABEL_FIELDS)
            for lb in labels:
                start, end = iso(np.asarray([lb.start, lb.start if lb.end is None else lb.end]))
                out.writerow(
                    [
                        lb.scenario,
                        lb.run,
                        lb.signal,
                        start,
                        "" if lb.end is None else end,
                        lb.kind,
                        lb.root_cause,
                        lb.effect,
                    ]
                )
                rows += 1
    except OSError as err:
        raise SimError(f"{path}: cannot write: {err.strerror or err}") from err
    return rows


def read_labels(path: Path) -> list[Label]:
    kinds, effects = get_args(Kind), get_args(Effect)
    out: list[Label] = []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh), start=2):
                if row["kind"] not in kinds or row["effect"] not in effects:
                    raise SimError(f"{path}:{i}: unknown kind or effect")
                out.append(
                    Label(
                        scenario=row["scenario"],
                        run=int(row["run"]),
                        signal=row["signal"],
                        start=_from_iso(row["start"]),
                        end=_from_iso(row["end"]) if row["end"] else None,
                        kind=cast("Kind", row["kind"]),
                        root_cause=row["root_cause"],
                        effect=cast("Effect", row["effect"]),
                    )
                )
    except (OSError, KeyError, ValueError) as err:
        raise SimError(f"{path}: cannot read labels: {err}") from err
    return out
