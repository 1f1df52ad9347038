"""The chunked reader of users' wide CSV/Parquet files: timestamps, gaps, chunks and errors."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from safety_nexus.core.errors import IngestError
from safety_nexus.ingest.wide import WideChunk, WideReader


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def read_all(path: Path, **kw: object) -> tuple[WideReader, list[WideChunk]]:
    with WideReader(path, **kw) as reader:  # type: ignore[arg-type]
        return reader, list(reader)


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_iso_without_zone_is_utc_and_columns_are_signals(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.csv",
        "timestamp,value,other\n2014-04-10 00:00:00,1.5,2\n2014-04-10 00:05:00,,3\n",
    )
    reader, chunks = read_all(path)
    assert reader.time_column == "timestamp"
    assert reader.columns == ("value", "other")
    assert reader.naive_times
    (chunk,) = chunks
    assert chunk.times.tolist() == [epoch("2014-04-10T00:00:00"), epoch("2014-04-10T00:05:00")]
    assert chunk.stamps.to_pylist() == ["2014-04-10 00:00:00", "2014-04-10 00:05:00"]
    assert np.array_equal(chunk.values, [[1.5, 2.0], [np.nan, 3.0]], equal_nan=True)
    assert reader.gaps == 1


def test_zone_offsets_are_honoured(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.csv", "Time,x\n2026-06-01T02:00:00+02:00,1\n2026-06-01T00:00:01Z,2\n"
    )
    reader, (chunk,) = read_all(path)
    assert reader.time_column == "Time"  # matched case-insensitively
    assert not reader.naive_times
    assert chunk.times.tolist() == [epoch("2026-06-01T00:00:00"), epoch("2026-06-01T00:00:01")]


@pytest.mark.parametrize(
    ("stamps", "expected"),
    [
        (["1700000000", "1700000060"], [1.7e9, 1.7e9 + 60]),
        (["1700000000000", "1700000060500"], [1.7e9, 1.7e9 + 60.5]),  # milliseconds
        (["0", "1", "2"], [0.0, 1.0, 2.0]),
    ],
)
def test_epoch_seconds_and_milliseconds(
    tmp_path: Path, stamps: list[str], expected: list[float]
) -> None:
    rows = "".join(f"{s},{i}\n" for i, s in enumerate(stamps))
    _, (chunk,) = read_all(write(tmp_path / "a.csv", "ts,x\n" + rows))
    assert chunk.times.tolist() == pytest.approx(expected)
    assert chunk.stamps.to_pylist() == stamps  # echoed as written


def test_nan_and_infinite_values_are_gaps(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "time,x,y\n1,NaN,inf\n2,,-inf\n3,4,5\n")
    reader, (chunk,) = read_all(path)
    assert np.isnan(chunk.values[:2]).all()
    assert chunk.values[2].tolist() == [4.0, 5.0]
    assert reader.nonfinite == 2
    assert reader.gaps == 4


def test_small_chunks_cover_the_file_in_order(tmp_path: Path) -> None:
    n = 3000
    rng = np.random.default_rng(3)
    x = rng.normal(size=n)
    text = "timestamp,x\n" + "".join(f"{i * 2},{v!r}\n" for i, v in enumerate(x.tolist()))
    path = write(tmp_path / "a.csv", text)
    reader, chunks = read_all(path, chunk_bytes=4096)
    assert len(chunks) > 5
    assert [c.first_row for c in chunks] == np.cumsum(
        [0] + [c.n_rows for c in chunks[:-1]]
    ).tolist()
    assert np.concatenate([c.values[:, 0] for c in chunks]).tolist() == x.tolist()
    assert np.concatenate([c.times for c in chunks]).tolist() == [2.0 * i for i in range(n)]
    assert reader.rows_read == n


def test_gzip_csv(tmp_path: Path) -> None:
    path = tmp_path / "a.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("timestamp,x\n1,1\n2,2\n")
    _, (chunk,) = read_all(path)
    assert chunk.values[:, 0].tolist() == [1.0, 2.0]


def test_parquet_native_timestamps_and_nulls(tmp_path: Path) -> None:
    micros = np.array([1_700_000_000_000_000, 1_700_000_001_000_000], dtype=np.int64)
    table = pa.table(
        {
            "timestamp": pa.array(micros).cast(pa.timestamp("us", tz="UTC")),
            "a": pa.array([1.0, None]),
            "b": pa.array([3, 4], pa.int32()),
        }
    )
    pq.write_table(table, tmp_path / "a.parquet")
    reader, (chunk,) = read_all(tmp_path / "a.parquet")
    assert chunk.times.tolist() == [1.7e9, 1.7e9 + 1]
    assert np.array_equal(chunk.values, [[1.0, 3.0], [np.nan, 4.0]], equal_nan=True)
    assert chunk.stamps.to_pylist()[0].startswith("2023-11-14 22:13:20")
    assert not reader.naive_times


def test_ignored_columns_are_left_out(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "timestamp,x,status\n1,1,ok\n2,2,ok\n")
    reader, (chunk,) = read_all(path, ignore=["status"])
    assert reader.columns == ("x",)
    assert chunk.values.shape == (2, 1)


@pytest.mark.parametrize(
    ("name", "text", "kw", "message"),
    [
        ("a.csv", "when,x\n1,2\n", {}, "no timestamp column (looked for timestamp, time, ts"),
        ("a.csv", "timestamp,x\n1,2\n", {"time_column": "t"}, "no column 't' (--time-column)"),
        ("a.csv", "timestamp\n1\n", {}, "no signal columns besides 'timestamp'"),
        ("a.csv", "timestamp;x\n1;2\n", {}, "the header is one column, 'timestamp;x'"),
        ("a.csv", "timestamp,x,x\n1,2,3\n", {}, "column 'x' appears twice"),
        ("a.csv", "timestamp,x,status\n1,2,ok\n", {}, "column 'status' is not numeric"),
        ("a.csv", "timestamp,x\n1,2\n3,2\n2,2\n", {}, "row 3: timestamp 2 is earlier than"),
        ("a.csv", "timestamp,x\n1,2\n2,2\n2,5\n", {}, "row 3: timestamp 2 repeats the one"),
        ("a.csv", "timestamp,x\n1,2\n,2\n", {}, "row 2: no timestamp"),
        ("a.csv", "timestamp,x\n2020-01-01T00:00:00,1\nsoon,2\n", {}, "row 2: 'soon' is not a"),
        (
            "a.csv",
            "timestamp,x\n2020-01-01T00:00:00Z,1\n2020-01-01T00:00:01,2\n",
            {},
            "row 2: timestamp '2020-01-01T00:00:01' is without a zone offset",
        ),
        ("a.csv", "timestamp,x\n1,2\n2\n", {}, "cannot read"),
        ("a.txt", "timestamp,x\n1,2\n", {}, "expected a .csv, .csv.gz or .parquet file"),
        ("a.csv", "timestamp,x\n1,2\n", {"ignore": ["y"]}, "no column 'y' to ignore"),
    ],
)
def test_bad_files_are_clear_errors(
    tmp_path: Path, name: str, text: str, kw: dict[str, object], message: str
) -> None:
    path = write(tmp_path / name, text)
    with pytest.raises(IngestError) as info:
        read_all(path, **kw)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_text_column_error_names_the_column_and_its_value(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "timestamp,x,status\n1,2,ok\n2,3,bad\n")
    with pytest.raises(IngestError, match=r"column 'status' is not numeric \(first value 'ok'\)"):
        read_all(path)


def test_a_word_deep_in_a_numeric_column_is_found_by_row(tmp_path: Path) -> None:
    rows = [f"{i},{i % 7}" for i in range(1, 5001)]
    rows[4321] = "4322,n/a?"
    path = write(tmp_path / "a.csv", "timestamp,level\n" + "\n".join(rows) + "\n")
    with pytest.raises(IngestError) as info:
        read_all(path, chunk_bytes=1 << 12)  # the first chunks read as numbers, a later one fails
    assert "row 4322: column 'level' holds 'n/a?', which is not a number" in str(info.value)
    with WideReader(path, chunk_bytes=1 << 12) as reader:  # the search where pyarrow names none
        assert reader._find_bad_number("level") == 4322


def test_unsorted_rows_across_chunks_name_the_row(tmp_path: Path) -> None:
    times = list(range(1, 3001))
    times[2500] = 5
    path = write(tmp_path / "a.csv", "ts,x\n" + "".join(f"{t},1\n" for t in times))
    with pytest.raises(IngestError, match="row 2501: timestamp 5 is earlier than the one before"):
        read_all(path, chunk_bytes=1 << 12)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="no such file"):
        WideReader(tmp_path / "nope.csv")
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(IngestError, match="is a directory"):
        WideReader(tmp_path / "d.csv")
