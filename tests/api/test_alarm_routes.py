"""The alarm actions over HTTP: each one recorded, refusals answered 409 with the reason."""

from __future__ import annotations

from fastapi.testclient import TestClient

from findings import finding
from safety_nexus.pipeline.runtime import Runtime

API = "/api/v1"


def _raise(runtime: Runtime, signal: str, t: float) -> str:
    runtime.alarms.process([finding(signal, t)])
    return f"{signal.split('.')[0]}:level_shift"


def test_every_action_is_answered_and_journalled(
    http_runtime: Runtime, http_client: TestClient
) -> None:
    now = http_runtime.clock.now()
    aid = _raise(http_runtime, "core-a1.cpu_temp", now)
    shown = http_client.get(f"{API}/alarms").json()
    assert [a["id"] for a in shown] == [aid]
    assert shown[0]["shown"] is True
    assert shown[0]["first_out"] is True
    assert shown[0]["position"] == "control-room"

    r = http_client.post(f"{API}/alarms/{aid}/shelve", json={"user": "ann", "duration": 600})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "shelved"
    assert http_client.get(f"{API}/alarms").json() == []
    assert [a["id"] for a in http_client.get(f"{API}/alarms?state=removed").json()] == [aid]
    r = http_client.post(f"{API}/alarms/{aid}/shelve", json={"user": "ann", "duration": 600})
    assert r.status_code == 409
    assert "off the list already" in r.json()["error"]
    r = http_client.post(f"{API}/alarms/{aid}/shelve", json={"user": "ann"})
    assert r.status_code == 409
    assert "duration" in r.json()["error"]

    assert (
        http_client.post(f"{API}/alarms/{aid}/unshelve", json={"user": "bob"}).json()["state"]
        == "unacknowledged"
    )
    r = http_client.post(
        f"{API}/alarms/{aid}/out-of-service", json={"user": "bob", "note": "probe swap"}
    )
    assert r.json()["state"] == "out_of_service"
    r = http_client.post(f"{API}/alarms/{aid}/return-to-service", json={"user": "bob"})
    assert r.json()["state"] == "unacknowledged"
    r = http_client.post(f"{API}/alarms/{aid}/acknowledge", json={"user": "ann", "note": "seen"})
    assert r.json()["state"] == "acknowledged"
    r = http_client.post(f"{API}/alarms/{aid}/reset", json={"user": "ann"})
    assert r.status_code == 409
    assert "only a latched alarm" in r.json()["error"]

    history = http_client.get(f"{API}/alarms/{aid}/history").json()
    moves = [(e["data"]["event"], e["actor"]) for e in reversed(history)]
    assert moves == [
        ("activate", "detector"),
        ("shelve", "ann"),
        ("unshelve", "bob"),
        ("remove_from_service", "bob"),
        ("return_to_service", "bob"),
        ("acknowledge", "ann"),
    ]
    assert history[0]["data"]["note"] == "seen"


def test_maintenance_windows_and_floods(http_runtime: Runtime, http_client: TestClient) -> None:
    now = http_runtime.clock.now()
    r = http_client.post(
        f"{API}/maintenance",
        json={
            "id": "mw-1",
            "user": "ann",
            "start": now - 1,
            "end": now + 3600,
            "assets": ["core-a1"],
            "note": "fan replacement",
        },
    )
    assert r.status_code == 201, r.text
    aid = _raise(http_runtime, "core-a1.cpu_temp", now)
    assert http_client.get(f"{API}/alarms").json() == []
    alarm = http_client.get(f"{API}/alarms/{aid}").json()
    assert alarm["state"] == "suppressed"
    assert alarm["suppressed_by"] == ["maintenance:mw-1"]
    assert [w["id"] for w in http_client.get(f"{API}/maintenance").json()] == ["mw-1"]
    r = http_client.post(
        f"{API}/maintenance",
        json={"id": "mw-2", "user": "ann", "start": 0, "end": 1, "assets": ["nowhere"]},
    )
    assert r.status_code == 404
    r = http_client.post(f"{API}/maintenance/mw-1/end", json={"user": "ann"})
    assert r.status_code == 200
    assert [a["id"] for a in http_client.get(f"{API}/alarms").json()] == [aid]
    floods = http_client.get(f"{API}/alarms/floods").json()
    assert floods == [
        {
            "position": "control-room",
            "flood": False,
            "count": 1,
            "since": None,
            "window": 600.0,
            "limit": 10,
        }
    ]
