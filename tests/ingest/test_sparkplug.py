"""The Sparkplug B decoder: topics, BIRTH and alias-only DATA, every datatype's reading, what is
skipped and what is refused (each refusal naming the message and the problem); then property
tests, 21,000 generated cases in all: 4,000 valid BIRTH + DATA pairs that must decode to the
values they were built from, 10,000 mutated copies of valid payloads, 5,000 arbitrary byte
strings and 2,000 arbitrary topics. Nothing may escape but an `IngestError`, and every one
names the problem."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from random import Random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safety_nexus.core.errors import IngestError
from safety_nexus.ingest.sparkplug import (
    PAYLOAD,
    DataType,
    SparkplugDecoder,
    Topic,
    is_control,
    parse_topic,
)

D = DataType
REASONS = {"bad_topic", "bad_payload", "unknown_alias", "bad_value", "non_finite", "oversized"}
MS = 1_780_272_000_000


def payload(metrics: list[dict[str, Any]], *, timestamp: int | None = MS, seq: int = 0) -> bytes:
    p = PAYLOAD(seq=seq)
    if timestamp is not None:
        p.timestamp = timestamp
    for m in metrics:
        p.metrics.add(**m)
    return bytes(p.SerializeToString())


def refused(decoder: SparkplugDecoder, topic: str, data: bytes) -> IngestError:
    with pytest.raises(IngestError) as caught:
        decoder.decode(topic, data)
    return caught.value


# -- topics ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("spBv1.0/plant/NBIRTH/edge-1", Topic("plant", "NBIRTH", "edge-1")),
        ("spBv1.0/plant/DDATA/edge-1/pump 2", Topic("plant", "DDATA", "edge-1", "pump 2")),
        ("spBv1.0/STATE/scada-1", Topic("", "STATE", "scada-1")),
    ],
)
def test_topics_parse(topic: str, expected: Topic) -> None:
    assert parse_topic(topic) == expected


@pytest.mark.parametrize(
    ("topic", "fragment"),
    [
        ("spAv1.0/plant/NDATA/edge-1", "is not a Sparkplug B topic"),
        ("spBv1.0/plant/NDATA", "expected spBv1.0/<group>/<type>/<node>[/<device>]"),
        ("spBv1.0/plant/XDATA/edge-1", "unknown Sparkplug message type 'XDATA'"),
        ("spBv1.0/plant/NDATA/edge-1/pump-1", "NDATA is a node message"),
        ("spBv1.0/plant/DDATA/edge-1", "DDATA is a device message (needs a <device>)"),
        ("spBv1.0//NDATA/edge-1", "has an empty level"),
    ],
)
def test_bad_topics_say_why(topic: str, fragment: str) -> None:
    with pytest.raises(IngestError, match="topic") as caught:
        parse_topic(topic)
    assert fragment in str(caught.value)
    assert caught.value.reason == "bad_topic"


def test_edge_names_prefix_external_names() -> None:
    assert parse_topic("spBv1.0/g/NDATA/n").edge == "g/n"
    assert parse_topic("spBv1.0/g/DDATA/n/d").edge == "g/n/d"


# -- births and data ---------------------------------------------------------------------------


def test_birth_then_alias_only_data() -> None:
    dec = SparkplugDecoder()
    birth = dec.decode(
        "spBv1.0/g/DBIRTH/n/d",
        payload(
            [
                {"name": "Pressure", "alias": 1, "datatype": D.DOUBLE, "double_value": 4.5},
                {"name": "Count", "alias": 2, "datatype": D.INT16, "int_value": 7},
            ]
        ),
    )
    assert birth.names == ["g/n/d:Pressure", "g/n/d:Count"]
    assert birth.values == [4.5, 7.0]
    data = dec.decode(
        "spBv1.0/g/DDATA/n/d",
        payload(
            [
                {"alias": 2, "int_value": 0xFFFF_FFFE, "timestamp": MS + 5},  # Int16 -2
                {"alias": 1, "double_value": 4.75},
            ],
            timestamp=MS + 10,
        ),
    )
    assert data.names == ["g/n/d:Count", "g/n/d:Pressure"]
    assert data.values == [-2.0, 4.75]
    assert data.times == [MS + 5, MS + 10]
    assert data.seq == 0
    assert dec.births() == 1


def test_data_by_name_needs_no_birth_and_a_missing_time_is_nan() -> None:
    dec = SparkplugDecoder()
    d = dec.decode(
        "spBv1.0/g/NDATA/n", payload([{"name": "T", "float_value": 1.5}], timestamp=None)
    )
    assert d.names == ["g/n:T"]
    assert d.values == [1.5]
    assert math.isnan(d.times[0])


@pytest.mark.parametrize(
    ("datatype", "field", "raw", "expected"),
    [
        (D.INT8, "int_value", 0xFFFF_FFFF, -1.0),  # sign-extended into 32 bits
        (D.INT8, "int_value", 0xFF, -1.0),  # two's complement of 8 bits
        (D.INT8, "int_value", 127, 127.0),
        (D.INT16, "int_value", 0x8000, -32768.0),
        (D.INT32, "int_value", 0x8000_0000, -2147483648.0),
        (D.INT32, "long_value", 0xFFFF_FFFF_FFFF_FFFF, -1.0),
        (D.INT64, "long_value", 0xFFFF_FFFF_FFFF_FFFE, -2.0),
        (D.INT64, "long_value", 5, 5.0),
        (D.UINT8, "int_value", 255, 255.0),
        (D.UINT32, "long_value", 0xFFFF_FFFF, 4294967295.0),
        (D.UINT64, "long_value", 0xFFFF_FFFF_FFFF_FFFF, 18446744073709551615.0),
        (D.UINT64, "int_value", 7, 7.0),
        (D.BOOLEAN, "boolean_value", True, 1.0),
        (D.BOOLEAN, "boolean_value", False, 0.0),
        (D.FLOAT, "float_value", 0.25, 0.25),
        (D.DOUBLE, "double_value", -1e300, -1e300),
        (D.UNKNOWN, "int_value", 0xFFFF_FFFF, 4294967295.0),  # no datatype: unsigned
    ],
)
def test_values_are_read_under_their_datatype(
    datatype: int, field: str, raw: Any, expected: float
) -> None:
    d = SparkplugDecoder().decode(
        "spBv1.0/g/NBIRTH/n", payload([{"name": "x", "datatype": datatype, field: raw}])
    )
    assert d.values == [expected]


@pytest.mark.parametrize(
    ("metric", "reason", "fragment"),
    [
        ({"datatype": D.INT8, "int_value": 0x1_00}, "bad_value", "256 is out of range for INT8"),
        ({"datatype": D.UINT8, "int_value": 256}, "bad_value", "out of range for UINT8"),
        ({"datatype": D.INT64, "int_value": 5}, "bad_value", "INT64 value in the 32-bit"),
        ({"datatype": D.DOUBLE, "double_value": math.nan}, "non_finite", "not a finite number"),
        ({"datatype": D.FLOAT, "float_value": math.inf}, "non_finite", "not a finite number"),
        ({"datatype": D.DOUBLE}, "bad_value", "has no value and is not null"),
        ({"datatype": 99, "int_value": 1}, "bad_value", "unknown datatype 99"),
    ],
)
def test_bad_values_refuse_the_payload_naming_the_metric(
    metric: dict[str, Any], reason: str, fragment: str
) -> None:
    err = refused(
        SparkplugDecoder(),
        "spBv1.0/g/DBIRTH/n/d",
        payload(
            [
                {"name": "ok", "datatype": D.DOUBLE, "double_value": 1.0},
                {"name": "bad", **metric},
            ]
        ),
    )
    assert err.reason == reason
    assert fragment in str(err)
    assert "DBIRTH from 'g/n/d'" in str(err)
    assert "g/n/d:bad" in str(err) or "INT64" in str(err)


def test_strings_datasets_and_datetimes_are_skipped_and_named() -> None:
    d = SparkplugDecoder().decode(
        "spBv1.0/g/NBIRTH/n",
        payload(
            [
                {"name": "Model", "datatype": D.STRING, "string_value": "X1"},
                {"name": "Rows", "datatype": D.DATASET, "dataset_value": b"\x08\x01"},
                {"name": "Since", "datatype": D.DATETIME, "long_value": MS},
                {"name": "Blob", "datatype": D.BYTES, "bytes_value": b"\x00"},
                {"name": "Gone", "datatype": D.DOUBLE, "is_null": True},
                {"name": "Level", "datatype": D.DOUBLE, "double_value": 2.0},
            ]
        ),
    )
    assert d.ignored == ["g/n:Model", "g/n:Rows", "g/n:Since", "g/n:Blob"]
    assert d.names == ["g/n:Level"]


def test_unknown_aliases_and_nameless_metrics_are_refused() -> None:
    dec = SparkplugDecoder()
    err = refused(dec, "spBv1.0/g/DDATA/n/d", payload([{"alias": 4, "double_value": 1.0}]))
    assert str(err).endswith("metrics[0] alias 4 is unknown (no BIRTH seen)")
    assert err.reason == "unknown_alias"
    dec.decode(
        "spBv1.0/g/DBIRTH/n/d",
        payload([{"name": "a", "alias": 1, "datatype": D.DOUBLE, "double_value": 1.0}]),
    )
    err = refused(dec, "spBv1.0/g/DDATA/n/d", payload([{"alias": 4, "double_value": 1.0}]))
    assert "alias 4 is unknown (not in its BIRTH)" in str(err)
    err = refused(dec, "spBv1.0/g/DDATA/n/d", payload([{"double_value": 1.0}]))
    assert err.reason == "bad_payload"
    assert "neither a name nor an alias" in str(err)


def test_a_birth_names_every_metric_and_gives_each_alias_one_name() -> None:
    dec = SparkplugDecoder()
    err = refused(dec, "spBv1.0/g/NBIRTH/n", payload([{"alias": 1, "double_value": 1.0}]))
    assert "a BIRTH names every metric" in str(err)
    err = refused(
        dec,
        "spBv1.0/g/NBIRTH/n",
        payload(
            [
                {"name": "a", "alias": 1, "datatype": D.DOUBLE, "double_value": 1.0},
                {"name": "b", "alias": 1, "datatype": D.DOUBLE, "double_value": 1.0},
            ]
        ),
    )
    assert "alias 1 is used for both 'a' and 'b'" in str(err)


def test_a_node_birth_forgets_its_devices_births() -> None:
    dec = SparkplugDecoder()
    device = payload([{"name": "a", "alias": 1, "datatype": D.DOUBLE, "double_value": 1.0}])
    dec.decode("spBv1.0/g/DBIRTH/n/d", device)
    dec.decode("spBv1.0/g/DDATA/n/d", payload([{"alias": 1, "double_value": 2.0}]))
    dec.decode("spBv1.0/g/NBIRTH/n", payload([]))
    err = refused(dec, "spBv1.0/g/DDATA/n/d", payload([{"alias": 1, "double_value": 3.0}]))
    assert err.reason == "unknown_alias"


def test_deaths_commands_and_state_carry_no_samples() -> None:
    dec = SparkplugDecoder()
    dec.decode(
        "spBv1.0/g/NBIRTH/n",
        payload([{"name": "a", "alias": 1, "datatype": D.DOUBLE, "double_value": 1.0}]),
    )
    death = dec.decode("spBv1.0/g/NDEATH/n", payload([{"name": "bdSeq", "long_value": 1}]))
    assert (death.topic.kind, death.names, death.values) == ("NDEATH", [], [])
    assert dec.decode("spBv1.0/g/NCMD/n", b"\xff not protobuf").names == []
    assert dec.decode("spBv1.0/STATE/host", b'{"online": true}').names == []
    # the birth outlives the death (an NDEATH can be a late last will): data still decodes
    assert dec.decode("spBv1.0/g/NDATA/n", payload([{"alias": 1, "double_value": 2.0}])).values == [
        2.0
    ]


def test_malformed_and_oversized_payloads() -> None:
    err = refused(SparkplugDecoder(), "spBv1.0/g/NDATA/n", b"\x0a\xff\xff\xff")
    assert err.reason == "bad_payload"
    assert "NDATA from 'g/n': payload is not a Sparkplug B protobuf" in str(err)
    small = SparkplugDecoder(max_metrics=2)
    many = payload([{"name": f"m{i}", "double_value": 1.0} for i in range(3)])
    err = refused(small, "spBv1.0/g/NDATA/n", many)
    assert err.reason == "oversized"
    assert "3 metrics exceed the limit of 2" in str(err)


def test_births_are_bounded_by_node() -> None:
    dec = SparkplugDecoder(max_nodes=2)
    birth = payload([{"name": "a", "alias": 1, "datatype": D.DOUBLE, "double_value": 1.0}])
    for node in ("n1", "n2", "n3"):
        dec.decode(f"spBv1.0/g/NBIRTH/{node}", birth)
    assert dec.births() == 2
    err = refused(dec, "spBv1.0/g/NDATA/n1", payload([{"alias": 1, "double_value": 1.0}]))
    assert err.reason == "unknown_alias"  # the longest-silent node was forgotten


def test_protocol_metrics() -> None:
    assert is_control("g/n:bdSeq")
    assert is_control("g/n:Node Control/Rebirth")
    assert is_control("g/n:d/Device Control/Reboot") is False  # not at the metric's start
    assert is_control("g/n/d:Device Control/Reboot")
    assert not is_control("g/n:Pressure")
    assert not is_control("g/n:bdSeq2")


# -- properties --------------------------------------------------------------------------------


def _named(err: IngestError) -> None:
    """An error's message says what was wrong and where."""
    text = str(err)
    assert text
    assert text == text.strip()
    assert err.reason in REASONS, err.reason
    assert "topic" in text or " from '" in text, text


@dataclass(frozen=True)
class Spec:
    name: str
    datatype: int
    field: str
    raw: Any
    value: float


def _int_spec(datatype: int, bits: int, signed: bool, field: str) -> st.SearchStrategy[Spec]:
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    width = 32 if field == "int_value" else 64

    def build(v: int) -> Spec:
        return Spec("", datatype, field, v & ((1 << width) - 1), float(v))

    return st.integers(lo, hi).map(build)


_BY_TYPE: dict[int, st.SearchStrategy[Spec]] = {
    D.INT8: _int_spec(D.INT8, 8, True, "int_value"),
    D.INT16: _int_spec(D.INT16, 16, True, "int_value"),
    D.INT32: _int_spec(D.INT32, 32, True, "int_value"),
    D.INT64: _int_spec(D.INT64, 64, True, "long_value"),
    D.UINT8: _int_spec(D.UINT8, 8, False, "int_value"),
    D.UINT16: _int_spec(D.UINT16, 16, False, "int_value"),
    D.UINT32: _int_spec(D.UINT32, 32, False, "long_value"),
    D.UINT64: _int_spec(D.UINT64, 64, False, "long_value"),
    D.FLOAT: st.floats(allow_nan=False, allow_infinity=False, width=32).map(
        lambda v: Spec("", D.FLOAT, "float_value", v, v)
    ),
    D.DOUBLE: st.floats(allow_nan=False, allow_infinity=False).map(
        lambda v: Spec("", D.DOUBLE, "double_value", v, v)
    ),
    D.BOOLEAN: st.booleans().map(lambda v: Spec("", D.BOOLEAN, "boolean_value", v, float(v))),
}
_SPECS = st.one_of(*_BY_TYPE.values())
_NAMES = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12)


@st.composite
def _devices(draw: st.DrawFn) -> tuple[list[Spec], list[int], list[tuple[int, Spec, int]]]:
    """A BIRTH's metrics, their aliases, and DATA by alias: (metric index, new value, time)."""
    names = draw(st.lists(_NAMES, min_size=1, max_size=8, unique=True))
    specs = []
    for name in names:
        s = draw(_SPECS)
        specs.append(Spec(name, s.datatype, s.field, s.raw, s.value))
    aliases = draw(
        st.lists(st.integers(0, 2**64 - 1), min_size=len(specs), max_size=len(specs), unique=True)
    )
    updates = []
    for _ in range(draw(st.integers(0, 8))):
        i = draw(st.integers(0, len(specs) - 1))
        value = draw(_BY_TYPE[specs[i].datatype])
        updates.append((i, value, draw(st.integers(0, 2**53))))
    return specs, aliases, updates


@pytest.mark.slow
@settings(max_examples=4_000, deadline=None, derandomize=True)
@given(_devices(), st.sampled_from(["spBv1.0/g/DBIRTH/n/d", "spBv1.0/g/NBIRTH/n"]))
def test_valid_birth_and_data_round_trip(
    device: tuple[list[Spec], list[int], list[tuple[int, Spec, int]]], birth_topic: str
) -> None:
    specs, aliases, updates = device
    edge = parse_topic(birth_topic).edge
    dec = SparkplugDecoder()
    birth = dec.decode(
        birth_topic,
        payload(
            [
                {"name": s.name, "alias": a, "datatype": s.datatype, s.field: s.raw}
                for s, a in zip(specs, aliases, strict=True)
            ]
        ),
    )
    assert birth.names == [f"{edge}:{s.name}" for s in specs]
    assert birth.values == [s.value for s in specs]
    assert birth.times == [float(MS)] * len(specs)
    data_topic = birth_topic.replace("BIRTH", "DATA")
    data = dec.decode(
        data_topic,
        payload(
            [{"alias": aliases[i], v.field: v.raw, "timestamp": t} for i, v, t in updates],
            timestamp=MS + 1,
        ),
    )
    assert data.names == [f"{edge}:{specs[i].name}" for i, _, _ in updates]
    assert data.values == [v.value for _, v, _ in updates]
    assert data.times == [float(t) if t else float(MS + 1) for _, _, t in updates]


def _corpus(n: int, seed: int = 7) -> list[bytes]:
    """Valid payloads of every datatype (the mutation test's starting points), seeded."""
    rng = Random(seed)
    ints = [(dt, bits, signed) for dt, (bits, signed) in _INT_TYPES.items()]
    out = []
    for k in range(n):
        metrics: list[dict[str, Any]] = []
        for a in range(rng.randint(0, 6)):
            m: dict[str, Any] = {"alias": a} if k % 2 else {"name": f"m{a}", "alias": a}
            pick = rng.randrange(len(ints) + 4)
            if pick < len(ints):
                dt, bits, signed = ints[pick]
                v = (
                    rng.randint(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
                    if signed
                    else rng.getrandbits(bits)
                )
                field = "long_value" if bits == 64 or dt == D.UINT32 else "int_value"
                m |= {"datatype": dt, field: v & ((1 << (32 if field == "int_value" else 64)) - 1)}
            elif pick == len(ints):
                m |= {"datatype": D.DOUBLE, "double_value": rng.uniform(-1e6, 1e6)}
            elif pick == len(ints) + 1:
                m |= {"datatype": D.FLOAT, "float_value": rng.uniform(-10, 10)}
            elif pick == len(ints) + 2:
                m |= {"datatype": D.BOOLEAN, "boolean_value": rng.random() < 0.5}
            else:
                m |= {"datatype": D.STRING, "string_value": "text"}
            if rng.random() < 0.3:
                m["timestamp"] = MS + rng.randint(0, 10_000)
            metrics.append(m)
        out.append(payload(metrics, seq=k % 256))
    return out


_INT_TYPES = {
    D.INT8: (8, True),
    D.INT16: (16, True),
    D.INT32: (32, True),
    D.INT64: (64, True),
    D.UINT8: (8, False),
    D.UINT16: (16, False),
    D.UINT32: (32, False),
    D.UINT64: (64, False),
}
CORPUS = _corpus(400)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x08, 0x0A, 0x12, 0x7F, 0x80, 0xFF]))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[at : at + draw(st.integers(1, 4))]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, derandomize=True)
@given(_mutated(), st.sampled_from(["DBIRTH", "DDATA"]))
def test_mutated_payloads_decode_or_are_refused_by_name(data: bytes, kind: str) -> None:
    dec = SparkplugDecoder()
    # a birth first, so that DATA has aliases to resolve
    dec.decode(
        "spBv1.0/g/DBIRTH/n/d",
        payload(
            [{"name": "x", "alias": a, "datatype": D.DOUBLE, "double_value": 1.0} for a in range(8)]
        ),
    )
    try:
        d = dec.decode(f"spBv1.0/g/{kind}/n/d", data)
    except IngestError as err:
        _named(err)
        return
    assert len(d.names) == len(d.times) == len(d.values)
    assert all(math.isfinite(v) for v in d.values)


@pytest.mark.slow
@settings(max_examples=5_000, deadline=None, derandomize=True)
@given(st.binary(max_size=200), st.sampled_from(["NBIRTH", "NDATA", "DBIRTH", "DDATA", "NDEATH"]))
def test_arbitrary_bytes_never_crash_the_decoder(data: bytes, kind: str) -> None:
    topic = f"spBv1.0/g/{kind}/n" + ("/d" if kind[0] == "D" else "")
    try:
        d = SparkplugDecoder().decode(topic, data)
    except IngestError as err:
        _named(err)
        return
    assert all(math.isfinite(v) for v in d.values)


_LEVEL = st.one_of(
    st.text(st.sampled_from(list("abz09-_. +#/")), max_size=3),
    st.sampled_from(["NDATA", "DDATA", "NBIRTH", "DDEATH", "NCMD", "STATE", "spBv1.0", ""]),
)


@pytest.mark.slow
@settings(max_examples=2_000, deadline=None, derandomize=True)
@given(st.lists(_LEVEL, max_size=6), st.booleans())
def test_arbitrary_topics_parse_or_are_refused(levels: list[str], namespaced: bool) -> None:
    topic = "/".join(["spBv1.0", *levels] if namespaced else levels)
    try:
        t = parse_topic(topic)
    except IngestError as err:
        _named(err)
        reason = err.reason
        assert reason == "bad_topic"
        return
    assert t.kind in {
        "NBIRTH",
        "NDATA",
        "NDEATH",
        "NCMD",
        "DBIRTH",
        "DDATA",
        "DDEATH",
        "DCMD",
        "STATE",
    }
    assert t.node
    assert t.device is None or t.device


def test_float_metrics_keep_their_single_precision_value() -> None:
    (v,) = struct.unpack("f", struct.pack("f", 0.1))
    d = SparkplugDecoder().decode(
        "spBv1.0/g/NBIRTH/n", payload([{"name": "x", "datatype": D.FLOAT, "float_value": 0.1}])
    )
    assert d.values == [v]
