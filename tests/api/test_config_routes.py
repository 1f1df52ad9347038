"""Setpoints and directives over HTTP: listed, changed only through PUT (journalled with the
user), bad changes refused; a readback that moves without a PUT is an unauthorised change."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from safety_nexus.api.app import create_app
from safety_nexus.pipeline.builder import RuntimeSettings, build_runtime
from safety_nexus.pipeline.runtime import Runtime

SITE = Path(__file__).resolve().parents[1] / "site" / "fixtures" / "controls.good.yaml"
TEXT = {"content-type": "text/plain; charset=utf-8"}


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = build_runtime(RuntimeSettings(site=SITE, data_dir=tmp_path, source="http"))
    rt.start()
    yield rt
    rt.stop()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as c:
        yield c


def _report(client: TestClient, runtime: Runtime, start: float, values: list[float]) -> None:
    """The pump's setpoint readback reporting `values`, 10 s apart from `start`."""
    lines = "\n".join(
        f"pump-1 pressure_setpoint={v} {int(start) + 10 * i}" for i, v in enumerate(values)
    )
    r = client.post("/api/v1/write", params={"precision": "s"}, content=lines, headers=TEXT)
    assert r.status_code == 204, r.text
    assert runtime.wait_idle()


def _findings(client: TestClient) -> list[dict[str, object]]:
    r = client.get("/api/v1/findings", params={"kind": "unauthorised_change"})
    assert r.status_code == 200
    found: list[dict[str, object]] = r.json()
    return found


def test_lists_setpoints_and_directives(client: TestClient) -> None:
    r = client.get("/api/v1/setpoints")
    assert r.status_code == 200
    sp, cutout = r.json()
    assert sp["id"] == "pump-1-pressure"
    assert (sp["value"], sp["unit"], sp["range"], sp["tolerance"]) == (5.0, "bar", [4.0, 6.0], 0.05)
    assert (sp["changed_by"], sp["signal"], sp["in_effect"]) == (
        "site",
        "pump-1.pressure_setpoint",
        None,
    )
    assert cutout["signal"] is None
    r = client.get("/api/v1/directives")
    assert r.status_code == 200
    (mode,) = r.json()
    assert (mode["id"], mode["value"], mode["states"]) == (
        "gen-1-mode",
        "auto",
        ["auto", "manual", "off"],
    )
    r = client.get("/api/v1/directives/gen-1-mode")
    assert r.status_code == 200
    assert r.json() == mode


def test_put_changes_and_journals_with_the_user(client: TestClient, runtime: Runtime) -> None:
    r = client.put(
        "/api/v1/setpoints/pump-1-pressure",
        json={"value": 5.3, "user": "alice", "reason": "summer demand"},
    )
    assert r.status_code == 200
    body = r.json()
    assert (body["value"], body["changed_by"], body["reason"]) == (5.3, "alice", "summer demand")
    assert abs(body["changed_at"] - time.time()) < 60
    r = client.get("/api/v1/setpoints/pump-1-pressure/changes")
    assert r.status_code == 200
    latest = r.json()[0]
    assert (latest["kind"], latest["actor"]) == ("config.changed", "alice")
    assert (latest["data"]["from"], latest["data"]["to"], latest["data"]["reason"]) == (
        5.0,
        5.3,
        "summer demand",
    )
    r = client.put(
        "/api/v1/directives/gen-1-mode", json={"value": "off", "user": "bob", "reason": "repair"}
    )
    assert r.status_code == 200
    assert (r.json()["value"], r.json()["changed_by"]) == ("off", "bob")
    (event,) = runtime.store.events(subject="directive:gen-1-mode", limit=1)
    assert (event.actor, event.data["from"], event.data["to"]) == ("bob", "auto", "off")


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        (
            "/setpoints/pump-9",
            {"value": 5, "user": "a", "reason": "r"},
            404,
            "no setpoint 'pump-9'",
        ),
        ("/setpoints/gen-1-mode", {"value": 5, "user": "a", "reason": "r"}, 404, "no setpoint"),
        (
            "/directives/pump-1-pressure",
            {"value": "off", "user": "a", "reason": "r"},
            404,
            "no directive",
        ),
        (
            "/setpoints/pump-1-pressure",
            {"value": 9, "user": "a", "reason": "r"},
            422,
            "outside the range [4, 6]",
        ),
        (
            "/directives/gen-1-mode",
            {"value": "standby", "user": "a", "reason": "r"},
            422,
            "not a state",
        ),
        ("/setpoints/pump-1-pressure", {"value": "high", "user": "a", "reason": "r"}, 422, "value"),
        ("/setpoints/pump-1-pressure", {"value": 5.1, "reason": "r"}, 422, "user"),
        ("/setpoints/pump-1-pressure", {"value": 5.1, "user": "a", "reason": ""}, 422, "reason"),
        (
            "/setpoints/pump-1-pressure",
            {"value": 5.1, "user": "a", "reason": "r", "x": 1},
            422,
            "x",
        ),
    ],
)
def test_bad_changes_are_refused(
    client: TestClient,
    runtime: Runtime,
    path: str,
    body: dict[str, object],
    status: int,
    fragment: str,
) -> None:
    before = runtime.store.count_events()
    r = client.put(f"/api/v1{path}", json=body)
    assert r.status_code == status
    assert fragment in r.json()["error"]
    assert runtime.store.count_events() == before


def test_a_put_followed_by_the_controller_taking_it_up_raises_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    start = int(time.time()) - 200
    _report(client, runtime, start, [5.0] * 5)
    r = client.put(
        "/api/v1/setpoints/pump-1-pressure",
        json={"value": 5.3, "user": "alice", "reason": "summer demand"},
    )
    assert r.status_code == 200
    # the drive reports the old value for a while after the change, then the new one
    _report(client, runtime, start + 50, [5.0, 5.0, 5.3, 5.3, 5.3])
    assert _findings(client) == []
    r = client.get("/api/v1/setpoints/pump-1-pressure")
    assert (r.json()["reported"], r.json()["in_effect"]) == (5.3, True)


def test_a_readback_moved_without_a_put_is_an_unauthorised_change(
    client: TestClient, runtime: Runtime
) -> None:
    first = int(time.time()) - 200
    _report(client, runtime, first, [5.0] * 3 + [5.4] * 6)
    (finding,) = _findings(client)
    assert (finding["asset"], finding["signal"], finding["time"]) == (
        "pump-1",
        "pump-1.pressure_setpoint",
        first + 30,
    )
    assert "setpoint pump-1-pressure reads 5.4 bar, authorised 5 bar" in str(finding["explanation"])
    r = client.get("/api/v1/alarms")
    assert r.status_code == 200
    (alarm,) = [a for a in r.json() if a["kind"] == "unauthorised_change"]
    assert (alarm["asset"], alarm["active"]) == ("pump-1", True)
    r = client.get("/api/v1/setpoints/pump-1-pressure/changes")
    (seen,) = [e for e in r.json() if e["kind"] == "config.observed_change"]
    assert (seen["actor"], seen["time"], seen["data"]["from"], seen["data"]["to"]) == (
        "telemetry",
        first + 30,
        5.0,
        5.4,
    )
    assert client.get("/api/v1/setpoints/pump-1-pressure").json()["in_effect"] is False
