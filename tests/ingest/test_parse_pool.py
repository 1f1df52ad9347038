"""Parsing in worker processes: the same batches and the same refusals as parsing in place, and
a worker that dies costs nothing but a new pool."""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Iterator

import numpy as np
import pytest

from safety_nexus.core.errors import IngestError
from safety_nexus.detect.testing import make_table
from safety_nexus.ingest.json_batch import ParsedBatch, parse_json_batch
from safety_nexus.ingest.lineprotocol import parse_line_protocol
from safety_nexus.ingest.parse_pool import ParsePool
from safety_nexus.pipeline.ledger import DuplicateBatch

TABLE = make_table(50)
JSON_BODIES = [
    b'{"source": "gw", "samples": [{"signal": "a1.s1", "time": 5, "value": 2.5},'
    b' {"signal": "a7.s7", "time": "2026-01-01T00:00:00Z", "value": -1}]}',
    b'{"signals": ["a3.s3", "a4.s4"], "time": 7.5, "values": [1, 2.25]}',
]
BAD_JSON = [
    b'{"samples": [{"signal": "nope", "time": 5, "value": 2.5}]}',  # unknown signal
    b'{"samples": [{"signal": "a1.s1", "time": 5, "value": "x"}]}',  # not a number
    b"[1, 2",  # not JSON
]
LP_BODIES = [b"a1 s1=1.5 1000000000\na2 s2=2i\nx v=3 2000000000\n"]
BAD_LP = [b"a1 s1= 1\n", b"nope value=1 1\n"]
NAMES = {"x v": "a5.s5"}  # an external name mapped to a signal


@pytest.fixture(scope="module")
def pool() -> Iterator[ParsePool]:
    p = ParsePool(TABLE, workers=1, min_bytes=0)  # every body goes to the worker
    yield p
    p.close()


def _same(a: ParsedBatch, b: ParsedBatch) -> None:
    assert a.source == b.source
    for x, y in ((a.columns, b.columns), (a.times, b.times), (a.values, b.values)):
        assert x.dtype == y.dtype
        assert np.array_equal(x, y)


def _refusal(call: object) -> IngestError:
    with pytest.raises(IngestError) as info:
        call()  # type: ignore[operator]
    return info.value


@pytest.mark.parametrize("body", JSON_BODIES)
def test_json_from_a_worker_is_the_batch_parsed_in_place(pool: ParsePool, body: bytes) -> None:
    _same(pool.json(body), parse_json_batch(body, TABLE))
    assert pool.running


@pytest.mark.parametrize("body", BAD_JSON)
def test_json_refusals_from_a_worker_are_whole(pool: ParsePool, body: bytes) -> None:
    there = _refusal(lambda: pool.json(body))
    here = _refusal(lambda: parse_json_batch(body, TABLE))
    assert type(there) is IngestError
    assert (str(there), there.reason, there.status, there.subject) == (
        str(here),
        here.reason,
        here.status,
        here.subject,
    )


@pytest.mark.parametrize("body", LP_BODIES)
def test_line_protocol_from_a_worker_is_the_batch_parsed_in_place(
    pool: ParsePool, body: bytes
) -> None:
    kw = {"now": 100.0, "precision": "ns", "source": "gw", "names": NAMES}
    _same(pool.line_protocol(body, **kw), parse_line_protocol(body, TABLE, **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize("body", BAD_LP)
def test_line_protocol_refusals_from_a_worker_are_whole(pool: ParsePool, body: bytes) -> None:
    there = _refusal(lambda: pool.line_protocol(body, now=100.0, names=NAMES))
    here = _refusal(lambda: parse_line_protocol(body, TABLE, now=100.0, names=NAMES))
    assert (str(there), there.reason, there.subject) == (str(here), here.reason, here.subject)


def test_small_bodies_are_parsed_in_place_and_start_nothing() -> None:
    p = ParsePool(TABLE, workers=2)  # the default threshold: these bodies are far below it
    try:
        _same(p.json(JSON_BODIES[0]), parse_json_batch(JSON_BODIES[0], TABLE))
        assert not p.running
    finally:
        p.close()


def test_a_dead_worker_costs_a_new_pool_not_a_batch() -> None:
    p = ParsePool(TABLE, workers=1, min_bytes=0)
    try:
        p.json(JSON_BODIES[0])  # starts the worker
        executor = p._pool
        assert executor is not None
        for pid in list(executor._processes):  # type: ignore[attr-defined]
            os.kill(pid, signal.SIGKILL)
        # the batch in hand is parsed in place; the broken pool is dropped
        _same(p.json(JSON_BODIES[1]), parse_json_batch(JSON_BODIES[1], TABLE))
        assert p.breaks == 1
        assert not p.running
        # the next body starts a new pool, which works
        _same(p.json(JSON_BODIES[0]), parse_json_batch(JSON_BODIES[0], TABLE))
        assert p.running
        assert p._pool is not executor
    finally:
        p.close()


def test_after_close_bodies_are_parsed_in_place() -> None:
    p = ParsePool(TABLE, workers=1, min_bytes=0)
    p.json(JSON_BODIES[0])
    p.close()
    assert not p.running
    _same(p.json(JSON_BODIES[1]), parse_json_batch(JSON_BODIES[1], TABLE))
    assert not p.running


def test_errors_cross_processes_whole() -> None:
    """Every error keeps its class and attributes through pickle, whatever its __init__ takes
    (the default would rebuild it from the message alone)."""
    err = IngestError("samples[3].value: expected a number", "bad_value", 422, subject="s3")
    back = pickle.loads(pickle.dumps(err))
    assert (type(back), str(back), back.reason, back.status, back.subject) == (
        IngestError,
        str(err),
        "bad_value",
        422,
        "s3",
    )
    dup = pickle.loads(pickle.dumps(DuplicateBatch("gw", 7)))
    assert isinstance(dup, DuplicateBatch)
    assert (dup.source, dup.sequence, dup.status, str(dup)) == (
        "gw",
        7,
        200,
        str(DuplicateBatch("gw", 7)),
    )


def test_workers_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="workers"):
        ParsePool(TABLE, workers=-1)
