from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from safety_nexus.core.errors import StoreError
from safety_nexus.core.types import Frame, SignalTable
from safety_nexus.store import LiveTelemetry

nan = np.nan


def frame(times: list[float], values: list[list[float]]) -> Frame:
    return Frame(np.asarray(times, dtype=np.float64), np.asarray(values, dtype=np.float64))


def ramp(t0: int, rows: int, n: int) -> Frame:
    """Rows whose every value equals the row's time: any torn or misplaced row shows."""
    times = np.arange(t0, t0 + rows, dtype=np.float64)
    return Frame(times, np.repeat(times[:, None], n, axis=1))


def test_window_returns_samples_oldest_first(table: SignalTable) -> None:
    live = LiveTelemetry(table, capacity_rows=10)
    live.append(ramp(0, 4, len(table)))
    times, values = live.window(1, since=1.0)
    assert times.tolist() == [1.0, 2.0, 3.0]
    assert values.tolist() == [1.0, 2.0, 3.0]
    assert times.dtype == np.float64
    assert values.dtype == np.float64
    times, _ = live.window(1, since=0.0, until=2.0)
    assert times.tolist() == [0.0, 1.0]
    assert len(live) == 4


def test_wrap_around_keeps_the_newest_rows_in_order(table: SignalTable) -> None:
    live = LiveTelemetry(table, capacity_rows=5)
    for t0 in (0, 3, 6):
        live.append(ramp(t0, 3, len(table)))
    times, values = live.window(0, since=-1.0)
    assert times.tolist() == [4.0, 5.0, 6.0, 7.0, 8.0]
    assert values.tolist() == times.tolist()
    assert len(live) == 5


def test_a_frame_larger_than_the_buffer_keeps_its_tail(table: SignalTable) -> None:
    live = LiveTelemetry(table, capacity_rows=4)
    live.append(ramp(0, 2, len(table)))
    live.append(ramp(2, 11, len(table)))
    times, _ = live.window(3, since=-1.0)
    assert times.tolist() == [9.0, 10.0, 11.0, 12.0]


def test_window_drops_nan(table: SignalTable) -> None:
    live = LiveTelemetry(table, capacity_rows=8)
    live.append(frame([0, 1, 2], [[1, nan, 1, 1], [nan, nan, 2, 2], [3, nan, 3, 3]]))
    times, values = live.window(0, since=0.0)
    assert times.tolist() == [0.0, 2.0]
    assert values.tolist() == [1.0, 3.0]
    assert live.window(1, since=0.0)[0].size == 0


def test_latest_skips_nan_and_remembers_overwritten_rows(table: SignalTable) -> None:
    live = LiveTelemetry(table, capacity_rows=2)
    t, v = live.latest()
    assert np.isnan(t).all()
    assert np.isnan(v).all()
    live.append(frame([0, 1, 2], [[1.25, nan, 5, nan], [nan, nan, 6, nan], [nan, nan, 7, nan]]))
    live.append(frame([3, 4], [[nan, nan, 8, nan], [nan, nan, nan, nan]]))
    t, v = live.latest()
    # Signal 0's only sample (t=0) has left the ring; its latest value stays known, exactly.
    assert t.tolist()[0] == 0.0
    assert v.tolist()[0] == 1.25
    assert np.isnan(t[1])
    assert (t[2], v[2]) == (3.0, 8.0)
    assert np.isnan(v[3])


def test_a_late_frame_does_not_replace_a_newer_latest(table: SignalTable) -> None:
    live = LiveTelemetry(table, capacity_rows=8)
    live.append(frame([10], [[1, 1, 1, 1]]))
    live.append(frame([5], [[2, nan, 2, 2]]))
    t, v = live.latest()
    assert t.tolist() == [10.0] * 4
    assert v.tolist() == [1.0] * 4
    times, values = live.window(0, since=0.0)
    assert times.tolist() == [5.0, 10.0]
    assert values.tolist() == [2.0, 1.0]


def test_latest_matches_a_naive_reference(make_table: Callable[[list[str]], SignalTable]) -> None:
    rng = np.random.default_rng(7)
    n = 300
    live = LiveTelemetry(make_table([f"a.s{i}" for i in range(n)]), capacity_rows=500)
    ref_t = np.full(n, np.nan)
    ref_v = np.full(n, np.nan)
    t0 = 0.0
    for _ in range(3):
        times = t0 + np.arange(1000, dtype=np.float64)
        t0 += 1000
        values = rng.normal(size=(1000, n))
        values[rng.random((1000, n)) < 0.995] = np.nan  # sparse, like slow signals
        values[:, :5] = np.nan  # never sampled
        live.append(Frame(times, values))
        for j in range(n):
            rows = np.flatnonzero(~np.isnan(values[:, j]))
            if rows.size:
                ref_t[j], ref_v[j] = times[rows[-1]], values[rows[-1], j]
    t, v = live.latest()
    np.testing.assert_array_equal(t, ref_t)
    np.testing.assert_array_equal(v, ref_v)


def test_rejects_a_frame_of_the_wrong_width(table: SignalTable) -> None:
    live = LiveTelemetry(table, capacity_rows=4)
    with pytest.raises(StoreError, match="3 signals"):
        live.append(frame([0], [[1, 2, 3]]))
    with pytest.raises(StoreError, match="index 9"):
        live.window(9, since=0.0)
    with pytest.raises(StoreError):
        LiveTelemetry(table, capacity_rows=0)


def test_concurrent_appends_and_reads_never_tear(table: SignalTable) -> None:
    live = LiveTelemetry(table, capacity_rows=64)
    n = len(table)
    done = threading.Event()
    start = threading.Barrier(3)  # writer and readers overlap

    def write() -> None:
        start.wait(timeout=10)
        try:
            for k in range(400):
                live.append(ramp(k * 7, 7, n))
        finally:
            done.set()

    def read() -> int:
        reads = 0
        start.wait(timeout=10)
        while True:  # at least one read, however the threads are scheduled
            finished = done.is_set()  # read once more after the last append
            times, values = live.window(2, since=0.0)
            assert np.array_equal(times, values)
            assert np.all(np.diff(times) == 1.0)
            t, v = live.latest()
            assert np.array_equal(t, v, equal_nan=True)
            reads += 1
            if finished:
                return reads

    with ThreadPoolExecutor(max_workers=3) as pool:
        readers = [pool.submit(read) for _ in range(2)]
        pool.submit(write).result(timeout=30)
        assert all(r.result(timeout=30) >= 1 for r in readers)
    t, _ = live.latest()
    assert t.tolist() == [400.0 * 7 - 1] * n
