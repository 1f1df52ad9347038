"""Exactly-once delivery, phantoms and data quality at the runtime's intake (in process; the
kill -9 test is tests/pipeline/test_crash.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from safety_nexus.core.errors import IngestError
from safety_nexus.core.types import FindingKind
from safety_nexus.ingest.json_batch import ParsedBatch
from safety_nexus.pipeline.builder import RuntimeSettings, build_runtime
from safety_nexus.pipeline.ledger import DuplicateBatch
from safety_nexus.pipeline.runtime import Runtime

SITE = """
version: 1
site: {name: ledger-test}
subsystems: [{id: water, name: Water}]
assets:
  - id: pump
    type: pump
    subsystem: water
    criticality: high
    signals:
      - {name: pressure, unit: bar, normal: [3, 6], physical: [0, 25], period: 1s}
      - {name: flow, unit: m3/h, normal: [10, 50], period: 1s}
sources:
  - {id: gw, kind: http}
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(SITE, encoding="utf-8")
    return path


def _runtime(site: Path, data: Path, **kw: object) -> Runtime:
    settings = RuntimeSettings.model_validate(
        {"site": site, "data_dir": data, "source": "http", "reorder_tolerance": 0.0, **kw}
    )
    return build_runtime(settings)


@pytest.fixture
def runtime(site: Path, tmp_path: Path) -> Iterator[Runtime]:
    # no on-delay: a phantom's alarm is checked right after the intake has processed it
    rt = _runtime(site, tmp_path / "data", alarms={"on_delay": 0.0})
    rt.start()
    yield rt
    rt.stop()


def _body(t0: float, n: int = 5, value: float = 4.0, source: str = "gw") -> bytes:
    samples = [{"signal": "pump.pressure", "time": t0 + i, "value": value} for i in range(n)]
    return json.dumps({"source": source, "samples": samples}).encode()


def _send(rt: Runtime, body: bytes, seq: int) -> int:
    return rt.ingest_json(body, source="gw", sequence=seq, digest=hashlib.sha256(body).hexdigest())


def test_a_resend_of_the_last_batch_is_a_duplicate_and_anything_older_a_replay(
    runtime: Runtime,
) -> None:
    t0 = runtime.clock.now() - 100
    first = _body(t0)
    assert _send(runtime, first, 1) == 5
    with pytest.raises(DuplicateBatch):
        _send(runtime, first, 1)
    with pytest.raises(IngestError) as info:
        _send(runtime, _body(t0 + 10), 1)  # same number, other content
    assert (info.value.status, info.value.reason) == (409, "replayed")
    assert _send(runtime, _body(t0 + 20), 2) == 5
    with pytest.raises(IngestError) as info:
        _send(runtime, first, 1)  # no longer the last one
    assert info.value.status == 409
    runtime.wait_idle()
    times, _ = runtime.history.read("pump.pressure", -np.inf, np.inf)
    assert times.size == 10  # the duplicate was not stored again


def test_the_body_must_name_the_sender_of_the_request(runtime: Runtime) -> None:
    with pytest.raises(IngestError) as info:
        runtime.ingest_json(_body(runtime.clock.now() - 10, source="other"), source="gw")
    assert info.value.reason == "source_mismatch"


def test_unknown_sources_and_signals_are_phantoms_never_silent(runtime: Runtime) -> None:
    t = runtime.clock.now() - 10
    with pytest.raises(IngestError) as info:
        runtime.ingest_json(_body(t, source="rogue-device"))
    assert (info.value.status, info.value.reason) == (401, "unknown_source")
    bad = json.dumps({"samples": [{"signal": "pump.secret", "time": t, "value": 1.0}]})
    with pytest.raises(IngestError) as info:
        runtime.ingest_json(bad.encode(), source="gw")
    assert info.value.reason == "unknown_signal"
    for _ in range(3):  # a chatty device: counted every time, reported once
        runtime.phantom("rogue-device", "(source)", "again")
    runtime.wait_idle()
    found = runtime.store.findings(limit=50)
    phantoms = [f for f in found if f.finding.kind is FindingKind.PHANTOM]
    seen = {f.finding.signal for f in phantoms}
    assert "rogue-device/(source)" in seen
    assert any("pump.secret" in s for s in seen), seen
    assert len(phantoms) == 2
    count = runtime.metrics.registry.get_sample_value(
        "nexus_ingest_phantom_total", {"source": "rogue-device"}
    )
    assert count == 4
    assert any(a.kind is FindingKind.PHANTOM for a in runtime.alarms.alarms())
    assert runtime.store.events(kind="ingest.phantom")


def test_values_a_sensor_cannot_report_are_kept_from_the_detectors(runtime: Runtime) -> None:
    t = runtime.clock.now() - 10
    batch = ParsedBatch(
        "gw",
        np.array([0, 0, 0, 1]),
        np.array([t, t + 1, t + 2, t + 2]),
        np.array([4.0, -3.0, 40.0, 25.0]),  # pressure below 0 and above 25 bar is impossible
    )
    assert runtime.ingest_parsed(batch) == 2
    runtime.wait_idle()
    _, values = runtime.history.read("pump.pressure", -np.inf, np.inf)
    assert values.tolist() == [4.0]
    found = [f.finding for f in runtime.store.findings(limit=10)]
    ranges = [f for f in found if f.kind is FindingKind.OUT_OF_RANGE]
    assert len(ranges) == 1  # one finding for the broken sensor, not one per sample
    assert ranges[0].signal == "pump.pressure"
    assert "[0, 25]" in ranges[0].context
    assert runtime.metrics.rejected_count("out_of_range") == 2


def test_a_sender_whose_clock_runs_ahead_is_refused_and_named(runtime: Runtime) -> None:
    ahead = runtime.clock.now() + 60
    with pytest.raises(IngestError) as info:
        runtime.ingest_json(_body(ahead), source="gw")
    assert (info.value.status, info.value.reason) == (400, "clock_skew")
    assert "ahead of the receiver's clock" in str(info.value)
    runtime.wait_idle()
    skew = [
        f.finding
        for f in runtime.store.findings(limit=10)
        if f.finding.kind is FindingKind.CLOCK_SKEW
    ]
    assert [f.asset for f in skew] == ["gw"]
    assert skew[0].observed > 50


def test_a_crash_before_the_history_flush_is_recovered_exactly_once(
    site: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = _runtime(site, data)
    first.start()
    t0 = first.clock.now() - 1000
    for seq in range(1, 21):
        _send(first, _body(t0 + 10 * seq), seq)
    first.wait_idle()
    # A crash: nothing is stopped, flushed or sealed (the worker idles on, unreachable).
    second = _runtime(site, data)
    second.start()
    try:
        with pytest.raises(DuplicateBatch):  # the last batch's answer was "lost"
            _send(second, _body(t0 + 200), 20)
        _send(second, _body(t0 + 210), 21)
        second.wait_idle()
        times, _ = second.history.read("pump.pressure", -np.inf, np.inf, max_points=10**6)
        assert times.size == 21 * 5
        assert np.unique(times).size == times.size
        (event,) = second.store.events(kind="ingest.recovered")
        assert event.data["samples"] == 100
    finally:
        second.stop()
