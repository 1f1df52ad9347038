"""The columnar JSON form: `signals`, `values` and `times` (or one `time`) lists."""

from __future__ import annotations

import json

import pytest

from safety_nexus.core.errors import IngestError
from safety_nexus.detect.testing import make_table
from safety_nexus.ingest.json_batch import parse_json_batch

TABLE = make_table(3, ids=["a.x", "b.y", "c.z"])


def _body(**doc: object) -> bytes:
    return json.dumps(doc).encode()


def test_columns_give_the_same_batch_as_samples() -> None:
    columns = parse_json_batch(
        _body(
            source="gw",
            signals=["b.y", "a.x"],
            times=[10.5, "1970-01-01T00:00:11Z"],
            values=[2, 1.5],
        ),
        TABLE,
    )
    samples = parse_json_batch(
        _body(
            source="gw",
            samples=[
                {"signal": "b.y", "time": 10.5, "value": 2},
                {"signal": "a.x", "time": "1970-01-01T00:00:11Z", "value": 1.5},
            ],
        ),
        TABLE,
    )
    for batch in (columns, samples):
        assert batch.source == "gw"
        assert batch.columns.tolist() == [1, 0]
        assert batch.times.tolist() == [10.5, 11.0]
        assert batch.values.tolist() == [2.0, 1.5]


def test_one_time_for_a_snapshot() -> None:
    batch = parse_json_batch(_body(signals=["a.x", "b.y", "c.z"], time=7, values=[1, 2, 3]), TABLE)
    assert batch.source == "http"
    assert batch.times.tolist() == [7.0, 7.0, 7.0]
    assert batch.columns.tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("doc", "reason", "fragment"),
    [
        ({"signals": "a.x", "time": 1, "values": [1]}, "bad_shape", "signals: expected a list"),
        ({"signals": ["a.x"], "time": 1}, "bad_shape", "values: expected a list of 1 numbers"),
        ({"signals": ["a.x"], "time": 1, "values": [1, 2]}, "bad_shape", "one per signal"),
        ({"signals": ["a.x"], "values": [1]}, "bad_shape", "either 'times'"),
        ({"signals": ["a.x"], "time": 1, "times": [1], "values": [1]}, "bad_shape", "either"),
        ({"signals": ["a.x"], "times": [1, 2], "values": [1]}, "bad_shape", "1 timestamps"),
        ({"signals": ["a.x", 3], "time": 1, "values": [1, 2]}, "bad_shape", "signals[1]: expected"),
        ({"signals": ["a.x", "q.q"], "time": 1, "values": [1, 2]}, "unknown_signal", "'q.q'"),
        ({"signals": ["a.x"], "times": ["x"], "values": [1]}, "bad_time", "times[0]: 'x' is not"),
        ({"signals": ["a.x"], "time": True, "values": [1]}, "bad_time", "time: expected"),
        ({"signals": ["a.x", "b.y"], "time": 1, "values": [1, "2"]}, "bad_value", "values[1]"),
        (
            {"samples": [], "signals": ["a.x"], "time": 1, "values": [1]},
            "bad_shape",
            "signals: not allowed with 'samples'",
        ),
    ],
)
def test_rejections_name_the_list_and_the_entry(
    doc: dict[str, object], reason: str, fragment: str
) -> None:
    with pytest.raises(IngestError) as info:
        parse_json_batch(_body(**doc), TABLE)
    assert info.value.reason == reason
    assert fragment in str(info.value)
    assert info.value.status == 400


def test_non_finite_values_and_the_limit() -> None:
    with pytest.raises(IngestError) as info:
        parse_json_batch(b'{"signals": ["a.x", "b.y"], "time": 1, "values": [1, NaN]}', TABLE)
    assert info.value.reason == "non_finite"
    assert "values[1]" in str(info.value)
    with pytest.raises(IngestError) as info:
        parse_json_batch(
            _body(signals=["a.x"] * 11, time=1, values=[0] * 11), TABLE, max_samples=10
        )
    assert info.value.status == 413
    assert "exceeds the limit of 10" in str(info.value)


def test_the_first_bad_signal_is_reported_before_times_and_values() -> None:
    with pytest.raises(IngestError) as info:
        parse_json_batch(_body(signals=["a.x", "zz"], times=["bad", 1], values=["bad", 1]), TABLE)
    assert info.value.reason == "unknown_signal"
    assert info.value.subject == "zz"
