"""The reorder buffer: out-of-order samples within a tolerance reach the detectors in order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safety_nexus.core.errors import IngestError
from safety_nexus.core.types import Frame
from safety_nexus.detect.testing import make_table
from safety_nexus.ingest.frames import FrameAssembler
from safety_nexus.ingest.reorder import ReorderBuffer
from safety_nexus.pipeline.builder import RuntimeSettings, build_runtime

I64 = np.int64


def _concat(frames: list[Frame], n: int) -> tuple[list[float], np.ndarray]:
    times = [t for f in frames for t in f.times.tolist()]
    values = np.concatenate([f.values for f in frames]) if frames else np.empty((0, n))
    return times, values


def _same(a: list[Frame], b: list[Frame], n: int) -> None:
    ta, va = _concat(a, n)
    tb, vb = _concat(b, n)
    assert ta == tb
    assert np.array_equal(va, vb, equal_nan=True)


Case = tuple[int, float, np.ndarray, np.ndarray, np.ndarray, list[int], list[int]]


@st.composite
def _arrivals(draw: st.DrawFn) -> Case:
    """Unique (signal, time) samples and an arrival order in which no sample comes after one
    `tolerance` or more seconds newer than itself (a permutation within the tolerance)."""
    n = draw(st.integers(1, 4))
    tolerance = draw(st.sampled_from([0.5, 2.0, 5.0]))
    rows = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    times = np.asarray(np.round(np.cumsum(rng.uniform(0.05, 1.5, size=rows)), 2), dtype=np.float64)
    present = rng.random((rows, n)) < 0.7
    r, c = np.nonzero(present)
    t, cols = times[r], c.astype(I64)
    values = np.asarray(rng.normal(size=t.shape[0]), dtype=np.float64)
    # Delay each sample by less than the tolerance, then arrive in order of delayed time:
    # a sample can then only be overtaken by samples less than `tolerance` newer.
    delay = rng.uniform(0.0, tolerance * 0.999, size=t.shape[0])
    order = np.argsort(t + delay, kind="stable").tolist()
    # Split into batches of random size.
    cuts = sorted({*rng.integers(0, len(order) + 1, size=draw(st.integers(0, 6))).tolist()})
    return n, tolerance, cols, t, values, [*cuts, len(order)], order


@settings(max_examples=150, deadline=None)
@given(_arrivals())
def test_any_arrival_within_the_tolerance_gives_the_frames_of_sorted_input(case: Case) -> None:
    n, tolerance, cols, times, values, cuts, order = case
    sort = np.lexsort((cols, times))
    ref = ReorderBuffer(n, tolerance)
    expected = [ref.push(cols[sort], times[sort], values[sort]), ref.flush()]

    buf = ReorderBuffer(n, tolerance)
    got: list[Frame] = []
    lo = 0
    idx = np.asarray(order, dtype=np.intp)
    for hi in cuts:
        part = idx[lo:hi]
        lo = hi
        assert buf.first_late(cols[part], times[part]) is None
        got.append(buf.push(cols[part], times[part], values[part]))
    got.append(buf.flush())
    _same(got, expected, n)
    assert buf.late == 0
    # and what came out is sorted input's rows: one per distinct time, every sample present
    all_t, grid = _concat(got, n)
    assert all_t == sorted(set(times.tolist()))
    assert int(np.isfinite(grid).sum()) == cols.shape[0]


def test_samples_are_held_until_the_stream_moves_past_the_tolerance() -> None:
    buf = ReorderBuffer(2, tolerance=3.0)
    f = buf.push(np.array([0, 1], dtype=I64), np.array([10.0, 11.0]), np.array([1.0, 2.0]))
    assert f.n_rows == 0
    assert len(buf) == 2
    f = buf.push(np.array([1], dtype=I64), np.array([9.0]), np.array([3.0]))  # older: fine
    assert f.n_rows == 0
    f = buf.push(np.array([0], dtype=I64), np.array([13.5]), np.array([4.0]))  # horizon 10.5
    assert f.times.tolist() == [9.0, 10.0]
    assert np.array_equal(f.values, [[np.nan, 3.0], [1.0, np.nan]], equal_nan=True)
    assert len(buf) == 2
    assert buf.flush().times.tolist() == [11.0, 13.5]
    assert len(buf) == 0


def test_a_sample_behind_what_was_released_is_late_and_counted() -> None:
    buf = ReorderBuffer(2, tolerance=1.0)
    buf.push(np.array([0, 0], dtype=I64), np.array([1.0, 5.0]), np.array([1.0, 2.0]))  # 1.0 out
    assert buf.first_late(np.array([1, 0], dtype=I64), np.array([0.5, 1.0])) == 1
    assert buf.late == 1
    # behind the horizon but after its own signal's latest release: accepted, out at once
    assert buf.first_late(np.array([1], dtype=I64), np.array([2.0])) is None
    f = buf.push(np.array([1], dtype=I64), np.array([2.0]), np.array([7.0]))
    assert f.times.tolist() == [2.0]


def test_duplicates_while_held_the_later_arrival_wins() -> None:
    buf = ReorderBuffer(1, tolerance=5.0)
    buf.push(np.array([0], dtype=I64), np.array([1.0]), np.array([1.0]))
    buf.push(np.array([0, 0], dtype=I64), np.array([1.0, 1.0]), np.array([2.0, 3.0]))
    f = buf.flush()
    assert f.times.tolist() == [1.0]
    assert f.values.tolist() == [[3.0]]
    # once released, the same (signal, time) is late
    assert buf.first_late(np.array([0], dtype=I64), np.array([1.0])) == 0


def test_zero_tolerance_releases_every_batch_as_it_comes() -> None:
    buf = ReorderBuffer(2, tolerance=0.0)
    f = buf.push(np.array([1, 0], dtype=I64), np.array([4.0, 3.0]), np.array([1.0, 2.0]))
    assert f.times.tolist() == [3.0, 4.0]
    assert len(buf) == 0


def test_memory_is_bounded_by_releasing_the_oldest() -> None:
    buf = ReorderBuffer(1, tolerance=1e6, max_held=10)
    f = buf.push(np.zeros(25, dtype=I64), np.arange(25.0), np.arange(25.0))
    assert len(buf) == 10
    assert f.times.tolist() == list(np.arange(15.0))


def test_due_releases_by_the_clock() -> None:
    buf = ReorderBuffer(1, tolerance=2.0)
    buf.push(np.array([0], dtype=I64), np.array([100.0]), np.array([1.0]))
    assert buf.due(101.0).n_rows == 0
    assert buf.due(102.5).times.tolist() == [100.0]


def test_bad_tolerance_is_refused() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        ReorderBuffer(1, tolerance=-1.0)
    with pytest.raises(ValueError, match="tolerance"):
        ReorderBuffer(1, tolerance=float("nan"))


def test_assembler_rejects_late_batches_whole_with_409() -> None:
    asm = FrameAssembler(make_table(2), tolerance=2.0)
    f = asm.assemble(np.array([0, 1], dtype=I64), np.array([10.0, 10.0]), np.array([1.0, 2.0]))
    assert f.n_rows == 0
    assert asm.held == 2
    f = asm.assemble(np.array([0], dtype=I64), np.array([13.0]), np.array([3.0]))
    assert f.times.tolist() == [10.0]
    with pytest.raises(IngestError) as info:
        asm.assemble(np.array([1, 0], dtype=I64), np.array([12.0, 9.0]), np.array([0.0, 0.0]))
    assert info.value.status == 409
    assert info.value.reason == "out_of_order"
    assert "samples[1]" in str(info.value)
    assert "more than 2 s behind" in str(info.value)
    assert asm.late == 1
    assert asm.held == 1  # the rejected batch left no trace
    assert asm.flush().times.tolist() == [13.0]


def test_assembler_without_tolerance_behaves_as_before() -> None:
    asm = FrameAssembler(make_table(2))
    f = asm.assemble(np.array([0, 1], dtype=I64), np.array([2.0, 1.0]), np.array([1.0, 2.0]))
    assert f.times.tolist() == [1.0, 2.0]
    with pytest.raises(IngestError, match="not after its latest accepted sample"):
        asm.assemble(np.array([0], dtype=I64), np.array([2.0]), np.array([1.0]))


def _body(samples: list[tuple[str, float, float]]) -> bytes:
    return json.dumps(
        {"samples": [{"signal": s, "time": t, "value": v} for s, t, v in samples]}
    ).encode()


def test_runtime_reorders_http_batches_and_flushes_on_stop(tmp_path: Path, demo_city: Path) -> None:
    settings = RuntimeSettings(
        site=demo_city,
        data_dir=tmp_path,
        source="http",
        reorder_tolerance=3.0,
        max_clock_ahead=3600.0,  # the gateway's clock is ahead on purpose (see below)
    )
    runtime = build_runtime(settings)
    sig = "pump-1.pressure"
    col = runtime.table.index[sig]
    t0 = float(np.ceil(runtime.clock.now())) + 600.0  # live data (a gateway's clock ahead)
    runtime.start()
    try:
        assert runtime.ingest_json(_body([(sig, t0, 4.0), (sig, t0 + 2, 4.2)])) == 2
        assert runtime.ingest_json(_body([(sig, t0 + 1, 4.1)])) == 1  # late, within 3 s
        assert runtime.ingest_json(_body([(sig, t0 + 4, 4.4)])) == 1  # releases t0, t0 + 1
        with pytest.raises(IngestError) as info:
            runtime.ingest_json(_body([(sig, t0 + 0.5, 9.9)]))  # behind what was released
        assert info.value.status == 409
        assert runtime.wait_idle()
        assert runtime.metrics.rejected_count("out_of_order") == 1
        times, values = runtime.latest()
        assert times[col] == t0 + 1
        assert values[col] == 4.1
        # a backlog from the past is not held: the clock says its time is long gone
        old = "pump-2.pressure"
        assert runtime.ingest_json(_body([(old, 1000.0, 4.0), (old, 1001.0, 4.1)])) == 2
        assert runtime.wait_idle()
        assert runtime.latest()[0][runtime.table.index[old]] == 1001.0
    finally:
        runtime.stop()
    # 102 and 104 were held at stop: flushed through the pipeline, nothing accepted was lost
    again = build_runtime(settings)
    try:
        t, v = again.history.read(sig, t0 - 1, t0 + 10)
        assert t.tolist() == [t0, t0 + 1, t0 + 2, t0 + 4]
        assert np.array_equal(
            v, np.array([4.0, 4.1, 4.2, 4.4], dtype=np.float32)
        )  # history keeps float32
    finally:
        again.stop()


def test_the_clock_bounds_the_wait() -> None:
    buf = ReorderBuffer(1, tolerance=5.0)
    f = buf.push(
        np.array([0, 0], dtype=I64), np.array([10.0, 20.0]), np.array([1.0, 2.0]), now=16.0
    )
    assert f.times.tolist() == [10.0]  # older than now - 5 by the clock
    assert len(buf) == 1


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5), st.integers(-9, 9)), max_size=12),
        min_size=1,
        max_size=6,
    )
)
def test_of_duplicates_held_in_any_batches_the_last_arrival_wins(
    batches: list[list[tuple[int, int, int]]],
) -> None:
    """Samples (signal, time, value) with many repeats, in batches of any order and shape, held
    until a flush: each (signal, time) cell holds the value that arrived last."""
    n = 4
    buf = ReorderBuffer(n, tolerance=100.0)
    last: dict[tuple[float, int], float] = {}
    for batch in batches:
        cols = np.array([s for s, _, _ in batch], dtype=I64)
        times = np.array([float(t) for _, t, _ in batch])
        values = np.array([float(v) for _, _, v in batch])
        assert buf.push(cols, times, values).n_rows == 0
        for s, t, v in batch:
            last[(float(t), s)] = float(v)
    frame = buf.flush()
    assert frame.times.tolist() == sorted({t for t, _ in last})
    expected = np.full((frame.n_rows, n), np.nan)
    row = {t: i for i, t in enumerate(frame.times.tolist())}
    for (t, s), v in last.items():
        expected[row[t], s] = v
    assert np.array_equal(frame.values, expected, equal_nan=True)
    assert len(buf) == 0


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 50), min_size=1, max_size=30), min_size=1, max_size=8),
    st.integers(1, 40),
)
def test_beyond_max_held_exactly_the_oldest_leave_early(
    batches: list[list[int]], max_held: int
) -> None:
    """Over its bound the buffer releases its oldest samples, as few as it can: after every
    push it holds at most `max_held`, everything released is older than everything held, and
    without the latest time it released it would have held too many."""
    buf = ReorderBuffer(1, tolerance=1e6, max_held=max_held)
    held: list[float] = []  # the model: every sample's time, repeats included
    for batch in batches:
        times = np.array([float(t) for t in batch])
        held.extend(times.tolist())
        frame = buf.push(np.zeros(times.shape[0], dtype=I64), times, np.ones(times.shape[0]))
        out = frame.times.tolist()
        if not out:
            assert len(held) <= max_held
            continue
        latest = max(out)
        at_latest = sum(1 for t in held if t == latest)
        held = [t for t in held if t > latest]
        assert len(buf) == len(held) <= max_held
        assert latest < buf.oldest
        assert len(held) + at_latest > max_held
