"""Property tests of the JSON batch parser: 36,000 generated bodies in all (8,000 arbitrary byte
strings, 6,000 arbitrary JSON documents, 6,000 batch-shaped documents with arbitrary field
values, 4,000 in the columnar form, 8,000 mangled copies of 2,000 valid batches, 4,000 valid
batches, each form at random), and a few hundred requests through the API.

Valid batches must come back with the columns, times and values they were written with;
anything else may be refused, but only with an `IngestError` whose status is 400 or 413 and
whose message says where the problem is (the body, the source, a field, or `samples[i]` and
the field). The fast path must agree with the careful loop: a batch it accepts, the loop
accepts with the same arrays. Through the API, no body, header or query ever earns a 5xx.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from random import Random
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safety_nexus.api.app import create_app
from safety_nexus.core.errors import IngestError
from safety_nexus.detect.testing import make_table
from safety_nexus.ingest.json_batch import _careful, _fast, parse_json_batch
from safety_nexus.pipeline.builder import RuntimeSettings, build_runtime

pytestmark = pytest.mark.slow

IDS = ("pump-1.pressure", "pump-1.flow", "a.b", "x.y-z")
TABLE = make_table(len(IDS), ids=IDS)
REASONS = {"bad_json", "bad_shape", "unknown_signal", "bad_time", "bad_value", "non_finite"}
# Where a message says the problem is: the body, a top-level field, or a sample and its field.
_WHERE = re.compile(
    r"^(body (is not valid JSON|must be)"
    r"|source: |samples: |unknown field '"
    r"|samples\[\d+\](\.(signal|time|value))?: "
    r"|(signals|times|values)\[\d+\]: |(signals|times|time|values): "
    r"|batch of \d+ samples exceeds)"
)


def _check_refusal(err: IngestError) -> None:
    message = str(err)
    assert message
    assert message == message.strip()
    assert _WHERE.match(message), message
    if err.reason == "oversized":
        assert err.status == 413
    else:
        assert err.reason in REASONS, err.reason
        assert err.status == 400


def _parse_or_refuse(body: bytes, max_samples: int = 50) -> None:
    try:
        batch = parse_json_batch(body, TABLE, max_samples=max_samples)
    except IngestError as err:
        _check_refusal(err)
    else:
        n = len(batch)
        assert batch.columns.shape == batch.times.shape == batch.values.shape == (n,)
        assert all(0 <= c < len(IDS) for c in batch.columns.tolist())
        assert np.isfinite(batch.values).all()


# -- arbitrary bytes and documents ------------------------------------------------------------

_JSONISH = st.text(st.sampled_from(list('{}[]":,0123456789.eE-+ \n\\tfalsnuNIy')), max_size=120)


@settings(max_examples=8000, deadline=None, derandomize=True, database=None)
@given(st.binary(max_size=300) | _JSONISH.map(str.encode))
def test_arbitrary_bytes_are_parsed_or_refused(body: bytes) -> None:
    _parse_or_refuse(body)


_LEAF = (
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: beyond the double range too
    | st.floats()  # NaN and ±Infinity become the literals json.dumps writes
    | st.text(max_size=12)
    | st.sampled_from(IDS)
)
_DOC = st.recursive(
    _LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=6000, deadline=None, derandomize=True, database=None)
@given(_DOC)
def test_arbitrary_documents_are_parsed_or_refused(doc: Any) -> None:
    _parse_or_refuse(json.dumps(doc).encode())


_FIELD_VALUE = st.one_of(
    _DOC,
    st.sampled_from(IDS),
    st.floats(),
    st.integers(-(2**70), 2**70),
    st.integers(-(10**400), 10**400),
    st.sampled_from(["2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00", "yesterday", ""]),
)
_KEY = st.sampled_from(["signal", "time", "value", "unit", "Signal", ""])


@st.composite
def _shaped(draw: st.DrawFn) -> list[Any]:
    """Sample lists that are nearly right: usually objects with the usual keys, each value
    usually fine, sometimes anything."""
    samples: list[Any] = []
    for i in range(draw(st.integers(0, 8))):
        if draw(st.integers(0, 15)) == 7:
            samples.append(draw(_DOC))
            continue
        sample: dict[str, Any] = {
            "signal": draw(st.sampled_from(IDS)),
            "time": float(1_780_000_000 + i),
            "value": draw(st.floats(-1e6, 1e6)),
        }
        for _ in range(draw(st.integers(0, 2))):
            key = draw(_KEY)
            if draw(st.booleans()):
                sample[key] = draw(_FIELD_VALUE)
            else:
                sample.pop(key, None)
        samples.append(sample)
    return samples


@settings(max_examples=6000, deadline=None, derandomize=True, database=None)
@given(_shaped(), st.sampled_from([{}, {"source": "gw"}, {"source": ""}, {"source": 3}]))
def test_batch_shaped_documents_and_the_two_paths_agree(
    samples: list[Any], top: dict[str, Any]
) -> None:
    body = json.dumps({**top, "samples": samples}).encode()
    _parse_or_refuse(body)
    fast = _fast(samples, TABLE.index)
    if fast is not None:  # what the fast path takes, the careful loop takes alike
        careful = _careful(samples, TABLE.index)
        for a, b in zip(fast, careful, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)  # NaN times (from the literal) match too


@st.composite
def _shaped_columns(draw: st.DrawFn) -> dict[str, Any]:
    """Columnar documents that are nearly right: lists of the right length, usually."""
    n = draw(st.integers(0, 6))
    anything = draw(st.integers(0, 9)) == 4

    def entries(good: st.SearchStrategy[Any]) -> Any:
        if draw(st.integers(0, 9)) == 4:
            return draw(_DOC)
        size = n if draw(st.integers(0, 9)) != 4 else draw(st.integers(0, 7))
        pick = _FIELD_VALUE if anything else good
        return [draw(pick) for _ in range(size)]

    doc: dict[str, Any] = {
        "signals": entries(st.sampled_from(IDS)),
        "values": entries(st.floats(-1e6, 1e6)),
    }
    when = draw(st.integers(0, 3))
    if when in (0, 2):
        doc["times"] = entries(st.floats(0, 4e9))
    if when in (1, 2):
        doc["time"] = draw(_FIELD_VALUE) if anything else 1_780_000_000.5
    if draw(st.integers(0, 9)) == 4:
        doc["samples"] = []
    return doc


@settings(max_examples=4000, deadline=None, derandomize=True, database=None)
@given(_shaped_columns())
def test_columnar_documents_are_parsed_or_refused(doc: dict[str, Any]) -> None:
    _parse_or_refuse(json.dumps(doc).encode())


# -- valid batches and their mangled copies --------------------------------------------------

_ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
)
_EARLIEST = datetime(1971, 1, 1)  # noqa: DTZ001
_LATEST = datetime(2100, 1, 1)  # noqa: DTZ001
_TIME = st.one_of(
    st.integers(0, 4_000_000_000).map(lambda t: (t, float(t))),
    st.floats(0, 4e9).map(lambda t: (t, t)),
    # hypothesis takes naive bounds and attaches the zones itself
    st.datetimes(_EARLIEST, _LATEST, timezones=_ZONES).map(
        lambda d: (d.isoformat(), d.timestamp())
    ),
)
_VALUE = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: (v, v)),
    st.integers(-(2**63), 2**64).map(lambda v: (v, float(v))),
)


Case = tuple[bytes, list[int], list[float], list[float], str]  # body, what it holds, source


@st.composite
def _valid(draw: st.DrawFn) -> Case:
    source = draw(st.sampled_from(["http", "gw-1", "field-gateway"]))
    columns: list[int] = []
    times: list[float] = []
    values: list[float] = []
    samples = []
    snapshot = draw(st.none() | _TIME)  # one time for every sample, or each its own
    for _ in range(draw(st.integers(0, 12))):
        col = draw(st.integers(0, len(IDS) - 1))
        raw_time, time = snapshot or draw(_TIME)
        raw_value, value = draw(_VALUE)
        samples.append({"signal": IDS[col], "time": raw_time, "value": raw_value})
        columns.append(col)
        times.append(time)
        values.append(value)
    doc: dict[str, Any] = {"samples": samples}
    if draw(st.booleans()):  # the same batch as columns
        raw_times = [s["time"] for s in samples]
        doc = {"signals": [s["signal"] for s in samples], "values": [s["value"] for s in samples]}
        if samples and len(set(map(repr, raw_times))) == 1 and draw(st.booleans()):
            doc["time"] = raw_times[0]
        else:
            doc["times"] = raw_times
    if source != "http" or draw(st.booleans()):
        doc["source"] = source
    body = json.dumps(doc, indent=draw(st.sampled_from([None, 1]))).encode()
    return body, columns, times, values, source


@settings(max_examples=4000, deadline=None, derandomize=True, database=None)
@given(_valid())
def test_valid_batches_round_trip(
    case: tuple[bytes, list[int], list[float], list[float], str],
) -> None:
    body, columns, times, values, source = case
    batch = parse_json_batch(body, TABLE)
    assert batch.source == source
    assert batch.columns.tolist() == columns
    assert batch.times.tolist() == times
    assert batch.values.tolist() == values


_MANGLE = [*'{}[]":,.-+eE0 \n\\', "NaN", "Infinity", "1e999", "true", "null", '"x"', "\x00", "é"]
VARIANTS = 4


@settings(
    max_examples=2000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_valid(), st.randoms(use_true_random=False))
def test_mangled_batches_are_parsed_or_refused(case: Case, rng: Random) -> None:
    text = case[0].decode()
    for _ in range(VARIANTS):
        mangled = text
        for _ in range(rng.randint(1, 4)):  # insert, delete or replace a few characters
            i = rng.randint(0, len(mangled))
            mangled = mangled[:i] + rng.choice(_MANGLE) + mangled[i + rng.randint(0, 3) :]
        _parse_or_refuse(mangled.encode(), max_samples=rng.choice([5, 50]))


def test_the_fallbacks_give_precise_answers() -> None:
    """What orjson refuses but the standard library reads gets the same answers as before."""
    cases = [
        (b'{"samples": [{"signal": "a.b", "time": 1, "value": 1e999}]}', "samples[0].value"),
        (b'{"samples": [{"signal": "a.b", "time": 1, "value": -Infinity}]}', "samples[0].value"),
        (b'{"samples": [{"signal": "a.b", "time": 1, "value": 1' + b"0" * 400 + b"}]}", "value"),
        (b'{"samples": [{"signal": "a.b", "time": 1' + b"0" * 400 + b', "value": 1}]}', "time"),
        (b'{"samples": [{"signal": "\\ud800", "time": 1, "value": 1}]}', "unknown signal"),
        (b"[" * 100_000, "not valid JSON"),
        (b'{"samples": [{"signal": "a.b", "time": 1, "value": 1' + b"0" * 5000 + b"}]}", "JSON"),
    ]
    for body, fragment in cases:
        with pytest.raises(IngestError) as info:
            parse_json_batch(body, TABLE)
        assert fragment in str(info.value), str(info.value)
        _check_refusal(info.value)
    utf16 = json.dumps({"samples": [{"signal": "a.b", "time": 5, "value": 2}]}).encode("utf-16")
    assert parse_json_batch(utf16, TABLE).values.tolist() == [2.0]


def test_snapshot_of_iso_times_converts_each_distinct_time_once() -> None:
    stamp = "2026-06-01T12:00:00.250+02:00"
    samples = [{"signal": sid, "time": stamp, "value": i} for i, sid in enumerate(IDS)]
    batch = parse_json_batch(json.dumps({"samples": samples}).encode(), TABLE)
    expected = datetime.fromisoformat(stamp).timestamp()
    assert batch.times.tolist() == [expected] * len(IDS)
    assert not math.isnan(expected)


# -- through the API ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, demo_city: Path) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("fuzz-api")
    runtime = build_runtime(RuntimeSettings(site=demo_city, data_dir=data_dir, source="http"))
    runtime.start()
    try:
        with TestClient(create_app(runtime)) as test_client:
            yield test_client
    finally:
        runtime.stop()


_API_SIGNALS = ("pump-1.pressure", "fan-1.speed", "main-1.pressure", "nope.x")
_BODY = st.one_of(
    st.binary(max_size=200),
    _DOC.map(lambda d: json.dumps(d).encode()),
    _shaped_columns().map(lambda d: json.dumps(d).encode()),
    st.lists(
        st.fixed_dictionaries(
            {"signal": st.sampled_from(_API_SIGNALS), "time": _FIELD_VALUE, "value": _FIELD_VALUE}
        ),
        max_size=5,
    ).map(lambda s: json.dumps({"samples": s}).encode()),
    st.lists(
        st.tuples(
            st.sampled_from(_API_SIGNALS),
            st.sampled_from(["1", "2.5", "3i", "t", '"s"', "nan", "", "1e999"]),
            st.sampled_from(["", " 1780000000", " 1780000000000000000", " -1", " x"]),
        ),
        max_size=5,
    ).map(
        lambda lines: "\n".join(
            f"{sid.replace('.', ' ', 1)}={value}{stamp}" for sid, value, stamp in lines
        ).encode()
    ),
)
_CTYPE = st.sampled_from(
    [
        "application/json",
        "text/plain",
        "text/plain; charset=utf-8",
        "Application/JSON; charset=utf-8",
        "application/x-www-form-urlencoded",
        "",
        "json",
        ";;;",
        "\xe9",  # sent as the Latin-1 byte
    ]
)
_ENCODING = st.sampled_from([None, "gzip", "GZIP", "br", "identity", "gzip, gzip", ""])
_QUERY = st.fixed_dictionaries(
    {},
    optional={
        "precision": st.sampled_from(["ns", "s", "ms", "h", "", "x" * 100]),
        "source": st.sampled_from(["field-gateway", "sim", "nope", "", "é" * 70]),
    },
)


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.sampled_from(["/api/v1/telemetry", "/api/v1/write"]),
    _BODY,
    _CTYPE,
    _ENCODING,
    st.booleans(),
    _QUERY,
)
def test_the_api_never_answers_5xx(
    client: TestClient,
    path: str,
    body: bytes,
    ctype: str,
    encoding: str | None,
    compress: bool,
    query: dict[str, str],
) -> None:
    headers = {"content-type": ctype.encode("latin-1")}
    if encoding is not None:
        headers["content-encoding"] = encoding.encode("latin-1")
    content = gzip.compress(body) if compress else body
    r = client.post(path, content=content, headers=headers, params=query)
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code >= 400:
        assert r.json()["error"]
