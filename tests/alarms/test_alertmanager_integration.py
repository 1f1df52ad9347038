"""With Debian's real Alertmanager: Nexus forwards its alarms to it (firing, then resolved), and
it sends its own alerts to Nexus's webhook, where they raise and clear external alarms."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from safety_nexus.alarms.alertmanager import external_alerts, parse_webhook
from safety_nexus.alarms.config import AlarmConfig
from safety_nexus.alarms.manager import ExternalAlert
from safety_nexus.alarms.notify import Notifier, rfc3339, validate
from safety_nexus.core.clock import SystemClock
from safety_nexus.core.errors import NotFoundError
from safety_nexus.core.types import Alarm, AlarmState, FindingKind, Priority
from safety_nexus.pipeline.builder import RuntimeSettings, build_runtime
from safety_nexus.pipeline.runtime import Runtime
from servers import ServerProcess, free_port, serve_api
from webhooks import WebhookRecorder

pytestmark = [pytest.mark.slow, pytest.mark.server]

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
CONFIG = """
route:
  receiver: out
  group_by: [alertname, alarm_id]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: out
    webhook_configs:
{hooks}
"""
HOOK = "      - {{url: '{url}', send_resolved: true}}"


def wait_until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not after {timeout} s: {what}")


StartAlertmanager = Callable[[list[str]], str]


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[StartAlertmanager]:
    """Starts an Alertmanager on 127.0.0.1 (no clustering) whose one receiver sends webhooks
    to the given urls; returns its base url once it is ready."""
    started: list[ServerProcess] = []

    def start(hooks: list[str]) -> str:
        config = tmp_path / "alertmanager.yml"
        config.write_text(
            CONFIG.format(hooks="\n".join(HOOK.format(url=u) for u in hooks)), encoding="utf-8"
        )
        port = free_port()
        argv = [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=debug",
        ]
        server = ServerProcess(argv, port, tmp_path / "alertmanager.log")
        started.append(server)
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, f"alertmanager ready:\n{server.output()[-2000:]}")
        return base

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def hook() -> Iterator[WebhookRecorder]:
    recorder = WebhookRecorder()
    yield recorder
    recorder.close()


def alerts_of(base: str, alarm_id: str, **params: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{base}/api/v2/alerts", params=params, timeout=5)
    assert r.status_code == 200, r.text
    return [a for a in r.json() if a["labels"].get("alarm_id") == alarm_id]


def test_nexus_alarms_fire_and_resolve_in_alertmanager(
    alertmanager: StartAlertmanager, hook: WebhookRecorder
) -> None:
    base = alertmanager([hook.url + "/hook"])
    journal = _Journal()
    config = validate(
        {
            "external_url": "http://nexus.example:8000",
            "receivers": [{"name": "am", "alertmanager": {"url": base}}],
            "routes": [{"receivers": ["am"]}],
        }
    )
    clock = SystemClock()
    now = clock.now()
    alarm = Alarm(
        id="pump-1:level_shift",
        asset="pump-1",
        subsystem="water",
        kind=FindingKind.LEVEL_SHIFT,
        priority=Priority.HIGH,
        state=AlarmState.UNACKNOWLEDGED,
        first_seen=now - 30,
        last_seen=now,
        message="pump-1.pressure: level shift",
        condition=True,
        position="control-room",
    )
    with Notifier(config, journal, clock, tick_every=None) as notifier:
        notifier.start()
        notifier.on_alarm(alarm)
        [held] = wait_until(lambda: alerts_of(base, alarm.id), "the alarm in alertmanager")
        assert held["labels"] == {
            "alertname": "level_shift",
            "alarm_id": "pump-1:level_shift",
            "asset": "pump-1",
            "subsystem": "water",
            "priority": "high",
            "position": "control-room",
            "severity": "critical",
        }
        assert held["annotations"] == {
            "summary": "pump-1.pressure: level shift",
            "state": "unacknowledged",
        }
        assert held["status"]["state"] == "active"
        assert held["startsAt"][:19] == rfc3339(now - 30)[:19]
        assert (
            held["generatorURL"] == "http://nexus.example:8000/api/v1/alarms/pump-1%3Alevel_shift"
        )

        # Alertmanager's webhook for it comes back to us and is recognised as ours.
        [sent] = hook.wait(1, timeout=30)
        assert sent.body["status"] == "firing"
        payload = parse_webhook(_json(sent.body))
        assert payload.alerts[0].labels["alarm_id"] == alarm.id
        assert external_alerts(payload) == []

        state = AlarmState.RETURNED_UNACKNOWLEDGED
        notifier.on_alarm(replace(alarm, condition=False, cleared_at=clock.now(), state=state))
        wait_until(
            lambda: not alerts_of(base, alarm.id, active="true"),
            "the alarm no longer active in alertmanager",
        )
        resolved = hook.wait(2, timeout=30)[1]
        assert resolved.body["status"] == "resolved"
        assert notifier.flush()
    kinds = [e[1] for e in journal.events]
    assert kinds == ["notify.sent", "notify.sent"]


@pytest.fixture
def served(tmp_path: Path, demo_city: Path) -> Iterator[tuple[str, Runtime]]:
    """Nexus behind uvicorn on a free port (no on-delay: an external alert shows when it
    arrives)."""
    runtime = build_runtime(
        RuntimeSettings(
            site=demo_city,
            data_dir=tmp_path / "nexus",
            source="http",
            alarms=AlarmConfig(on_delay=0.0),
        )
    )
    runtime.start()
    with serve_api(runtime) as url:
        yield url, runtime


def test_alertmanager_webhooks_raise_and_clear_external_alarms(
    alertmanager: StartAlertmanager, hook: WebhookRecorder, served: tuple[str, Runtime]
) -> None:
    nexus, runtime = served
    base = alertmanager([hook.url + "/hook", nexus + "/api/v1/alertmanager/webhook"])
    starts = time.time() - 5
    alert = {
        "labels": {"alertname": "DiskFull", "instance": "db-1:9100", "severity": "critical"},
        "annotations": {"summary": "disk is 97% full"},
        "startsAt": rfc3339(starts),
        "generatorURL": "http://prometheus:9090/graph",
    }
    r = httpx.post(f"{base}/api/v2/alerts", json=[alert], timeout=5)
    assert r.status_code == 200, r.text

    [got] = hook.wait(1, timeout=30)
    [external] = external_alerts(parse_webhook(_json(got.body)))
    assert external == ExternalAlert(
        name="DiskFull",
        asset="db-1",
        time=pytest.approx(starts, abs=1e-3),  # type: ignore[arg-type]
        firing=True,
        priority=Priority.HIGH,
        message="disk is 97% full",
    )

    def alarm() -> Alarm | None:
        try:
            return runtime.alarms.get("db-1:external:DiskFull")
        except NotFoundError:
            return None

    raised = wait_until(alarm, "the external alarm in nexus")
    assert raised.condition
    assert raised.kind is FindingKind.EXTERNAL
    assert raised.priority is Priority.HIGH

    ended = time.time()
    r = httpx.post(f"{base}/api/v2/alerts", json=[alert | {"endsAt": rfc3339(ended)}], timeout=5)
    assert r.status_code == 200, r.text
    resolved = hook.wait(2, timeout=30)[1]
    [cleared] = external_alerts(parse_webhook(_json(resolved.body)))
    assert not cleared.firing
    assert cleared.time == pytest.approx(ended, abs=1e-3)
    wait_until(lambda: (a := alarm()) is not None and not a.condition, "the alarm cleared")


class _Journal:
    def __init__(self) -> None:
        self.events: list[tuple[float, str, str, str, dict[str, object]]] = []

    def add_event(
        self, time: float, kind: str, actor: str, subject: str, data: Mapping[str, object]
    ) -> int:
        self.events.append((time, kind, actor, subject, dict(data)))
        return len(self.events)


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()
