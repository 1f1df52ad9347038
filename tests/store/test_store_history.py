from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from safety_nexus.core.errors import StoreError
from safety_nexus.core.types import Frame, SignalTable
from safety_nexus.store import HistoryStore


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def rows(t0: int, count: int, n: int) -> Frame:
    """Value of signal j at time t is 1000 * j + t: every sample says where it belongs."""
    times = np.arange(t0, t0 + count, dtype=np.float64)
    values = 1000.0 * np.arange(n)[None, :] + times[:, None]
    return Frame(times, values)


def parquet_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.suffix == ".parquet")


def open_store(directory: Path, table: SignalTable, **kw: Any) -> HistoryStore:
    kw.setdefault("monotonic", FakeMonotonic())
    return HistoryStore(directory, table, **kw)


def test_reads_the_unflushed_buffer(tmp_path: Path, table: SignalTable) -> None:
    h = open_store(tmp_path, table)
    h.append(rows(0, 5, len(table)))
    times, values = h.read("pump-1.flow", 1.0, 3.0)
    assert times.tolist() == [1.0, 2.0, 3.0]
    assert values.tolist() == [2001.0, 2002.0, 2003.0]
    assert parquet_files(tmp_path) == []
    h.close()


def test_range_queries_across_segments_and_buffer(tmp_path: Path, table: SignalTable) -> None:
    h = open_store(tmp_path, table, segment_rows=10)
    for t0 in range(0, 35, 7):  # 35 rows in frames that straddle segment boundaries
        h.append(rows(t0, 7, len(table)))
    assert len([f for f in parquet_files(tmp_path) if f.startswith("seg_")]) == 3
    times, values = h.read("sub-1.load", 8.0, 33.0)
    assert times.tolist() == list(np.arange(8.0, 34.0))
    assert values.tolist() == list(1000.0 + np.arange(8.0, 34.0))
    times, _ = h.read("sub-1.load", 100.0, 200.0)
    assert times.size == 0
    times, _ = h.read("sub-1.load", 5.0, 4.0)
    assert times.size == 0
    h.close()


def test_only_overlapping_segments_and_one_column_are_read(
    tmp_path: Path, table: SignalTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = open_store(tmp_path, table, segment_rows=10)
    h.append(rows(0, 40, len(table)))
    opened: list[str] = []
    columns: list[list[str]] = []
    real = pq.ParquetFile

    class Spy(real):  # type: ignore[misc,valid-type]
        def __init__(self, path: Path, *a: Any, **kw: Any) -> None:
            opened.append(Path(path).name)
            super().__init__(path, *a, **kw)

        def read(self, *a: Any, **kw: Any) -> Any:
            columns.append(kw["columns"])
            return super().read(*a, **kw)

    monkeypatch.setattr(pq, "ParquetFile", Spy)
    times, _ = h.read("gen-1.fuel", 12.0, 17.0)
    assert times.tolist() == [12.0, 13.0, 14.0, 15.0, 16.0, 17.0]
    assert len(opened) == 1
    assert opened[0].startswith("seg_00000001_")
    assert columns == [["time", "gen-1.fuel"]]
    h.close()


def test_flush_writes_a_part_and_close_seals(tmp_path: Path, table: SignalTable) -> None:
    clock = FakeMonotonic()
    h = open_store(tmp_path, table, flush_seconds=10.0, monotonic=clock)
    h.append(rows(0, 3, len(table)))
    assert parquet_files(tmp_path) == []
    clock.t = 10.0
    h.append(rows(3, 3, len(table)))  # due: the 6 rows go out as a part
    h.flush()  # nothing new: no empty file
    h.append(rows(6, 2, len(table)))
    h.flush()
    names = parquet_files(tmp_path)
    assert names == [
        "part_00000000_00000_0.000000_5.000000.parquet",
        "part_00000000_00001_6.000000_7.000000.parquet",
    ]
    h.close()
    h.close()
    assert parquet_files(tmp_path) == ["seg_00000000_0.000000_7.000000.parquet"]
    with pytest.raises(StoreError, match="closed"):
        h.append(rows(8, 1, len(table)))


def test_restart_sees_old_segments(tmp_path: Path, table: SignalTable) -> None:
    h = open_store(tmp_path, table, segment_rows=10)
    h.append(rows(0, 25, len(table)))
    h.close()
    h = open_store(tmp_path, table, segment_rows=10)
    h.append(rows(25, 5, len(table)))
    times, values = h.read("sub-1.voltage", 0.0, 100.0)
    assert times.tolist() == list(np.arange(30.0))
    assert values.tolist() == times.tolist()
    h.close()
    seqs = [name.split("_")[1] for name in parquet_files(tmp_path)]
    assert seqs == ["00000000", "00000001", "00000002", "00000003"]


def test_a_crash_keeps_flushed_parts(tmp_path: Path, table: SignalTable) -> None:
    h = open_store(tmp_path, table)
    h.append(rows(0, 4, len(table)))
    h.flush()
    h.append(rows(4, 4, len(table)))
    h.flush()
    h.append(rows(8, 4, len(table)))  # never flushed: lost in the crash
    del h  # no close(): the process died

    h = open_store(tmp_path, table)
    assert parquet_files(tmp_path) == ["seg_00000000_0.000000_7.000000.parquet"]
    times, _ = h.read("gen-1.fuel", 0.0, 100.0)
    assert times.tolist() == list(np.arange(8.0))
    h.close()


def test_downsampling_bounds_points_and_keeps_extremes(tmp_path: Path, table: SignalTable) -> None:
    h = open_store(tmp_path, table, segment_rows=4000)
    rng = np.random.default_rng(3)
    times = np.arange(10_000, dtype=np.float64)
    values = rng.normal(size=(10_000, len(table)))
    values[5_000, 0] = 50.0  # a spike the averaging must not hide
    h.append(Frame(times, values))
    window = h.read_window("sub-1.voltage", 0.0, 20_000.0, max_points=100)
    assert window.downsampled
    assert 0 < window.times.size <= 100
    assert np.all(np.diff(window.times) > 0)
    assert np.all(window.minimum <= window.mean)
    assert np.all(window.mean <= window.maximum)
    assert window.maximum.max() == np.float32(50.0)
    assert window.minimum.min() == values[:, 0].astype(np.float32).min()
    assert window.mean.mean() == pytest.approx(values[:, 0].astype(np.float32).mean(), abs=1e-3)
    t, v = h.read("sub-1.voltage", 0.0, 20_000.0, max_points=1)
    assert t.size == 1
    assert v.size == 1
    small = h.read_window("sub-1.voltage", 0.0, 9.0, max_points=100)
    assert not small.downsampled
    assert small.times.size == 10
    with pytest.raises(StoreError):
        h.read("sub-1.voltage", 0.0, 1.0, max_points=0)
    h.close()


def test_a_failed_flush_leaves_no_partial_file(
    tmp_path: Path, table: SignalTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = open_store(tmp_path, table)
    h.append(rows(0, 5, len(table)))
    h.flush()
    before = parquet_files(tmp_path)
    h.append(rows(5, 5, len(table)))

    def half_write(table: Any, where: Path, **kw: Any) -> None:
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(StoreError, match="disk full") as info:
        h.flush()
    assert isinstance(info.value.__cause__, OSError)
    assert parquet_files(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # the temporary is gone too
    monkeypatch.undo()

    times, _ = h.read("sub-1.load", 0.0, 100.0)  # still answers, from memory
    assert times.size == 10
    h.flush()  # and the retry succeeds
    h.close()
    assert len(parquet_files(tmp_path)) == 1


def test_leftover_temporary_files_are_ignored_and_removed(
    tmp_path: Path, table: SignalTable
) -> None:
    h = open_store(tmp_path, table)
    h.append(rows(0, 5, len(table)))
    h.close()
    leftover = tmp_path / ".seg_00000001_5.000000_9.000000.parquet.tmp"
    leftover.write_bytes(b"PAR1 torn")
    h = open_store(tmp_path, table)
    assert not leftover.exists()
    assert h.read("sub-1.load", 0.0, 100.0)[0].size == 5
    h.close()


def test_signal_set_change(tmp_path: Path, make_table: Callable[[list[str]], SignalTable]) -> None:
    old = make_table(["a.x", "a.y"])
    h = open_store(tmp_path, old)
    h.append(rows(0, 5, 2))  # a.x = t, a.y = 1000 + t
    h.close()

    new = make_table(["a.y", "a.z"])
    h = open_store(tmp_path, new)
    h.append(rows(5, 5, 2))  # now a.y = t, a.z = 1000 + t
    y_t, y_v = h.read("a.y", 0.0, 100.0)
    assert y_t.tolist() == list(np.arange(10.0))
    assert y_v.tolist() == [1000.0, 1001.0, 1002.0, 1003.0, 1004.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    assert h.read("a.x", 0.0, 100.0)[0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert h.read("a.z", 0.0, 100.0)[0].tolist() == [5.0, 6.0, 7.0, 8.0, 9.0]
    assert h.read("nowhere.q", 0.0, 100.0)[0].size == 0
    h.close()


def test_nan_samples_are_not_history(tmp_path: Path, table: SignalTable) -> None:
    h = open_store(tmp_path, table, segment_rows=3)
    values = np.full((6, len(table)), np.nan)
    values[::2, 3] = [1.0, 2.0, 3.0]  # a slow signal: every other row
    h.append(Frame(np.arange(6, dtype=np.float64), values))
    times, v = h.read("gen-1.fuel", 0.0, 10.0)
    assert times.tolist() == [0.0, 2.0, 4.0]
    assert v.tolist() == [1.0, 2.0, 3.0]
    assert h.read("sub-1.load", 0.0, 10.0)[0].size == 0
    h.close()


def test_rejects_bad_input(tmp_path: Path, table: SignalTable) -> None:
    h = open_store(tmp_path, table)
    with pytest.raises(StoreError, match="signals"):
        h.append(Frame(np.zeros(1), np.zeros((1, 2))))
    with pytest.raises(StoreError, match="NaN times"):
        h.append(Frame(np.array([np.nan]), np.zeros((1, len(table)))))
    h.close()


def test_prune_deletes_old_segments(tmp_path: Path, table: SignalTable) -> None:
    h = open_store(tmp_path, table, segment_rows=10)
    h.append(rows(0, 30, len(table)))
    assert h.prune(before=15.0) == 1
    assert h.read("sub-1.load", 0.0, 100.0)[0].tolist() == list(np.arange(10.0, 30.0))
    h.close()


def test_marks_become_durable_with_the_rows_they_label(tmp_path: Path, table: SignalTable) -> None:
    clock = FakeMonotonic()
    h = open_store(tmp_path, table, segment_rows=10, flush_seconds=5.0, monotonic=clock)
    n = len(table)
    h.append(rows(0, 4, n), mark=3)
    assert h.durable_mark == 0  # in memory only
    clock.t = 6.0
    h.append(rows(4, 2, n), mark=5)  # the flush writes both frames (on the writer thread)
    h.flush()  # waits for it
    assert h.durable_mark == 5
    # A frame that fills a segment part-way: the sealed segment does not hold all of it,
    # so it must not carry the frame's mark.
    clock.t = 7.0
    h.append(rows(6, 8, n), mark=9)
    assert h.durable_mark == 5
    h.flush()
    assert h.durable_mark == 9
    h.append(rows(14, 1, n), mark=10)
    # A crash now: reopening finds the mark of what reached the disk.
    again = open_store(tmp_path, table)
    assert again.durable_mark == 9
    again.close()


def test_last_times_per_signal(tmp_path: Path, table: SignalTable) -> None:
    h = open_store(tmp_path, table, segment_rows=10)
    n = len(table)
    frame = rows(0, 25, n)
    values = frame.values.copy()
    values[12:, 0] = np.nan  # the first signal stops at t=11 (a sealed segment)
    values[:, 1] = np.nan  # the second never reports
    h.append(Frame(frame.times, values))
    last = h.last_times(since=5.0)
    assert last[0] == 11.0
    assert last[1] == -np.inf
    assert last[2] == 24.0  # in memory
    assert h.last_times(since=30.0)[2] == -np.inf
    h.close()
