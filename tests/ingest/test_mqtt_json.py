"""JSON payloads of MQTT messages (`ingest.mqtt_json`): readings and batches, and what is
refused; then property tests, 11,000 generated payloads in all: 3,000 valid readings and
batches that must come back with the times and values they were written with, 5,000 mutated
copies of valid payloads and 3,000 arbitrary byte strings. Nothing may escape but an
`IngestError`, and every one names the field and the problem."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safety_nexus.core.errors import IngestError
from safety_nexus.ingest.mqtt_json import Samples, parse_message

REASONS = {"bad_json", "bad_shape", "bad_time", "bad_value", "non_finite", "oversized"}


def test_readings() -> None:
    t, v = parse_message(b"4.5")  # type: ignore[misc]
    assert math.isnan(t)
    assert v == 4.5
    assert parse_message(b'{"time": 1780272000.5, "value": 3}') == (1780272000.5, 3.0)
    assert parse_message(b'{"time": "2026-06-01T00:00:00Z", "value": -1}') == (1780272000.0, -1.0)
    t, v = parse_message(b'{"value": 7}')  # type: ignore[misc]
    assert (math.isnan(t), v) == (True, 7.0)


def test_batches() -> None:
    body = {
        "source": "gw-1",
        "samples": [
            {"signal": "pump-1.pressure", "time": 1780272000, "value": 4.8},
            {"signal": "pump-1.flow", "time": "2026-06-01T00:00:01+00:00", "value": 31},
        ],
    }
    assert parse_message(orjson.dumps(body)) == Samples(
        ["pump-1.pressure", "pump-1.flow"], [1780272000.0, 1780272001.0], [4.8, 31.0]
    )


@pytest.mark.parametrize(
    ("payload", "reason", "fragment"),
    [
        (b"", "bad_json", "payload is not valid JSON"),
        (b"{", "bad_json", "payload is not valid JSON"),
        (b"NaN", "bad_json", "payload is not valid JSON"),
        (b"true", "bad_shape", "got a boolean"),
        (b'"4.5"', "bad_shape", "got a str"),
        (b"[1, 2]", "bad_shape", "got a list"),
        (b'{"time": 1}', "bad_shape", "a reading needs a 'value'"),
        (b'{"value": 1, "unit": "bar"}', "bad_shape", "reading: unknown field 'unit'"),
        (b'{"value": true}', "bad_value", "value: expected a number, got a boolean"),
        (b'{"value": null}', "bad_value", "value: expected a number, got a NoneType"),
        (b'{"value": 1, "time": null}', "bad_time", "time: expected epoch seconds"),
        (b'{"value": 1, "time": "noon"}', "bad_time", "'noon' is not an ISO-8601 timestamp"),
        (b'{"value": 1, "time": "2026-06-01T00:00:00"}', "bad_time", "needs a time zone"),
        (b'{"samples": 3}', "bad_shape", "samples: expected a list"),
        (b'{"samples": [], "extra": 1}', "bad_shape", "batch: unknown field 'extra'"),
        (b'{"samples": [3]}', "bad_shape", "samples[0]: expected an object"),
        (b'{"samples": [{"signal": "a", "time": 1}]}', "bad_shape", "field 'value' required"),
        (
            b'{"samples": [{"signal": "a", "time": 1, "value": 1, "q": 1}]}',
            "bad_shape",
            "samples[0]: unknown field 'q'",
        ),
        (
            b'{"samples": [{"signal": 5, "time": 1, "value": 1}]}',
            "bad_shape",
            "samples[0].signal: expected a signal id",
        ),
        (
            b'{"samples": [{"signal": "a", "time": 1, "value": "x"}]}',
            "bad_value",
            "samples[0].value: expected a number",
        ),
        (b"1" + b"0" * 400, "bad_json", "payload is not valid JSON"),  # beyond 64 bits
        (b'{"value": 1e999}', "bad_json", "payload is not valid JSON"),
    ],
)
def test_refusals_name_the_field_and_the_problem(
    payload: bytes, reason: str, fragment: str
) -> None:
    with pytest.raises(IngestError) as caught:
        parse_message(payload)
    assert caught.value.reason == reason
    assert fragment in str(caught.value)


def test_oversized_batches_are_refused() -> None:
    body = orjson.dumps({"samples": [{"signal": "a", "time": 1, "value": 1}] * 3})
    with pytest.raises(IngestError, match="batch of 3 samples exceeds the limit of 2") as caught:
        parse_message(body, max_samples=2)
    assert caught.value.reason == "oversized"


# -- properties --------------------------------------------------------------------------------


def _named(err: IngestError) -> None:
    text = str(err)
    assert text
    assert err.reason in REASONS, err.reason
    assert any(w in text for w in ("payload", "value", "time", "samples", "batch", "reading")), text


_VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**63 - 1),
)
_EPOCH = st.floats(0, 4e9, allow_nan=False)
_WHEN = st.datetimes(  # hypothesis takes naive bounds and attaches the zone itself
    min_value=datetime(1971, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
_TIMES = st.one_of(
    _EPOCH.map(lambda t: (t, t)),
    st.integers(0, 4_000_000_000).map(lambda t: (t, float(t))),
    _WHEN.map(lambda d: (d.isoformat(), d.timestamp())),
)
_SIGNAL = st.text(min_size=1, max_size=20)


@st.composite
def _payloads(draw: st.DrawFn) -> tuple[bytes, object]:
    """A valid payload and what it must parse to."""
    shape = draw(st.sampled_from(["bare", "value", "reading", "batch"]))
    if shape == "bare":
        v = draw(_VALUES)
        return orjson.dumps(v), ("nan", float(v))
    if shape == "value":
        v = draw(_VALUES)
        return orjson.dumps({"value": v}), ("nan", float(v))
    if shape == "reading":
        v = draw(_VALUES)
        raw, t = draw(_TIMES)
        return orjson.dumps({"time": raw, "value": v}), (t, float(v))
    samples, expected = [], Samples([], [], [])
    for _ in range(draw(st.integers(0, 6))):
        sid, v = draw(_SIGNAL), draw(_VALUES)
        raw, t = draw(_TIMES)
        samples.append({"signal": sid, "time": raw, "value": v})
        expected.signals.append(sid)
        expected.times.append(t)
        expected.values.append(float(v))
    return orjson.dumps({"samples": samples}), expected


@pytest.mark.slow
@settings(max_examples=3_000, deadline=None, derandomize=True)
@given(_payloads())
def test_valid_payloads_round_trip(case: tuple[bytes, object]) -> None:
    payload, expected = case
    got = parse_message(payload)
    if isinstance(expected, Samples):
        assert got == expected
    else:
        assert isinstance(got, tuple)
        t, v = got
        want_t, want_v = expected  # type: ignore[misc]
        assert math.isnan(t) if want_t == "nan" else t == want_t
        assert v == want_v


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(_payloads())[0])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = ord(draw(st.sampled_from(list('{}[]",:0-e.tn '))))
        elif op == "insert":
            data[at:at] = draw(st.sampled_from([b'"', b",", b"1e999", b"null", b"{}", b"\xff"]))
        elif op == "delete" and data:
            del data[at : at + draw(st.integers(1, 4))]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


def _check(payload: bytes) -> None:
    try:
        got = parse_message(payload)
    except IngestError as err:
        _named(err)
        return
    if isinstance(got, Samples):
        assert len(got.signals) == len(got.times) == len(got.values)
        assert all(math.isfinite(x) for x in got.times + got.values)
    else:
        t, v = got
        assert math.isfinite(v)
        assert math.isnan(t) or math.isfinite(t)


@pytest.mark.slow
@settings(max_examples=5_000, deadline=None, derandomize=True)
@given(_mutated())
def test_mutated_payloads_parse_or_are_refused_by_name(payload: bytes) -> None:
    _check(payload)


@pytest.mark.slow
@settings(max_examples=3_000, deadline=None, derandomize=True)
@given(st.binary(max_size=120))
def test_arbitrary_bytes_never_crash_the_parser(payload: bytes) -> None:
    _check(payload)
