"""The runtime's notifier: built from `RuntimeSettings.notify`, subscribed to the alarms,
started and closed with the runtime, and not sending again what it sent before a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from safety_nexus.alarms.config import AlarmConfig
from safety_nexus.alarms.manager import ExternalAlert
from safety_nexus.alarms.notify import validate
from safety_nexus.core.types import Priority
from safety_nexus.pipeline.builder import RuntimeSettings, build_runtime
from safety_nexus.store.sqlite import SqliteStore
from webhooks import WebhookRecorder


@pytest.fixture
def hook() -> Iterator[WebhookRecorder]:
    recorder = WebhookRecorder()
    yield recorder
    recorder.close()


def _settings(tmp_path: Path, demo_city: Path, url: str) -> RuntimeSettings:
    notify = validate(
        {
            "receivers": [{"name": "ops", "webhook": {"url": url}}],
            "routes": [{"min_priority": "high", "receivers": ["ops"]}],
        }
    )
    # no on-delay: these tests are about the notifier, which is told when an alarm fires
    return RuntimeSettings(
        site=demo_city,
        data_dir=tmp_path,
        source="http",
        notify=notify,
        alarms=AlarmConfig(on_delay=0.0),
    )


def _alert(firing: bool, priority: Priority = Priority.HIGH) -> ExternalAlert:
    return ExternalAlert(
        name="DiskFull", asset="db-1", time=time.time(), firing=firing, priority=priority
    )


def test_alarms_reach_the_routes_receivers_and_the_journal(
    tmp_path: Path, demo_city: Path, hook: WebhookRecorder
) -> None:
    runtime = build_runtime(_settings(tmp_path, demo_city, hook.url))
    assert runtime.notifier is not None
    runtime.start()
    try:
        runtime.alarms.on_external([_alert(True, Priority.LOW)])  # below the route's minimum
        runtime.alarms.on_external([_alert(True)])  # priority rose: now it matches
        [got] = hook.wait(1)
        assert got.body["status"] == "firing"
        assert got.body["alerts"][0]["labels"]["alarm_id"] == "db-1:external:DiskFull"
    finally:
        runtime.stop()
    store = SqliteStore(tmp_path / "nexus.db")
    try:
        [sent] = store.events(kind="notify.sent")
        assert (sent.subject, sent.data["receiver"]) == ("db-1:external:DiskFull", "ops")
    finally:
        store.close()


def test_after_a_restart_firing_alarms_are_not_sent_again_but_resolve(
    tmp_path: Path, demo_city: Path, hook: WebhookRecorder
) -> None:
    runtime = build_runtime(_settings(tmp_path, demo_city, hook.url))
    runtime.start()
    runtime.alarms.on_external([_alert(True)])
    hook.wait(1)
    runtime.stop()
    runtime = build_runtime(_settings(tmp_path, demo_city, hook.url))
    runtime.start()
    try:
        assert runtime.notifier is not None
        assert runtime.notifier.firing() == ["db-1:external:DiskFull"]
        runtime.alarms.on_external([_alert(False)])
        assert [r.body["status"] for r in hook.wait(2)] == ["firing", "resolved"]
    finally:
        runtime.stop()


def test_without_routes_the_notifier_is_idle(tmp_path: Path, demo_city: Path) -> None:
    runtime = build_runtime(RuntimeSettings(site=demo_city, data_dir=tmp_path, source="http"))
    assert runtime.notifier is not None
    assert not runtime.notifier.active
    runtime.start()
    runtime.alarms.on_external([_alert(True)])
    runtime.stop()
    assert runtime.notifier.firing() == []
