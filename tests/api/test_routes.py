from __future__ import annotations

import gzip
import json
import time

import pytest
from fastapi.testclient import TestClient

from safety_nexus.api.app import create_app
from safety_nexus.pipeline.runtime import Runtime
from safety_nexus.pipeline.sources import SimulatorSource

T0 = 1_780_000_000.0


def _samples(signal: str, start: float, n: int, value: float = 4.8) -> list[dict[str, object]]:
    return [
        {"signal": signal, "time": start + i, "value": value + 0.01 * (i % 3)} for i in range(n)
    ]


def _post(client: TestClient, samples: object, **headers: str) -> object:
    return client.post(
        "/api/v1/telemetry",
        content=json.dumps({"source": "field-gateway", "samples": samples}),
        headers={"content-type": "application/json", **headers},
    )


def test_site_and_status(http_client: TestClient) -> None:
    r = http_client.get("/api/v1/site")
    assert r.status_code == 200
    site = r.json()
    assert {s["id"] for s in site["subsystems"]} == {"power", "water", "tunnels", "compute"}
    assert len(site["assets"]) == 76
    assert "pump-1.pressure" in next(a for a in site["assets"] if a["id"] == "pump-1")["signals"]
    r = http_client.get("/api/v1/status")
    assert r.status_code == 200
    assert all(s["status"] == "normal" for s in r.json()["subsystems"])


def test_health_and_openapi(http_client: TestClient) -> None:
    r = http_client.get("/api/v1/health")
    assert r.status_code == 200
    assert r.json()["signals"] == 342
    r = http_client.get("/openapi.json")
    assert r.status_code == 200
    assert "/api/v1/alarms/{alarm_id}/acknowledge" in r.json()["paths"]
    assert http_client.get("/docs").status_code == 200


def test_dashboard_is_served(http_client: TestClient) -> None:
    r = http_client.get("/")
    assert r.status_code == 200
    assert "text/html" in r.headers["content-type"]


def test_ingest_then_latest_and_history(http_client: TestClient, http_runtime: Runtime) -> None:
    r = _post(http_client, _samples("pump-1.pressure", T0, 30))
    assert r.status_code == 202
    assert r.json() == {"accepted": 30, "duplicate": False}
    assert http_runtime.wait_idle()
    r = http_client.get("/api/v1/signals/pump-1.pressure")
    assert r.status_code == 200
    body = r.json()
    assert body["latest"]["time"] == T0 + 29
    assert body["unit"] == "bar"
    assert body["normal"] == [4.0, 6.0]
    r = http_client.get(
        "/api/v1/signals/pump-1.pressure/history", params={"since": T0 - 1, "until": T0 + 100}
    )
    assert r.status_code == 200
    assert len(r.json()["times"]) == 30


def test_gzip_body_is_accepted(http_client: TestClient, http_runtime: Runtime) -> None:
    body = gzip.compress(json.dumps({"samples": _samples("fan-1.speed", T0, 5, 1000)}).encode())
    r = http_client.post(
        "/api/v1/telemetry",
        content=body,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert r.status_code == 202
    assert r.json()["accepted"] == 5


@pytest.mark.parametrize(
    ("make", "status", "reason", "fragment"),
    [
        (lambda c: _post(c, _samples("pump-99.pressure", T0, 1)), 400, "unknown_signal", "pump-99"),
        (
            lambda c: c.post(
                "/api/v1/telemetry",
                content=b'{"samples": [{"signal": "pump-1.flow", "time": 1, "value": NaN}]}',
                headers={"content-type": "application/json"},
            ),
            400,
            "non_finite",
            "finite",
        ),
        (
            lambda c: c.post(
                "/api/v1/telemetry",
                content=b"pump-1.flow 1 2",
                headers={"content-type": "text/plain"},
            ),
            415,
            "content_type",
            "text/plain",
        ),
        (lambda c: _post(c, _samples("pump-1.flow", T0, 100_001)), 413, "oversized", "exceeds"),
        (
            lambda c: c.post(
                "/api/v1/telemetry",
                content=b"\x1f\x8bnot gzip",
                headers={"content-type": "application/json", "content-encoding": "gzip"},
            ),
            400,
            "bad_encoding",
            "gzip",
        ),
    ],
)
def test_bad_input_is_rejected_named_and_counted(
    http_client: TestClient, make: object, status: int, reason: str, fragment: str
) -> None:
    assert callable(make)
    r = make(http_client)
    assert r.status_code == status
    assert fragment in r.json()["error"]
    metrics = http_client.get("/metrics").text
    assert f'nexus_ingest_rejected_total{{reason="{reason}"}} 1.0' in metrics


def test_out_of_order_is_409_and_accepted_data_is_kept(
    http_client: TestClient, http_runtime: Runtime
) -> None:
    assert _post(http_client, _samples("main-1.pressure", T0, 10, 4.5)).status_code == 202
    r = _post(http_client, _samples("main-1.pressure", T0 + 5, 3, 4.5))
    assert r.status_code == 409
    assert "out of order" in r.json()["error"]
    assert http_runtime.wait_idle()
    r = http_client.get(
        "/api/v1/signals/main-1.pressure/history", params={"since": T0 - 1, "until": T0 + 100}
    )
    assert len(r.json()["times"]) == 10


def test_unknown_signal_and_alarm_are_404(http_client: TestClient) -> None:
    r = http_client.get("/api/v1/signals/nope.x")
    assert r.status_code == 404
    assert "nope.x" in r.json()["error"]
    r = http_client.post("/api/v1/alarms/nope:spike/acknowledge", json={"user": "a"})
    assert r.status_code == 404


def test_acknowledge_needs_a_user(http_client: TestClient) -> None:
    r = http_client.post("/api/v1/alarms/x:spike/acknowledge", json={"note": "hi"})
    assert r.status_code == 422
    assert "user" in r.json()["error"]


def _drive(runtime: Runtime, source: SimulatorSource, seconds: int) -> None:
    for _ in range(seconds // 10):
        runtime.process_frame(source.name, source.sim.step(10))


def test_fault_raises_alarm_that_can_be_acknowledged(sim_runtime: Runtime) -> None:
    source = sim_runtime.simulator
    assert source is not None
    _drive(sim_runtime, source, 300)
    source.sim.inject("S4")
    _drive(sim_runtime, source, 120)
    client = TestClient(create_app(sim_runtime))
    alarms = client.get("/api/v1/alarms").json()
    assert alarms, "a substation trip must raise alarms"
    assert any(a["subsystem"] == "power" for a in alarms)
    status = {s["id"]: s["status"] for s in client.get("/api/v1/status").json()["subsystems"]}
    assert status["power"] != "normal"
    findings = client.get("/api/v1/findings", params={"limit": 5}).json()
    assert findings
    assert findings[0]["explanation"]
    target = next(a for a in alarms if a["state"] in ("unacknowledged", "returned_unacknowledged"))
    r = client.post(
        f"/api/v1/alarms/{target['id']}/acknowledge", json={"user": "op1", "note": "ok"}
    )
    assert r.status_code == 200
    assert r.json()["acknowledged_by"] == "op1"
    r = client.post(f"/api/v1/alarms/{target['id']}/acknowledge", json={"user": "op1"})
    assert r.status_code in (200, 409)  # 200 only if it had re-fired in between


def test_stream_sends_status_and_alarms(sim_runtime: Runtime) -> None:
    source = sim_runtime.simulator
    assert source is not None
    _drive(sim_runtime, source, 300)
    with (
        TestClient(create_app(sim_runtime)) as client,
        client.websocket_connect("/api/v1/stream") as ws,
    ):
        first = ws.receive_json()
        assert first["type"] == "status"
        source.sim.inject("S4")
        _drive(sim_runtime, source, 60)
        deadline = time.monotonic() + 10
        kinds: set[str] = set()
        while time.monotonic() < deadline and "alarm" not in kinds:
            kinds.add(ws.receive_json()["type"])
        assert "alarm" in kinds


def test_scenarios_listed_and_injectable(sim_runtime: Runtime) -> None:
    client = TestClient(create_app(sim_runtime))
    ids = {s["id"] for s in client.get("/api/v1/scenarios").json()}
    assert {"S1", "S2", "S4", "S5", "S7"} <= ids
    r = client.post("/api/v1/scenarios/S1/inject")
    assert r.status_code == 202
    r = client.post("/api/v1/scenarios/S99/inject")
    assert r.status_code == 404
    assert "S99" in r.json()["error"]


def test_history_needs_a_non_empty_range(http_client: TestClient) -> None:
    r = http_client.get(
        "/api/v1/signals/pump-1.pressure/history", params={"since": 10.0, "until": 5.0}
    )
    assert r.status_code == 400
    assert "empty time range" in r.json()["error"]
