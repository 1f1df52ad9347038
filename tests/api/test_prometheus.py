"""`POST /api/v1/prom/write`: Prometheus remote-write 1.0, first through the test client, then
from Debian's real Prometheus, which also scrapes Nexus's own `/metrics`."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cramjam
import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from remote_write_bodies import write_body
from safety_nexus.api.app import create_app
from safety_nexus.core.errors import ConfigError
from safety_nexus.pipeline.builder import RuntimeSettings, build_runtime
from safety_nexus.pipeline.runtime import Runtime
from servers import ServerProcess, free_port, serve_api

T0_MS = 1_780_000_000_000
WRITE = "/api/v1/prom/write"
HEADERS = {"content-type": "application/x-protobuf", "content-encoding": "snappy"}
PUMP1 = 'pump_bar{job="plant",pump="1"}'
SOURCE = "{id: prom, kind: prometheus, map: {'%s': pump-1.pressure, fan_rpm: fan-1.speed}}"


def _site(tmp_path: Path, demo_city: Path, *sources: str) -> Path:
    site = tmp_path / "site.yaml"
    text = demo_city.read_text(encoding="utf-8").rstrip("\n")
    site.write_text(text + "".join(f"\n  - {s}" for s in sources) + "\n", encoding="utf-8")
    return site


def _pump(n: str) -> dict[str, str]:
    return {"__name__": "pump_bar", "job": "plant", "pump": n}


def _metric(client: TestClient, line: str) -> float:
    """The value of one sample line of `/metrics` (0 when absent)."""
    for row in client.get("/metrics").text.splitlines():
        if row.startswith(line + " "):
            return float(row.rpartition(" ")[2])
    return 0.0


@pytest.fixture
def prom(tmp_path: Path, demo_city: Path) -> Iterator[tuple[TestClient, Runtime]]:
    site = _site(tmp_path, demo_city, SOURCE % PUMP1)
    runtime = build_runtime(RuntimeSettings(site=site, data_dir=tmp_path, source="http"))
    runtime.start()
    with TestClient(create_app(runtime)) as client:
        yield client, runtime
    runtime.stop()


def test_write_is_204_and_mapped_samples_arrive(prom: tuple[TestClient, Runtime]) -> None:
    client, runtime = prom
    body = write_body(
        [
            (_pump("1"), [(4.8 + 0.1 * i, T0_MS + 1000 * i) for i in range(5)]),
            ({"__name__": "fan_rpm"}, [(1450.0, T0_MS), (math.nan, T0_MS + 1000)]),
            ({"__name__": "go_goroutines", "job": "plant"}, [(12.0, T0_MS)]),
        ]
    )
    r = client.post(WRITE, params={"source": "prom"}, content=body, headers=HEADERS)
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert runtime.wait_idle()
    q = {"since": T0_MS / 1000 - 1, "until": T0_MS / 1000 + 100}
    history = client.get("/api/v1/signals/pump-1.pressure/history", params=q).json()
    assert history["times"] == [T0_MS / 1000 + i for i in range(5)]
    assert history["values"] == pytest.approx([4.8, 4.9, 5.0, 5.1, 5.2], rel=1e-6)
    fan = client.get("/api/v1/signals/fan-1.speed/history", params=q).json()
    assert fan["values"] == [1450.0]  # the NaN is a gap
    assert _metric(client, 'nexus_ingest_accepted_samples_total{source="prom"}') == 6
    # the unmapped go_goroutines is counted, not reported
    assert _metric(client, 'nexus_ingest_phantom_total{source="prom"}') == 1
    assert client.get("/api/v1/findings", params={"kind": "phantom"}).json() == []


def test_unmapped_series_of_a_mapped_metric_is_a_phantom_finding(
    prom: tuple[TestClient, Runtime],
) -> None:
    client, runtime = prom
    body = write_body(
        [(_pump("2"), [(5.0, T0_MS)]), ({"__name__": "fan_rpm"}, [(math.inf, T0_MS)])]
    )
    for _ in range(2):  # reported once (the runtime rate-limits per name), counted twice
        r = client.post(WRITE, params={"source": "prom"}, content=body, headers=HEADERS)
        assert r.status_code == 204, r.text
    assert runtime.wait_idle()
    found = client.get("/api/v1/findings", params={"kind": "phantom"}).json()
    assert [f["signal"] for f in found] == ['prom/pump_bar{job="plant",pump="2"}']
    assert "not in source 'prom''s map" in found[0]["context"]
    assert _metric(client, 'nexus_ingest_phantom_total{source="prom"}') == 2
    assert _metric(client, 'nexus_ingest_rejected_total{reason="non_finite"}') == 2


@pytest.mark.parametrize(
    ("headers", "params", "content", "status", "reason", "fragment"),
    [
        (HEADERS, {}, b"", 400, "unknown_source", "needs ?source=<id>"),
        (HEADERS, {"source": "nope"}, b"", 400, "unknown_source", "unknown source 'nope'"),
        (HEADERS, {"source": "field-gateway"}, b"", 400, "unknown_source", "is a http source"),
        (
            {**HEADERS, "content-type": "application/json"},
            {"source": "prom"},
            b"",
            415,
            "content_type",
            "send application/x-protobuf",
        ),
        (
            {
                **HEADERS,
                "content-type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            },
            {"source": "prom"},
            b"",
            415,
            "content_type",
            "only remote-write 1.0",
        ),
        (
            {"content-type": "application/x-protobuf"},
            {"source": "prom"},
            b"",
            415,
            "content_encoding",
            "send snappy",
        ),
        (HEADERS, {"source": "prom"}, b"", 400, "bad_encoding", "body is empty"),
        (HEADERS, {"source": "prom"}, b"\xff" * 9, 400, "bad_encoding", "not snappy"),
        (
            HEADERS,
            {"source": "prom"},
            bytes(cramjam.snappy.compress_raw(b"\xff" * 9)),
            400,
            "bad_payload",
            "not a remote-write 1.0 WriteRequest",
        ),
    ],
)
def test_refusals_are_named_and_counted(
    prom: tuple[TestClient, Runtime],
    headers: dict[str, str],
    params: dict[str, str],
    content: bytes,
    status: int,
    reason: str,
    fragment: str,
) -> None:
    client, _ = prom
    r = client.post(WRITE, params=params, content=content, headers=headers)
    assert r.status_code == status
    assert fragment in r.json()["error"]
    assert r.json()["reason"] == reason
    assert _metric(client, f'nexus_ingest_rejected_total{{reason="{reason}"}}') == 1


def test_the_v1_proto_parameter_is_accepted(prom: tuple[TestClient, Runtime]) -> None:
    client, _ = prom
    headers = {**HEADERS, "content-type": 'application/x-protobuf; proto="prometheus.WriteRequest"'}
    body = write_body([(_pump("1"), [(5.0, T0_MS)])])
    r = client.post(WRITE, params={"source": "prom"}, content=body, headers=headers)
    assert r.status_code == 204, r.text


def test_a_full_pipeline_is_503_with_retry_after(tmp_path: Path, demo_city: Path) -> None:
    site = _site(tmp_path, demo_city, SOURCE % PUMP1)
    settings = RuntimeSettings(
        site=site, data_dir=tmp_path, source="http", queue_size=1, reorder_tolerance=0
    )
    runtime = build_runtime(settings)  # not started: nothing drains the queue
    try:
        client = TestClient(create_app(runtime))
        first = write_body([(_pump("1"), [(5.0, T0_MS)])])
        r = client.post(WRITE, params={"source": "prom"}, content=first, headers=HEADERS)
        assert r.status_code == 204, r.text
        second = write_body([(_pump("1"), [(5.1, T0_MS + 1000)])])
        r = client.post(WRITE, params={"source": "prom"}, content=second, headers=HEADERS)
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        assert r.json()["reason"] == "busy"
        assert _metric(client, 'nexus_ingest_rejected_total{reason="busy"}') == 1  # once
    finally:
        runtime.stop()


def test_a_bad_series_name_in_the_map_fails_the_app(tmp_path: Path, demo_city: Path) -> None:
    site = _site(tmp_path, demo_city, SOURCE % "pump_bar{job=plant}")
    runtime = build_runtime(RuntimeSettings(site=site, data_dir=tmp_path, source="http"))
    try:
        with pytest.raises(ConfigError) as caught:
            create_app(runtime)
        assert "'pump_bar{job=plant}' is not a series" in str(caught.value)
    finally:
        runtime.stop()


# -- with the real Prometheus ----------------------------------------------------------------

PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 800ms
  evaluation_interval: 1s
scrape_configs:
  - job_name: plant
    static_configs: [{{targets: ["127.0.0.1:{exporter}"]}}]
  - job_name: nexus
    static_configs: [{{targets: ["127.0.0.1:{nexus}"]}}]
remote_write:
  - url: "http://127.0.0.1:{nexus}/api/v1/prom/write?source=prom"
    remote_timeout: 5s
    queue_config: {{batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 500ms}}
    metadata_config: {{send: true, send_interval: 2s}}
"""


@pytest.fixture
def exporter() -> Iterator[tuple[int, Gauge]]:
    """A tiny exporter: one gauge, two label sets (pump 1 is mapped, pump 2 is not)."""
    registry = CollectorRegistry()
    gauge = Gauge("pump_bar", "Pump pressure", ["pump"], registry=registry)
    gauge.labels("1").set(4.0)
    gauge.labels("2").set(5.0)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield port, gauge
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def served(
    tmp_path: Path, demo_city: Path, exporter: tuple[int, Gauge]
) -> Iterator[tuple[str, Runtime]]:
    """Nexus behind uvicorn on a free port, mapping the exporter's pump 1."""
    series = f'pump_bar{{instance="127.0.0.1:{exporter[0]}",job="plant",pump="1"}}'
    site = _site(tmp_path, demo_city, SOURCE % series)
    runtime = build_runtime(
        RuntimeSettings(site=site, data_dir=tmp_path / "nexus", source="http", idle_tick=1.0)
    )
    runtime.start()
    with serve_api(runtime) as url:
        yield url, runtime


def _query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5)
    assert r.status_code == 200, r.text
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    return result


@pytest.mark.slow
@pytest.mark.server
def test_real_prometheus_writes_to_nexus_and_scrapes_it(
    tmp_path: Path, exporter: tuple[int, Gauge], served: tuple[str, Runtime]
) -> None:
    exporter_port, gauge = exporter
    nexus, runtime = served
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        PROMETHEUS_CONFIG.format(exporter=exporter_port, nexus=nexus.rpartition(":")[2]),
        encoding="utf-8",
    )
    argv = [
        "/usr/bin/prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=info",
    ]
    server = ServerProcess(argv, port, tmp_path / "prometheus.log")
    prometheus = f"http://127.0.0.1:{port}"
    written: set[float] = {4.0}
    try:
        deadline = time.monotonic() + 60
        history: dict[str, list[float]] = {"times": [], "values": []}
        up: list[dict[str, Any]] = []
        step = 0
        # Once samples flow, the gauge shows NaN for 1.5 s (at least one scrape), then numbers
        # again: the loop ends when a sample from after the NaN has arrived.
        nan_steps = 0
        resumed = math.inf  # wall time the gauge showed a number again
        while time.monotonic() < deadline:
            step += 1
            value = 4.0 + 0.1 * step
            if nan_steps < 2 and len(history["values"]) >= 2:
                value, nan_steps = math.nan, nan_steps + 1  # a gap: skipped, not refused
            elif nan_steps == 2 and resumed == math.inf:
                resumed = time.time()
            gauge.labels("1").set(value)
            if not math.isnan(value):
                written.add(round(value, 6))
            time.sleep(0.75)
            history = httpx.get(
                f"{nexus}/api/v1/signals/pump-1.pressure/history",
                params={"since": time.time() - 600, "until": time.time() + 60},
                timeout=5,
            ).json()
            up = _query(prometheus, 'up{job="nexus"}')
            after = bool(history["times"]) and max(history["times"]) > resumed
            if after and len(history["values"]) >= 5 and up and up[0]["value"][1] == "1":
                break
        assert len(history["values"]) >= 5, server.output()[-3000:]
        # every sample is one the exporter showed, at a scrape time, in order
        assert {round(v, 5) for v in history["values"]} <= {round(v, 5) for v in written}
        assert history["times"] == sorted(history["times"])
        # Prometheus stored (and so sent) the NaN; Nexus has a gap there and samples after it
        stored = _query(prometheus, 'pump_bar{job="plant",pump="1"}[2m]')[0]["values"]
        nan_times = [t for t, v in stored if v == "NaN"]
        assert nan_times, stored
        assert max(history["times"]) > max(nan_times)
        assert not set(nan_times) & set(history["times"])
        assert all(abs(t - time.time()) < 120 for t in history["times"])
        assert up, "Prometheus has not scraped Nexus"
        assert up[0]["value"][1] == "1", up
        accepted = _query(prometheus, 'nexus_ingest_accepted_samples_total{job="nexus"}')
        assert accepted, "Prometheus has no nexus_* metric from its scrape of Nexus"
        assert accepted[0]["metric"]["source"] == "prom"
        # pump 2 is a series of a mapped metric that the map leaves out: a phantom finding
        found = httpx.get(f"{nexus}/api/v1/findings", params={"kind": "phantom"}, timeout=5)
        signals = [f["signal"] for f in found.json()]
        pump2 = f'prom/pump_bar{{instance="127.0.0.1:{exporter_port}",job="plant",pump="2"}}'
        assert signals == [pump2]
        # Prometheus's own series and its scrape of Nexus are counted, never refused
        metrics = httpx.get(f"{nexus}/metrics", timeout=5).text
        assert "nexus_ingest_rejected_total{" not in metrics, metrics
        unmapped = runtime.metrics.registry.get_sample_value(
            "nexus_ingest_phantom_total", {"source": "prom"}
        )
        assert unmapped is not None
        assert unmapped > 10
        assert not _remote_trouble(server), _remote_trouble(server)
    finally:
        server.stop()


def _remote_trouble(server: ServerProcess) -> list[str]:
    """Prometheus's warnings and errors about remote-write (where a refused batch shows)."""
    return [
        line
        for line in server.output().splitlines()
        if "component=remote" in line and ("level=error" in line or "level=warn" in line)
    ]
