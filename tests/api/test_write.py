"""`POST /api/v1/write`: InfluxDB line protocol over HTTP."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from safety_nexus.api.app import create_app
from safety_nexus.pipeline.builder import RuntimeSettings, build_runtime
from safety_nexus.pipeline.runtime import Runtime

T0 = 1_780_000_000
TEXT = {"content-type": "text/plain; charset=utf-8"}


def _lines(signal: str, n: int, value: float = 4.8) -> str:
    measurement, field = signal.split(".")
    return "\n".join(f"{measurement} {field}={value + 0.01 * (i % 3)} {T0 + i}" for i in range(n))


def _history(client: TestClient, signal: str) -> dict[str, list[float]]:
    r = client.get(f"/api/v1/signals/{signal}/history", params={"since": T0 - 1, "until": T0 + 100})
    assert r.status_code == 200
    body: dict[str, list[float]] = r.json()
    return body


def test_write_is_204_and_the_samples_arrive(
    http_client: TestClient, http_runtime: Runtime
) -> None:
    r = http_client.post(
        "/api/v1/write",
        params={"precision": "s"},
        content=_lines("pump-1.pressure", 20),
        headers=TEXT,
    )
    assert r.status_code == 204
    assert r.content == b""
    assert http_runtime.wait_idle()
    history = _history(http_client, "pump-1.pressure")
    assert history["times"] == [float(T0 + i) for i in range(20)]
    assert history["values"][:3] == pytest.approx([4.8, 4.81, 4.82], rel=1e-6)  # float32 store


def test_gzip_and_nanosecond_default(http_client: TestClient, http_runtime: Runtime) -> None:
    body = "\n".join(f"fan-1 speed={1000 + i}i {(T0 + i) * 10**9}" for i in range(5))
    r = http_client.post(
        "/api/v1/write",
        content=gzip.compress(body.encode()),
        headers={**TEXT, "content-encoding": "gzip"},
    )
    assert r.status_code == 204
    assert http_runtime.wait_idle()
    history = _history(http_client, "fan-1.speed")
    assert history["times"] == [float(T0 + i) for i in range(5)]
    assert history["values"] == [1000.0, 1001.0, 1002.0, 1003.0, 1004.0]


@pytest.mark.parametrize(
    ("content", "headers", "params", "status", "reason", "fragment"),
    [
        (b"pump-99 pressure=1 1", TEXT, {}, 400, "unknown_signal", "line 1: unknown signal"),
        (b"pump-1 pressure=1\npump-1 pressure=x", TEXT, {}, 400, "bad_value", "line 2: field"),
        (b"pump-1 pressure=1 1.5", TEXT, {}, 400, "bad_time", "line 1: timestamp"),
        (b"pump-1 pressure=1", TEXT, {"precision": "h"}, 400, "bad_precision", "precision"),
        (b"pump-1 pressure=1", TEXT, {"source": "nope"}, 400, "unknown_source", "'nope'"),
        (
            b"pump-1 pressure=1",
            {"content-type": "application/json"},
            {},
            415,
            "content_type",
            "text/plain",
        ),
        (
            b"\x1f\x8bnot gzip",
            {**TEXT, "content-encoding": "gzip"},
            {},
            400,
            "bad_encoding",
            "gzip",
        ),
        (b"pump-1 pressure=1\n" * 100_001, TEXT, {}, 413, "oversized", "exceeds"),
    ],
)
def test_bad_input_is_rejected_named_and_counted(
    http_client: TestClient,
    content: bytes,
    headers: dict[str, str],
    params: dict[str, str],
    status: int,
    reason: str,
    fragment: str,
) -> None:
    r = http_client.post("/api/v1/write", content=content, headers=headers, params=params)
    assert r.status_code == status
    assert fragment in r.json()["error"]
    metrics = http_client.get("/metrics").text
    assert f'nexus_ingest_rejected_total{{reason="{reason}"}} 1.0' in metrics


@pytest.fixture
def mapped_client(tmp_path: Path, demo_city: Path) -> Iterator[tuple[TestClient, Runtime]]:
    """The demo city with one more http source that maps an external name."""
    site = tmp_path / "site.yaml"
    text = demo_city.read_text(encoding="utf-8").rstrip("\n")
    site.write_text(
        text + '\n  - {id: influx, kind: http, map: {"plant,unit=a psi": pump-2.pressure}}\n',
        encoding="utf-8",
    )
    runtime = build_runtime(RuntimeSettings(site=site, data_dir=tmp_path, source="http"))
    runtime.start()
    with TestClient(create_app(runtime)) as client:
        yield client, runtime
    runtime.stop()


def test_a_source_map_renames_external_names(
    mapped_client: tuple[TestClient, Runtime],
) -> None:
    client, runtime = mapped_client
    body = "\n".join(f"plant,unit=a psi={5 + i} {T0 + i}" for i in range(3))
    r = client.post(
        "/api/v1/write", params={"source": "influx", "precision": "s"}, content=body, headers=TEXT
    )
    assert r.status_code == 204
    assert runtime.wait_idle()
    assert _history(client, "pump-2.pressure")["values"] == [5.0, 6.0, 7.0]
    # Without the source its map does not apply.
    r = client.post("/api/v1/write", params={"precision": "s"}, content=body, headers=TEXT)
    assert r.status_code == 400
    assert "unknown signal 'plant.psi'" in r.json()["error"]
    metrics = client.get("/metrics").text
    assert 'nexus_ingest_accepted_samples_total{source="influx"} 3.0' in metrics
