"""Property tests of the remote-write decoder: 30,000 generated bodies in all (6,000 arbitrary
byte strings, 8,000 snappy-compressed arbitrary bytes, 6,000 valid requests with random labels,
values and timestamps, 10,000 truncated or mutated valid bodies).

Valid requests must come back with exactly the samples of their mapped series (NaN skipped as a
gap, ±Inf skipped and counted); anything else may be refused, but only with an `IngestError`
whose status is 400 or 413 and whose message names the problem."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from random import Random
from typing import Any

import cramjam
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safety_nexus.core.errors import IngestError
from safety_nexus.ingest import remote_write as rw
from safety_nexus.ingest.remote_write import (
    Decoded,
    SeriesMap,
    canonical_series,
    decode_write_request,
    series_name,
)

pytestmark = pytest.mark.slow

STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
N_COLUMNS = 4
# What each refusal's message must say, by reason.
_NAMES_THE_PROBLEM = {
    "bad_encoding": ("snappy", "body is empty"),
    "bad_payload": ("is not a remote-write 1.0 WriteRequest", "is not a Label"),
    "oversized": ("decompress to", "samples of mapped series"),
}


def _check_refusal(err: IngestError) -> None:
    assert err.status in (400, 413), err.status
    message = str(err)
    assert message
    assert message == message.strip()
    assert err.reason in _NAMES_THE_PROBLEM, (err.reason, message)
    assert any(word in message for word in _NAMES_THE_PROBLEM[err.reason]), message


def _check_decoded(decoded: Decoded, smap: SeriesMap) -> None:
    batch = decoded.batch
    assert batch.columns.dtype == np.int64
    assert batch.times.dtype == batch.values.dtype == np.float64
    assert batch.columns.shape == batch.times.shape == batch.values.shape
    assert np.isfinite(batch.values).all()
    assert set(batch.columns.tolist()) <= set(smap.columns.values())
    assert 0 <= decoded.unmapped <= decoded.series
    assert len(decoded.near_misses) <= min(decoded.unmapped, rw.MAX_REPORTED)


def _decode(body: bytes, smap: SeriesMap) -> None:
    """Decode; only an IngestError may escape, and it must say what is wrong."""
    try:
        decoded = decode_write_request(body, smap)
    except IngestError as err:
        _check_refusal(err)
    else:
        _check_decoded(decoded, smap)


# Arbitrary data maps its metric "m" and an empty-named series: whatever parses may hit them.
NOISE_MAP = SeriesMap("prom", {"m": 0, "": 1, 'm{a="b"}': 2}, frozenset({"m", ""}))


@settings(max_examples=6000, deadline=None, derandomize=True, database=None)
@given(st.binary(max_size=256))
def test_arbitrary_bytes(body: bytes) -> None:
    _decode(body, NOISE_MAP)


@settings(max_examples=8000, deadline=None, derandomize=True, database=None)
@given(st.binary(max_size=512))
def test_snappy_of_arbitrary_bytes(raw: bytes) -> None:
    _decode(bytes(cramjam.snappy.compress_raw(raw)), NOISE_MAP)


# -- valid requests --------------------------------------------------------------------------
# Cases are built by a `Random` seeded by Hypothesis: drawing every label and sample through
# Hypothesis's strategies made the 16,000 structured cases take minutes; this takes seconds, and
# a failure still names its seed.

_IDENT_FIRST = "abcxyzABZ_"
_IDENT_REST = _IDENT_FIRST + "0189"
_VALUE_CHARS = 'ab0 ,="{}\\\n\té☃'  # what the text format escapes, and then some
_SPECIALS = (math.nan, STALE, math.inf, -math.inf, 0.0, -0.0, 5e-324, 1.7976931348623157e308)


def _ident(rng: Random) -> str:
    return rng.choice(_IDENT_FIRST) + "".join(
        rng.choice(_IDENT_REST) for _ in range(rng.randrange(6))
    )


def _name(rng: Random) -> str:
    """Mostly identifiers; remote-write itself carries any UTF-8, so sometimes anything."""
    if rng.random() < 0.8:
        return _ident(rng)
    return "".join(
        chr(rng.choice([rng.randrange(32, 127), rng.randrange(0xA0, 0xD800)]))
        for _ in range(rng.randrange(5))
    )


def _value(rng: Random) -> float:
    roll = rng.random()
    if roll < 0.5:
        return rng.uniform(-1e6, 1e6)
    if roll < 0.7:
        return rng.choice(_SPECIALS)
    # any 64-bit pattern: subnormals, huge values, NaNs with payloads, infinities
    return float(struct.unpack("<d", rng.randbytes(8))[0])


def _stamp(rng: Random) -> int:
    if rng.random() < 0.5:
        return rng.randrange(1_700_000_000_000, 1_800_000_000_000)
    return rng.randrange(-(2**63), 2**63)


@dataclass(frozen=True)
class Case:
    request: Any  # a WriteRequest
    smap: SeriesMap
    columns: list[int]
    times: list[float]
    values: list[float]
    gaps: int
    non_finite: int
    unmapped: int
    names: list[tuple[str, list[tuple[str, str]]]]  # (metric, labels) of every series


def _case(rng: Random, max_series: int = 6, max_samples: int = 5) -> Case:
    metrics = list({_name(rng) for _ in range(rng.randint(1, 3))})
    request = rw.WriteRequest()
    names: list[tuple[str, list[tuple[str, str]]]] = []
    rendered: list[str] = []
    for _ in range(rng.randint(0, max_series)):
        metric = rng.choice(metrics)
        labels = {
            _name(rng): "".join(rng.choices(_VALUE_CHARS, k=rng.randrange(7)))
            for _ in range(rng.randrange(4))
        }
        labels.pop("__name__", None)
        pairs = list(labels.items())
        if metric:  # a series without __name__ is allowed too
            pairs.insert(rng.randint(0, len(pairs)), ("__name__", metric))
        ts = request.timeseries.add()
        for k, v in pairs:
            ts.labels.add(name=k, value=v)
        for _ in range(rng.randint(0, max_samples)):
            ts.samples.add(value=_value(rng), timestamp=_stamp(rng))
        names.append((metric, pairs))
        rendered.append(series_name(metric, pairs))
    # Map some of the series that were written (and one that was not) to columns.
    chosen = rng.sample(range(len(rendered)), rng.randint(0, len(rendered)))
    columns = {rendered[i]: rng.randrange(N_COLUMNS) for i in chosen}
    never = f"never_sent_{_ident(rng)}"
    columns[never] = 0
    # (names, not split from the rendered series: a metric name may hold a '{' here)
    smap = SeriesMap("prom", columns, frozenset([never, *(names[i][0] for i in chosen)]))
    exp_cols: list[int] = []
    exp_times: list[float] = []
    exp_values: list[float] = []
    gaps = non_finite = unmapped = 0
    for ts, name in zip(request.timeseries, rendered, strict=True):
        col = columns.get(name)
        if col is None:
            unmapped += 1
            continue
        for sample in ts.samples:
            if math.isnan(sample.value):
                gaps += 1
            elif math.isinf(sample.value):
                non_finite += 1
            else:
                exp_cols.append(col)
                exp_times.append(float(sample.timestamp) / 1000.0)
                exp_values.append(sample.value)
    return Case(request, smap, exp_cols, exp_times, exp_values, gaps, non_finite, unmapped, names)


_SEED = st.integers(0, 2**64 - 1)


@settings(max_examples=6000, deadline=None, derandomize=True, database=None)
@given(_SEED)
def test_valid_requests_round_trip(seed: int) -> None:
    case = _case(Random(seed))
    body = bytes(cramjam.snappy.compress_raw(case.request.SerializeToString()))
    decoded = decode_write_request(body, case.smap)
    batch = decoded.batch
    assert batch.columns.tolist() == case.columns
    assert batch.times.tolist() == case.times
    assert [struct.pack("<d", v) for v in batch.values.tolist()] == [
        struct.pack("<d", v)
        for v in case.values  # bit for bit: -0.0 stays -0.0
    ]
    assert (decoded.gaps, decoded.non_finite) == (case.gaps, case.non_finite)
    assert decoded.unmapped == case.unmapped
    assert decoded.series == len(case.names)
    _check_decoded(decoded, case.smap)
    # A series name as a site file would hold it reads back as itself (identifier names only:
    # the map syntax has no quoting for others, as in Prometheus 2).
    for metric, pairs in case.names:
        name = series_name(metric, pairs)
        if name != "" and all(_is_ident(k) for k, _ in pairs) and (not metric or _is_ident(metric)):
            assert canonical_series(name) == name


def _is_ident(text: str) -> bool:
    return text.isascii() and text.isidentifier()


# -- mangled requests ------------------------------------------------------------------------


def _mangle(data: bytes, rng: Random) -> bytes:
    if not data:
        return rng.randbytes(rng.randint(1, 8))
    at = rng.randrange(len(data))
    length = rng.randint(1, 8)
    op = rng.choice(("truncate", "flip", "insert", "delete", "splice"))
    if op == "truncate":
        return data[:at]
    if op == "flip":
        return data[:at] + bytes([data[at] ^ rng.randint(1, 255)]) + data[at + 1 :]
    if op == "insert":
        return data[:at] + rng.randbytes(length) + data[at:]
    if op == "delete":
        return data[:at] + data[at + length :]
    return data[:at] + data[rng.randrange(len(data)) :]  # repeat or skip a stretch


@settings(max_examples=10000, deadline=None, derandomize=True, database=None)
@given(_SEED)
def test_mangled_bodies(seed: int) -> None:
    rng = Random(seed)
    case = _case(rng, max_series=4, max_samples=3)
    raw = case.request.SerializeToString()
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.5:  # mangle the protobuf, then compress it
            raw = _mangle(raw, rng)
            body = bytes(cramjam.snappy.compress_raw(raw))
        else:  # mangle the compressed body
            body = _mangle(bytes(cramjam.snappy.compress_raw(raw)), rng)
    _decode(body, case.smap)
