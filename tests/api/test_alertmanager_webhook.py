"""`POST /api/v1/alertmanager/webhook`: Alertmanager's alerts raise and clear external alarms."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from safety_nexus.alarms.notify import NotifyConfig
from safety_nexus.api.app import create_app
from safety_nexus.core.types import AlarmState, FindingKind, Priority
from safety_nexus.pipeline.builder import RuntimeSettings, build_runtime
from safety_nexus.pipeline.runtime import Runtime

URL = "/api/v1/alertmanager/webhook"
STARTS = "2026-06-01T08:00:00Z"


def body(status: str = "firing", **labels: str) -> dict[str, Any]:
    alert = {
        "status": status,
        "labels": {"alertname": "DiskFull", "severity": "critical", **labels},
        "annotations": {"summary": "disk is 97% full"},
        "startsAt": STARTS,
        "endsAt": "2026-06-01T08:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": "1a30ba71cca2921f",
    }
    return {
        "version": "4",
        "groupKey": '{}:{alertname="DiskFull"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "nexus",
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://alertmanager:9093",
        "alerts": [alert],
    }


def test_firing_raises_and_resolved_clears_an_external_alarm(
    http_client: TestClient, http_runtime: Runtime
) -> None:
    r = http_client.post(URL, json=body(instance="db-1:9100"))
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 1, "skipped": 0}
    alarm = http_runtime.alarms.get("db-1:external:DiskFull")
    assert alarm.kind is FindingKind.EXTERNAL
    assert alarm.condition
    assert alarm.priority is Priority.HIGH
    assert alarm.state is AlarmState.UNACKNOWLEDGED
    listed = http_client.get("/api/v1/alarms/db-1:external:DiskFull")
    assert listed.status_code == 200
    r = http_client.post(URL, json=body("resolved", instance="db-1:9100"))
    assert r.status_code == 200, r.text
    assert not http_runtime.alarms.get("db-1:external:DiskFull").condition


def test_nexus_own_alarms_are_skipped(http_client: TestClient, http_runtime: Runtime) -> None:
    r = http_client.post(URL, json=body(alarm_id="pump-1:spike", asset="pump-1"))
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 0, "skipped": 1}
    assert http_runtime.alarms.alarms(open_only=False) == []


@pytest.mark.parametrize(
    ("content", "ctype", "status", "message"),
    [
        (b"{", "application/json", 400, "alertmanager webhook: the body is not json"),
        (
            json.dumps(body() | {"status": "pending"}).encode(),
            "application/json",
            400,
            "status: input should be 'firing' or 'resolved'",
        ),
        (json.dumps(body()).encode(), "text/plain", 415, "send application/json"),
    ],
)
def test_a_bad_request_is_refused(
    http_client: TestClient, content: bytes, ctype: str, status: int, message: str
) -> None:
    r = http_client.post(URL, content=content, headers={"content-type": ctype})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


@pytest.fixture
def guarded(tmp_path: Path, demo_city: Path) -> Iterator[TestClient]:
    notify = NotifyConfig.model_validate({"inbound": {"bearer_token": "am-token"}})
    runtime = build_runtime(
        RuntimeSettings(site=demo_city, data_dir=tmp_path, source="http", notify=notify)
    )
    runtime.start()
    with TestClient(create_app(runtime)) as client:
        yield client
    runtime.stop()


@pytest.mark.parametrize(
    ("auth", "status"),
    [(None, 401), ("Bearer wrong", 401), ("Basic am-token", 401), ("Bearer am-token", 200)],
)
def test_the_inbound_token_is_required_when_set(
    guarded: TestClient, auth: str | None, status: int
) -> None:
    headers = {"authorization": auth} if auth else {}
    r = guarded.post(URL, json=body(instance="db-1:9100"), headers=headers)
    assert r.status_code == status, r.text
    if status == 401:
        assert "am-token" not in r.text
        assert r.json()["error"] == "alertmanager webhook: a valid bearer token is required"
