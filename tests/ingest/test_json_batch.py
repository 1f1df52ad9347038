from __future__ import annotations

import json

import numpy as np
import pytest

from safety_nexus.core.errors import IngestError
from safety_nexus.core.types import Criticality, SignalTable
from safety_nexus.ingest.frames import FrameAssembler
from safety_nexus.ingest.json_batch import parse_json_batch


def _table() -> SignalTable:
    n = 2
    return SignalTable(
        ids=("a.x", "b.y"),
        assets=("a", "b"),
        subsystems=("s", "s"),
        units=("", ""),
        period=np.ones(n),
        normal_lo=np.zeros(n),
        normal_hi=np.ones(n),
        limit_lo=np.full(n, -np.inf),
        limit_hi=np.full(n, np.inf),
        criticality=(Criticality.LOW, Criticality.LOW),
    )


def _body(samples: object, **extra: object) -> bytes:
    return json.dumps({"samples": samples, **extra}).encode()


def test_parses_numbers_and_iso_times() -> None:
    batch = parse_json_batch(
        _body(
            [
                {"signal": "b.y", "time": 10.5, "value": 2},
                {"signal": "a.x", "time": "1970-01-01T00:00:11+00:00", "value": 1.5},
            ],
            source="gw",
        ),
        _table(),
    )
    assert batch.source == "gw"
    assert batch.columns.tolist() == [1, 0]
    assert batch.times.tolist() == [10.5, 11.0]
    assert batch.values.tolist() == [2.0, 1.5]


@pytest.mark.parametrize(
    ("body", "reason", "fragment"),
    [
        (b"{not json", "bad_json", "not valid json"),
        (b"[]", "bad_shape", "json object"),
        (_body([], extra=1), "bad_shape", "unknown field 'extra'"),
        (_body({"signal": "a.x"}), "bad_shape", "samples: expected a list"),
        (_body([1]), "bad_shape", "samples[0]: expected an object"),
        (_body([{"signal": "zz.q", "time": 1, "value": 1}]), "unknown_signal", "'zz.q'"),
        (_body([{"signal": "a.x", "value": 1}]), "bad_shape", "samples[0].time: field required"),
        (_body([{"signal": "a.x", "time": 1, "value": "7"}]), "bad_value", "expected a number"),
        (_body([{"signal": "a.x", "time": 1, "value": True}]), "bad_value", "expected a number"),
        (
            b'{"samples": [{"signal": "a.x", "time": 1, "value": NaN}]}',
            "non_finite",
            "not a finite number",
        ),
        (
            b'{"samples": [{"signal": "a.x", "time": 1, "value": Infinity}]}',
            "non_finite",
            "not a finite number",
        ),
        (_body([{"signal": "a.x", "time": "yesterday", "value": 1}]), "bad_time", "iso-8601"),
        (
            _body([{"signal": "a.x", "time": "2026-01-01T00:00:00", "value": 1}]),
            "bad_time",
            "time zone",
        ),
        (_body([{"signal": "a.x", "time": 1, "value": 1, "unit": "m"}]), "bad_shape", "'unit'"),
    ],
)
def test_rejections_name_the_problem(body: bytes, reason: str, fragment: str) -> None:
    with pytest.raises(IngestError) as info:
        parse_json_batch(body, _table())
    assert info.value.reason == reason
    assert fragment in str(info.value).lower()
    assert info.value.status == 400


def test_oversized_batch_is_413() -> None:
    samples = [{"signal": "a.x", "time": i, "value": 0.0} for i in range(11)]
    with pytest.raises(IngestError) as info:
        parse_json_batch(_body(samples), _table(), max_samples=10)
    assert info.value.status == 413
    assert "exceeds the limit of 10" in str(info.value)


def test_assembler_builds_a_dense_frame_and_keeps_the_last_duplicate() -> None:
    asm = FrameAssembler(_table())
    frame = asm.assemble(
        np.array([0, 1, 0, 0]), np.array([2.0, 1.0, 1.0, 2.0]), np.array([5.0, 6.0, 7.0, 8.0])
    )
    assert frame.times.tolist() == [1.0, 2.0]
    assert frame.values[0].tolist() == [7.0, 6.0]
    assert frame.values[1, 0] == 8.0
    assert np.isnan(frame.values[1, 1])


def test_assembler_rejects_time_going_backwards_per_signal_without_side_effects() -> None:
    asm = FrameAssembler(_table())
    asm.assemble(np.array([0]), np.array([10.0]), np.array([1.0]))
    with pytest.raises(IngestError) as info:
        asm.assemble(np.array([1, 0]), np.array([20.0, 10.0]), np.array([1.0, 1.0]))
    assert info.value.reason == "out_of_order"
    assert info.value.status == 409
    assert "'a.x'" in str(info.value)
    # the rejected batch recorded nothing: b.y at t=20 was not accepted, so t=15 is fine
    frame = asm.assemble(np.array([1]), np.array([15.0]), np.array([1.0]))
    assert frame.times.tolist() == [15.0]
    # other signals are independent of a.x's clock
    asm.assemble(np.array([0]), np.array([11.0]), np.array([1.0]))
