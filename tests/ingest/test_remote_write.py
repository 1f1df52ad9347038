"""The remote-write decoder on hand-built requests: names, mapping, gaps, refusals."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import cramjam
import numpy as np
import pytest

from remote_write_bodies import write_body, write_request
from safety_nexus.core.errors import ConfigError, IngestError
from safety_nexus.detect.testing import make_table
from safety_nexus.ingest import remote_write as rw
from safety_nexus.ingest.remote_write import (
    SeriesMap,
    canonical_series,
    decode_write_request,
    series_name,
)
from safety_nexus.site.load import load_file
from safety_nexus.site.table import signal_table

IDS = ("pump-1.pressure", "pump-2.pressure", "fan-1.speed")
TABLE = make_table(len(IDS), ids=IDS)
T0_MS = 1_780_000_000_000
STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]  # Prometheus's marker

PUMP1 = 'pump_bar{instance="plant:9100",job="plant",pump="1"}'
PUMP2 = 'pump_bar{instance="plant:9100",job="plant",pump="2"}'
FAN = "fan_rpm"


def _map(names: dict[str, str]) -> SeriesMap:
    columns = {canonical_series(k): TABLE.index[v] for k, v in names.items()}
    return SeriesMap("prom", columns, frozenset(n.partition("{")[0] for n in columns))


MAP = _map({PUMP1: "pump-1.pressure", FAN: "fan-1.speed"})


def _pump(n: str, **extra: str) -> dict[str, str]:
    # in Prometheus's order: sorted by name, so __name__ is not first here
    return {"instance": "plant:9100", "__name__": "pump_bar", "job": "plant", "pump": n, **extra}


# -- wire format -----------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _label(name: str, value: str) -> bytes:
    return _field(1, name.encode()) + _field(2, value.encode())


def _sample(value: float, stamp: int) -> bytes:
    return b"\x09" + struct.pack("<d", value) + b"\x10" + _varint(stamp)


def test_hand_encoded_wire_bytes_decode() -> None:
    """Field numbers and types as Prometheus's types.proto has them, written byte by byte."""
    series = (
        _field(1, _label("__name__", "fan_rpm"))
        + _field(2, _sample(1500.0, T0_MS))
        + _field(2, _sample(-2.5, T0_MS + 1500))
        + _field(3, b"\x08\x01")  # exemplars (not declared): skipped
    )
    metadata = _field(3, b"\x08\x01\x12\x07fan_rpm")  # WriteRequest.metadata: skipped
    raw = _field(1, series) + metadata
    decoded = decode_write_request(bytes(cramjam.snappy.compress_raw(raw)), MAP)
    batch = decoded.batch
    assert batch.source == "prom"
    assert batch.columns.tolist() == [2, 2]
    assert batch.values.tolist() == [1500.0, -2.5]
    assert batch.times.tolist() == [T0_MS / 1000, (T0_MS + 1500) / 1000]
    assert (decoded.series, decoded.unmapped, decoded.gaps, decoded.non_finite) == (1, 0, 0, 0)


def test_negative_timestamps_are_twos_complement_varints() -> None:
    raw = _field(1, _field(1, _label("__name__", "fan_rpm")) + _field(2, _sample(1.0, -1500)))
    decoded = decode_write_request(bytes(cramjam.snappy.compress_raw(raw)), MAP)
    assert decoded.batch.times.tolist() == [-1.5]


# -- mapping ---------------------------------------------------------------------------------


def test_mapped_series_become_samples_the_rest_is_counted() -> None:
    body = write_body(
        [
            (_pump("1"), [(4.8, T0_MS), (4.9, T0_MS + 1000)]),
            (_pump("2"), [(5.0, T0_MS)]),  # a mapped metric, another label set: a near miss
            ({"__name__": "go_goroutines", "job": "plant"}, [(12.0, T0_MS)]),  # noise
            ({"__name__": "fan_rpm"}, [(900.0, T0_MS + 500)]),
            ({"__name__": "fan_rpm", "job": "x"}, []),  # a near miss without samples
        ]
    )
    decoded = decode_write_request(body, MAP)
    batch = decoded.batch
    assert len(batch) == 3
    assert batch.columns.tolist() == [0, 0, 2]
    assert batch.values.tolist() == [4.8, 4.9, 900.0]
    assert batch.times.tolist() == [T0_MS / 1000, T0_MS / 1000 + 1, T0_MS / 1000 + 0.5]
    assert batch.columns.dtype == np.int64
    assert batch.times.dtype == batch.values.dtype == np.float64
    assert decoded.series == 5
    assert decoded.unmapped == 3
    assert decoded.near_misses == (PUMP2, 'fan_rpm{job="x"}')


def test_nan_and_staleness_markers_are_gaps_inf_is_skipped_and_counted() -> None:
    assert math.isnan(STALE)
    body = write_body(
        [
            (
                _pump("1"),
                [(1.0, T0_MS), (STALE, T0_MS + 1), (math.nan, T0_MS + 2), (2.0, T0_MS + 3)],
            ),
            (
                {"__name__": "fan_rpm"},
                [(math.inf, T0_MS), (-math.inf, T0_MS + 1), (3.0, T0_MS + 2)],
            ),
            ({"__name__": "go_gc", "x": "y"}, [(math.inf, T0_MS)]),  # unmapped: not looked at
        ]
    )
    decoded = decode_write_request(body, MAP)
    assert decoded.batch.values.tolist() == [1.0, 2.0, 3.0]
    assert decoded.batch.columns.tolist() == [0, 0, 2]
    assert decoded.batch.times.tolist() == [
        T0_MS / 1000,
        (T0_MS + 3) / 1000,
        (T0_MS + 2) / 1000,
    ]
    assert (decoded.gaps, decoded.non_finite) == (2, 2)


def test_an_empty_request_is_an_empty_batch() -> None:
    decoded = decode_write_request(bytes(cramjam.snappy.compress_raw(b"")), MAP)
    assert len(decoded.batch) == 0
    assert decoded.series == decoded.unmapped == 0


def test_every_label_is_part_of_the_name_and_empty_values_are_absent() -> None:
    # job/instance matter: the same metric from another instance is another series
    body = write_body(
        [
            ({**_pump("1"), "instance": "other:9100"}, [(1.0, T0_MS)]),
            ({**_pump("1"), "zone": ""}, [(2.0, T0_MS)]),  # empty value: as if absent
        ]
    )
    decoded = decode_write_request(body, MAP)
    assert decoded.batch.values.tolist() == [2.0]
    assert decoded.near_misses == ('pump_bar{instance="other:9100",job="plant",pump="1"}',)


def test_near_misses_reported_per_request_are_bounded() -> None:
    series = [(_pump(str(i)), [(1.0, T0_MS)]) for i in range(10, 10 + rw.MAX_REPORTED + 5)]
    decoded = decode_write_request(write_body(series), MAP)
    assert decoded.unmapped == rw.MAX_REPORTED + 5
    assert len(decoded.near_misses) == rw.MAX_REPORTED


# -- names -----------------------------------------------------------------------------------


def test_series_name_sorts_and_escapes() -> None:
    labels = [("b", 'say "hi"\\\n'), ("__name__", "m"), ("a", "1"), ("c", "")]
    assert series_name("m", labels) == 'm{a="1",b="say \\"hi\\"\\\\\\n"}'
    assert series_name("m", [("__name__", "m")]) == "m"
    assert series_name("", [("job", "x")]) == '{job="x"}'


@pytest.mark.parametrize(
    "written",
    [
        'pump_bar{instance="plant:9100",job="plant",pump="1"}',
        'pump_bar{pump="1", job="plant", instance="plant:9100"}',  # as Prometheus's UI shows
        ' pump_bar { job = "plant" ,pump="1",instance="plant:9100", } ',
        '{__name__="pump_bar",job="plant",pump="1",instance="plant:9100",zone=""}',
    ],
)
def test_map_keys_are_read_in_any_spelling(written: str) -> None:
    assert canonical_series(written) == PUMP1


def test_map_key_escapes_round_trip() -> None:
    written = 'm{b="say \\"hi\\"\\\\\\n",a="1"}'
    assert canonical_series(written) == series_name("m", [("a", "1"), ("b", 'say "hi"\\\n')])
    assert canonical_series("up") == "up"
    assert canonical_series("up{}") == "up"
    assert canonical_series('{job="x"}') == '{job="x"}'


@pytest.mark.parametrize(
    ("written", "fragment"),
    [
        ("", "names no metric and no label"),
        ("{}", "names no metric and no label"),
        ("up{job=x}", 'expected label="value"'),
        ('up{job="x"', "expected ',' or a closing '}'"),
        ('up{job="x" instance="y"}', "expected ',' or a closing '}'"),
        ('up{job="x"} extra', "expected ',' or a closing '}'"),
        ("up job", "unexpected 'j' after the metric name"),
        ("9up", "unexpected '9'"),
        ('up{job="a",job="b"}', "label 'job' appears twice"),
        ('up{__name__="up"}', "metric name is given twice"),
        ('up{job="\\t"}', "is not an escape"),
        ('up{1job="x"}', 'expected label="value"'),
    ],
)
def test_bad_map_keys_say_what_is_wrong(written: str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        canonical_series(written)
    assert fragment in str(caught.value)


def _site_with(tmp_path: Path, source: str) -> Path:
    demo = Path(__file__).resolve().parents[2] / "sites" / "demo-city.yaml"
    site = tmp_path / "site.yaml"
    site.write_text(demo.read_text(encoding="utf-8").rstrip("\n") + f"\n  - {source}\n")
    return site


def test_series_map_of_a_site_source(tmp_path: Path) -> None:
    source = (
        "{id: prom, kind: prometheus, map: {"
        "'pump_bar{pump=\"1\", job=\"plant\"}': pump-1.pressure, 'fan_rpm': fan-1.speed}}"
    )
    site = load_file(_site_with(tmp_path, source))
    table = signal_table(site)
    smap = SeriesMap.of(site, site.sources[-1], table)
    assert smap.source == "prom"
    assert dict(smap.columns) == {
        'pump_bar{job="plant",pump="1"}': table.index["pump-1.pressure"],
        "fan_rpm": table.index["fan-1.speed"],
    }
    assert smap.metrics == {"pump_bar", "fan_rpm"}


def test_series_map_names_every_bad_key(tmp_path: Path) -> None:
    source = (
        "{id: prom, kind: prometheus, map: {"
        "'up{job=x}': pump-1.pressure, 'a{j=\"1\",k=\"2\"}': pump-1.pressure,"
        ' \'a{k="2",j="1"}\': fan-1.speed}}'
    )
    site = load_file(_site_with(tmp_path, source))
    with pytest.raises(ConfigError) as caught:
        SeriesMap.of(site, site.sources[-1], signal_table(site))
    messages = [issue.message for issue in caught.value.issues]
    assert len(messages) == 2
    assert "'up{job=x}' is not a series" in messages[0]
    assert "is mapped twice" in messages[1]
    assert all(
        issue.path == f"sources[{len(site.sources) - 1}].map" for issue in caught.value.issues
    )
    assert "source 'prom'" in str(caught.value)


# -- refusals --------------------------------------------------------------------------------


def _refused(body: bytes, reason: str, fragment: str, status: int = 400) -> None:
    with pytest.raises(IngestError) as caught:
        decode_write_request(body, MAP)
    assert caught.value.reason == reason
    assert caught.value.status == status
    assert fragment in str(caught.value)


def test_emptywrite_body() -> None:
    _refused(b"", "bad_encoding", "body is empty")


def test_not_snappy() -> None:
    _refused(b"\xff\xff\xff\xff\xff\xff", "bad_encoding", "not snappy block-compressed")
    _refused(b"hello world", "bad_encoding", "not snappy block-compressed")


def test_snappy_framed_stream_is_not_the_block_format() -> None:
    framed = bytes(cramjam.snappy.compress(write_request([]).SerializeToString() + b"x" * 40))
    _refused(framed, "bad_encoding", "not snappy block-compressed")


def test_decompression_bomb_is_refused_before_decompressing() -> None:
    declared = _varint(rw.MAX_DECODED + 1)  # the block format starts with the length
    _refused(declared + b"\x00" * 8, "oversized", "would decompress to", 413)


def test_not_a_writewrite_request() -> None:
    _refused(bytes(cramjam.snappy.compress_raw(b"\xff" * 10)), "bad_payload", "WriteRequest")


def test_bad_utf8_in_a_label() -> None:
    raw = _field(1, _field(1, _field(1, b"__name__") + _field(2, b"fan\xff")))
    body = bytes(cramjam.snappy.compress_raw(raw))
    _refused(body, "bad_payload", "timeseries[0].labels[0] is not a Label: String field had bad")
    _refused(body, "bad_payload", "UTF-8")  # not remembered as anything


def test_a_label_set_is_resolved_once_then_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    smap = _map({PUMP1: "pump-1.pressure", FAN: "fan-1.speed"})
    body = write_body(
        [
            (_pump("1"), [(1.0, T0_MS)]),
            (_pump("2"), [(2.0, T0_MS)]),
            ({"__name__": "go_gc"}, [(3.0, T0_MS)]),
        ]
    )
    first = decode_write_request(body, smap)
    assert len(smap._seen) == 3
    again = decode_write_request(body, smap)
    assert again.batch.values.tolist() == first.batch.values.tolist() == [1.0]
    assert again.near_misses == first.near_misses == (PUMP2,)
    assert again.unmapped == first.unmapped == 2
    monkeypatch.setattr(rw, "MAX_REMEMBERED", 2)  # a full memory starts again
    fresh = _map({PUMP1: "pump-1.pressure"})
    assert decode_write_request(body, fresh).batch.values.tolist() == [1.0]
    assert len(fresh._seen) == 1


def test_a_series_with_a_label_twice_matches_no_key() -> None:
    raw = _field(
        1,
        _field(1, _label("__name__", "fan_rpm"))
        + _field(1, _label("job", "a"))
        + _field(1, _label("job", "b"))
        + _field(2, _sample(1.0, T0_MS)),
    )
    decoded = decode_write_request(bytes(cramjam.snappy.compress_raw(raw)), MAP)
    assert len(decoded.batch) == 0
    assert decoded.near_misses == ('fan_rpm{job="a",job="b"}',)


def test_too_many_mapped_samples() -> None:
    body = write_body([({"__name__": "fan_rpm"}, [(1.0, T0_MS + i) for i in range(11)])])
    with pytest.raises(IngestError) as caught:
        decode_write_request(body, MAP, max_samples=10)
    assert caught.value.status == 413
    assert "more than 10 samples" in str(caught.value)
    # unmapped samples do not count
    body = write_body([({"__name__": "other"}, [(1.0, T0_MS + i) for i in range(11)])])
    assert len(decode_write_request(body, MAP, max_samples=10).batch) == 0
