"""Alarm notifications: routes, firing/resolved, repeats, escalation, the webhook payload,
forwarding to an Alertmanager, delivery (retries, bounded queue, close), the config's errors.

Receivers are real HTTP servers on 127.0.0.1 (tests/webhooks.py); time is a ManualClock and,
for Alertmanager keep-alives, a hand-moved monotonic clock."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from safety_nexus.alarms.notify import (
    ZERO_TIME,
    Notifier,
    NotifyConfig,
    load,
    load_file,
    rfc3339,
    validate,
)
from safety_nexus.core.clock import ManualClock
from safety_nexus.core.errors import ConfigError
from safety_nexus.core.types import Alarm, AlarmState, FindingKind, Priority
from safety_nexus.store.sqlite import SqliteStore
from webhooks import Received, WebhookRecorder

T0 = 1_780_000_000.0
PUMP = "pump-1:level_shift"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def make_alarm(
    aid: str = PUMP,
    *,
    state: AlarmState = AlarmState.UNACKNOWLEDGED,
    condition: bool = True,
    priority: Priority = Priority.HIGH,
    subsystem: str = "water",
    first_seen: float = T0,
    **fields: Any,
) -> Alarm:
    asset, kind = aid.split(":")[:2]
    return Alarm(
        id=aid,
        asset=asset,
        subsystem=subsystem,
        kind=FindingKind(kind),
        priority=priority,
        state=state,
        first_seen=first_seen,
        last_seen=first_seen,
        message=f"{asset}: something moved",
        condition=condition,
        position="control-room",
        **fields,
    )


class Journal:
    """The notifier's journal, recorded (thread-safe: list.append)."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, str, str, dict[str, object]]] = []

    def add_event(
        self, time: float, kind: str, actor: str, subject: str, data: Mapping[str, object]
    ) -> int:
        self.events.append((time, kind, actor, subject, dict(data)))
        return len(self.events)

    def of(self, kind: str) -> list[tuple[float, str, str, str, dict[str, object]]]:
        return [e for e in self.events if e[1] == kind]


class Mono:
    """A monotonic clock moved by hand (Alertmanager keep-alives)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def hook() -> Iterator[WebhookRecorder]:
    recorder = WebhookRecorder()
    yield recorder
    recorder.close()


@pytest.fixture
def pager() -> Iterator[WebhookRecorder]:
    recorder = WebhookRecorder()
    yield recorder
    recorder.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def journal() -> Journal:
    return Journal()


@pytest.fixture
def mono() -> Mono:
    return Mono()


Make = Callable[..., Notifier]


@pytest.fixture
def make(clock: ManualClock, journal: Journal, mono: Mono) -> Iterator[Make]:
    """A started notifier for a config given as data; ticks only when the test calls tick()."""
    made: list[Notifier] = []

    def build(data: dict[str, Any], *, start: bool = True) -> Notifier:
        data = {"backoff": 0.01, "max_backoff": 0.02, **data}
        notifier = Notifier(validate(data), journal, clock, tick_every=None, monotonic=mono)
        if start:
            notifier.start()
        made.append(notifier)
        return notifier

    yield build
    for notifier in made:
        notifier.close(timeout=2.0)


def webhook(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "webhook": {"url": url, **extra}}


def one_route(url: str, **route: Any) -> dict[str, Any]:
    return {
        "receivers": [webhook("ops", url)],
        "routes": [{"receivers": ["ops"], **route}],
    }


def statuses(received: list[Received]) -> list[tuple[str, str]]:
    return [(r.body["status"], r.body["alerts"][0]["labels"]["alarm_id"]) for r in received]


# -- the webhook payload ---------------------------------------------------------------------


def test_firing_payload_is_alertmanagers_webhook_format(
    make: Make, hook: WebhookRecorder, journal: Journal
) -> None:
    data = one_route(hook.url + "/hook")
    data["receivers"][0]["webhook"]["bearer_token"] = "s3cret"
    data["external_url"] = "http://nexus.example:8000/"
    notifier = make(data)
    notifier.on_alarm(
        make_alarm(root_cause="sub-1:level_shift", incident="sub-1:level_shift@1780000000")
    )
    [got] = hook.wait(1)
    assert got.path == "/hook"
    assert got.headers["authorization"] == "Bearer s3cret"
    assert got.headers["content-type"] == "application/json"
    body = got.body
    assert set(body) == {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["receiver"] == "ops"
    assert body["truncatedAlerts"] == 0
    assert body["groupKey"] == '{}:{alarm_id="pump-1:level_shift"}'
    assert body["groupLabels"] == {"alarm_id": PUMP}
    assert body["externalURL"] == "http://nexus.example:8000"
    [alert] = body["alerts"]
    assert set(alert) == {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }
    assert alert["status"] == "firing"
    assert alert["labels"] == {
        "alertname": "level_shift",
        "alarm_id": PUMP,
        "asset": "pump-1",
        "subsystem": "water",
        "priority": "high",
        "position": "control-room",
        "severity": "critical",
    }
    assert alert["annotations"] == {
        "summary": "pump-1: something moved",
        "state": "unacknowledged",
        "root_cause": "sub-1:level_shift",
        "incident": "sub-1:level_shift@1780000000",
    }
    assert alert["startsAt"] == "2026-05-28T20:26:40Z" == rfc3339(T0)
    assert alert["endsAt"] == ZERO_TIME
    assert alert["generatorURL"] == "http://nexus.example:8000/api/v1/alarms/pump-1%3Alevel_shift"
    assert re.fullmatch(r"[0-9a-f]{16}", alert["fingerprint"])
    assert body["commonLabels"] == alert["labels"]
    assert body["commonAnnotations"] == alert["annotations"]
    assert notifier.flush()
    [sent] = journal.of("notify.sent")
    assert sent[2:4] == ("notifier", PUMP)
    assert sent[4] == {
        "receiver": "ops",
        "kind": "webhook",
        "status": "firing",
        "reason": "change",
        "priority": "high",
        "state": "unacknowledged",
        "attempts": 1,
    }
    assert "s3cret" not in repr(journal.events)


def test_resolved_payload_ends_when_the_alarm_cleared(
    make: Make, hook: WebhookRecorder, clock: ManualClock
) -> None:
    notifier = make(one_route(hook.url))
    notifier.on_alarm(make_alarm())
    clock.set(T0 + 90)
    cleared = make_alarm(
        state=AlarmState.RETURNED_UNACKNOWLEDGED, condition=False, cleared_at=T0 + 60.25
    )
    notifier.on_alarm(cleared)
    firing, resolved = hook.wait(2)
    assert firing.body["alerts"][0]["fingerprint"] == resolved.body["alerts"][0]["fingerprint"]
    assert resolved.body["status"] == "resolved"
    [alert] = resolved.body["alerts"]
    assert alert["status"] == "resolved"
    assert alert["startsAt"] == rfc3339(T0)
    assert alert["endsAt"] == rfc3339(T0 + 60.25) == "2026-05-28T20:27:40.25Z"
    assert alert["annotations"]["state"] == "returned_unacknowledged"
    assert "root_cause" not in alert["annotations"]  # only when there is one
    assert notifier.firing() == []


@pytest.mark.parametrize(
    ("t", "text"),
    [
        (0.0, "1970-01-01T00:00:00Z"),
        (T0 + 0.5, "2026-05-28T20:26:40.5Z"),
        (T0 + 0.000123, "2026-05-28T20:26:40.000123Z"),
    ],
)
def test_rfc3339_is_utc_with_a_fraction_only_when_there_is_one(t: float, text: str) -> None:
    assert rfc3339(t) == text
    assert RFC3339.fullmatch(text)


# -- firing and resolved: changes only -------------------------------------------------------


def test_only_changes_between_firing_and_resolved_are_sent(
    make: Make, hook: WebhookRecorder
) -> None:
    notifier = make(one_route(hook.url))
    notifier.on_alarm(make_alarm(state=AlarmState.NORMAL, condition=False))  # never fired
    notifier.on_alarm(make_alarm())  # fires
    notifier.on_alarm(make_alarm(count=5))  # one more finding: still firing
    acked = make_alarm(state=AlarmState.ACKNOWLEDGED, acknowledged_by="ann")
    notifier.on_alarm(acked)  # acknowledged, condition still active: still firing
    notifier.on_alarm(replace(acked, condition=False, state=AlarmState.NORMAL))  # resolves
    notifier.on_alarm(make_alarm(state=AlarmState.NORMAL, condition=False))  # nothing new
    assert notifier.flush()
    assert statuses(hook.settle()) == [("firing", PUMP), ("resolved", PUMP)]


@pytest.mark.parametrize(
    "state", [AlarmState.SHELVED, AlarmState.SUPPRESSED, AlarmState.OUT_OF_SERVICE]
)
def test_leaving_the_list_with_the_condition_active_resolves(
    make: Make, hook: WebhookRecorder, state: AlarmState
) -> None:
    notifier = make(one_route(hook.url))
    notifier.on_alarm(make_alarm())
    notifier.on_alarm(make_alarm(state=state))  # condition still active, off the list
    notifier.on_alarm(make_alarm(state=state, count=3))
    _, resolved = hook.wait(2)
    assert resolved.body["status"] == "resolved"
    assert resolved.body["alerts"][0]["annotations"]["state"] == state.value
    assert resolved.body["alerts"][0]["endsAt"] == rfc3339(T0)  # no clear time: now
    notifier.on_alarm(make_alarm(count=4))  # back on the list: fires again, starting now
    third = hook.wait(3)[2]
    assert third.body["status"] == "firing"
    assert notifier.flush()
    assert len(hook.settle()) == 3


def test_a_new_occurrence_starts_at_its_first_finding(
    make: Make, hook: WebhookRecorder, clock: ManualClock
) -> None:
    notifier = make(one_route(hook.url))
    notifier.on_alarm(make_alarm())
    clock.set(T0 + 100)
    notifier.on_alarm(make_alarm(state=AlarmState.NORMAL, condition=False))
    clock.set(T0 + 200)
    notifier.on_alarm(make_alarm(state=AlarmState.RETURNED_UNACKNOWLEDGED, condition=False))
    notifier.on_alarm(make_alarm(first_seen=T0 + 150))  # a fresh occurrence
    bodies = [r.body["alerts"][0] for r in hook.wait(3)]
    assert [b["startsAt"] for b in bodies] == [rfc3339(T0), rfc3339(T0), rfc3339(T0 + 150)]


# -- routes ----------------------------------------------------------------------------------


def test_first_matching_route_wins_unless_it_continues(
    make: Make, hook: WebhookRecorder, pager: WebhookRecorder
) -> None:
    notifier = make(
        {
            "receivers": [webhook("ops", hook.url), webhook("pager", pager.url)],
            "routes": [
                {"subsystems": ["power"], "receivers": ["pager"]},
                {"min_priority": "emergency", "receivers": ["pager"], "continue": True},
                {"subsystems": ["water", "fire"], "min_priority": "high", "receivers": ["ops"]},
                {"receivers": ["pager"]},  # the rest
            ],
        }
    )
    notifier.on_alarm(make_alarm("sub-1:level_shift", subsystem="power", priority=Priority.LOW))
    notifier.on_alarm(make_alarm("zone-1:limit", subsystem="fire", priority=Priority.EMERGENCY))
    notifier.on_alarm(make_alarm("pump-1:spike", subsystem="water", priority=Priority.HIGH))
    notifier.on_alarm(make_alarm("pump-2:spike", subsystem="water", priority=Priority.MEDIUM))
    assert notifier.flush()
    to_pager = sorted(a for _, a in statuses(pager.settle()))
    to_ops = sorted(a for _, a in statuses(hook.settle()))
    assert to_pager == ["pump-2:spike", "sub-1:level_shift", "zone-1:limit"]
    assert to_ops == ["pump-1:spike", "zone-1:limit"]  # zone-1 went on (continue: true)


def test_a_priority_rise_reaches_routes_it_now_matches_and_updates_the_others(
    make: Make, hook: WebhookRecorder, pager: WebhookRecorder
) -> None:
    notifier = make(
        {
            "receivers": [webhook("ops", hook.url), webhook("pager", pager.url)],
            "routes": [
                {"min_priority": "emergency", "receivers": ["pager"], "continue": True},
                {"receivers": ["ops"]},
            ],
        }
    )
    notifier.on_alarm(make_alarm(priority=Priority.HIGH))
    notifier.on_alarm(make_alarm(priority=Priority.EMERGENCY))
    assert notifier.flush()
    ops = hook.settle()
    assert [r.body["alerts"][0]["labels"]["priority"] for r in ops] == ["high", "emergency"]
    [paged] = pager.settle()
    assert paged.body["alerts"][0]["labels"]["severity"] == "emergency"
    notifier.on_alarm(make_alarm(priority=Priority.EMERGENCY, condition=False))
    assert notifier.flush()
    assert pager.wait(2)[1].body["status"] == "resolved"  # everyone told hears it resolve
    assert hook.wait(3)[2].body["status"] == "resolved"


# -- repeat and escalation -------------------------------------------------------------------


def test_repeats_while_firing_unacknowledged(
    make: Make, hook: WebhookRecorder, clock: ManualClock
) -> None:
    notifier = make(one_route(hook.url, repeat_interval=600))
    notifier.on_alarm(make_alarm())
    clock.set(T0 + 599)
    notifier.tick()
    assert notifier.flush()
    assert len(hook.settle()) == 1
    clock.set(T0 + 600)
    notifier.tick()
    clock.set(T0 + 900)
    notifier.tick()  # next repeat is at +1200
    repeat = hook.wait(2)[1]
    assert repeat.body["status"] == "firing"
    assert notifier.flush()
    assert len(hook.settle()) == 2
    notifier.on_alarm(make_alarm(state=AlarmState.ACKNOWLEDGED, acknowledged_by="ann"))
    clock.set(T0 + 5000)
    notifier.tick()
    assert notifier.flush()
    assert len(hook.settle()) == 2  # acknowledged: no more repeats


def test_repeat_interval_zero_never_repeats(
    make: Make, hook: WebhookRecorder, clock: ManualClock
) -> None:
    notifier = make(one_route(hook.url, repeat_interval=0))
    notifier.on_alarm(make_alarm())
    clock.set(T0 + 10 * 3600)
    notifier.tick()
    assert notifier.flush()
    assert len(hook.settle()) == 1


def test_escalates_once_when_still_unacknowledged(
    make: Make,
    hook: WebhookRecorder,
    pager: WebhookRecorder,
    clock: ManualClock,
    journal: Journal,
) -> None:
    data = {
        "receivers": [webhook("ops", hook.url), webhook("duty-manager", pager.url)],
        "routes": [
            {
                "receivers": ["ops"],
                "escalate_after": 900,
                "escalate_to": ["duty-manager"],
                "repeat_interval": 0,
            }
        ],
    }
    notifier = make(data)
    notifier.on_alarm(make_alarm())
    clock.set(T0 + 899)
    notifier.tick()
    clock.set(T0 + 900)
    notifier.tick()
    clock.set(T0 + 2000)
    notifier.tick()
    [escalated] = pager.wait(1)
    assert escalated.body["status"] == "firing"
    assert escalated.body["receiver"] == "duty-manager"
    assert notifier.flush()
    assert len(pager.settle()) == 1
    [event] = journal.of("notify.escalated")
    assert event[0] == T0 + 900
    assert event[2:4] == ("notifier", PUMP)
    assert event[4]["receivers"] == ["duty-manager"]
    assert event[4]["unacknowledged_for"] == 900
    reasons = [str(e[4]["reason"]) for e in journal.of("notify.sent")]
    assert sorted(reasons) == ["change", "escalation"]
    notifier.on_alarm(make_alarm(condition=False, state=AlarmState.RETURNED_UNACKNOWLEDGED))
    assert pager.wait(2)[1].body["status"] == "resolved"  # the escalation hears it end


def test_no_escalation_once_acknowledged(
    make: Make,
    hook: WebhookRecorder,
    pager: WebhookRecorder,
    clock: ManualClock,
    journal: Journal,
) -> None:
    notifier = make(
        {
            "receivers": [webhook("ops", hook.url), webhook("boss", pager.url)],
            "routes": [{"receivers": ["ops"], "escalate_after": 60, "escalate_to": ["boss"]}],
        }
    )
    notifier.on_alarm(make_alarm())
    clock.set(T0 + 30)
    notifier.on_alarm(make_alarm(state=AlarmState.ACKNOWLEDGED, acknowledged_by="ann"))
    clock.set(T0 + 120)
    notifier.tick()
    assert notifier.flush()
    assert pager.settle() == []
    assert journal.of("notify.escalated") == []


# -- forwarding to an Alertmanager -----------------------------------------------------------


def test_alertmanager_gets_postable_alerts_kept_alive_and_resolved(
    make: Make, hook: WebhookRecorder, clock: ManualClock, mono: Mono, journal: Journal
) -> None:
    notifier = make(
        {
            "external_url": "http://nexus:8000",
            "receivers": [
                {"name": "am", "alertmanager": {"url": hook.url + "/", "resend_interval": 60}}
            ],
            "routes": [{"receivers": ["am"], "repeat_interval": 1}],
        }
    )
    notifier.tick()  # nothing firing: nothing posted
    notifier.on_alarm(make_alarm())
    [first] = hook.wait(1)
    assert first.path == "/api/v2/alerts"
    [alert] = first.body
    assert set(alert) == {"labels", "annotations", "startsAt", "generatorURL"}  # no endsAt
    assert alert["labels"]["alarm_id"] == PUMP
    assert alert["startsAt"] == rfc3339(T0)
    clock.set(T0 + 3600)  # repeats are for webhooks: an Alertmanager repeats by itself
    mono.t += 59
    notifier.tick()
    assert notifier.flush()
    assert len(hook.settle()) == 1
    mono.t += 1
    notifier.tick()  # keep-alive: the same alert again
    assert hook.wait(2)[1].body == [alert]
    clock.set(T0 + 3700)
    notifier.on_alarm(make_alarm(condition=False, state=AlarmState.NORMAL, cleared_at=T0 + 3650))
    [resolved] = hook.wait(3)[2].body
    assert resolved["endsAt"] == rfc3339(T0 + 3650)
    assert resolved["labels"] == alert["labels"]
    mono.t += 600
    notifier.tick()
    assert notifier.flush()
    assert len(hook.settle()) == 3  # resolved: no more keep-alives
    sent = [e[4]["reason"] for e in journal.of("notify.sent")]
    assert sent == ["change", "change"]  # keep-alives are not journalled


def test_alertmanager_hears_the_old_labels_resolved_when_they_change(
    make: Make, hook: WebhookRecorder
) -> None:
    notifier = make(
        {
            "receivers": [{"name": "am", "alertmanager": {"url": hook.url}}],
            "routes": [{"receivers": ["am"]}],
        }
    )
    notifier.on_alarm(make_alarm(priority=Priority.MEDIUM))
    notifier.on_alarm(make_alarm(priority=Priority.HIGH))
    assert notifier.flush()  # one post or two: queued alerts go out together
    alerts = [a for r in hook.settle() for a in r.body]
    assert [(a["labels"]["priority"], "endsAt" in a) for a in alerts] == [
        ("medium", False),
        ("medium", True),  # the old label set ends
        ("high", False),
    ]


def test_external_alarms_are_not_forwarded_to_an_alertmanager(
    make: Make, hook: WebhookRecorder, pager: WebhookRecorder
) -> None:
    notifier = make(
        {
            "receivers": [
                {"name": "am", "alertmanager": {"url": pager.url}},
                webhook("ops", hook.url),
            ],
            "routes": [{"receivers": ["am", "ops"]}],
        }
    )
    notifier.on_alarm(make_alarm("db-1:external:DiskFull", subsystem="external"))
    [got] = hook.wait(1)
    assert got.body["alerts"][0]["labels"]["alertname"] == "external"
    assert notifier.flush()
    assert pager.settle() == []


# -- delivery --------------------------------------------------------------------------------


def test_failures_are_retried_with_backoff(
    make: Make, hook: WebhookRecorder, journal: Journal
) -> None:
    hook.answers.extend([503, 500])
    notifier = make(one_route(hook.url))
    notifier.on_alarm(make_alarm())
    hook.wait(1)
    assert notifier.flush()
    [sent] = journal.of("notify.sent")
    assert sent[4]["attempts"] == 3
    assert notifier.stats()["ops"].sent == 1
    assert journal.of("notify.failed") == []


def test_a_refusal_is_final_and_journalled(
    make: Make, hook: WebhookRecorder, journal: Journal
) -> None:
    hook.answers.append(400)
    notifier = make(one_route(hook.url))
    notifier.on_alarm(make_alarm())
    assert notifier.flush()
    [failed] = journal.of("notify.failed")
    assert failed[3] == PUMP
    assert failed[4]["attempts"] == 1
    assert failed[4]["error"] == "answered 400"
    assert failed[4]["receiver"] == "ops"
    assert notifier.stats()["ops"].failed == 1
    notifier.on_alarm(make_alarm(condition=False, state=AlarmState.NORMAL))
    [resolved] = hook.wait(1)  # the receiver is not given up on
    assert resolved.body["status"] == "resolved"


def test_an_unreachable_receiver_fails_after_the_retries(
    make: Make, journal: Journal, hook: WebhookRecorder
) -> None:
    from servers import free_port

    dead = f"http://127.0.0.1:{free_port()}/hook"
    notifier = make(
        {
            "retries": 2,
            "receivers": [webhook("dead", dead, timeout=1), webhook("ops", hook.url)],
            "routes": [{"receivers": ["dead", "ops"]}],
        }
    )
    notifier.on_alarm(make_alarm())
    hook.wait(1)  # the other receiver is not held up
    assert notifier.flush()
    [failed] = journal.of("notify.failed")
    assert failed[4]["receiver"] == "dead"
    assert failed[4]["attempts"] == 3
    assert "refused" in str(failed[4]["error"]).lower()
    assert dead not in repr(journal.events)  # receivers are named, never their urls


def test_delivery_never_blocks_the_caller_and_the_queue_is_bounded(
    make: Make, hook: WebhookRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    hook.gate.clear()  # the receiver takes each request and then hangs
    data = one_route(hook.url) | {"queue_size": 3}
    notifier = make(data)
    notifier.on_alarm(make_alarm("pump-0:spike"))
    hook.wait_arrived(1)  # in flight, held
    done = threading.Event()

    def flood() -> None:
        for i in range(1, 20):
            notifier.on_alarm(make_alarm(f"pump-{i}:spike"))
        done.set()

    threading.Thread(target=flood, daemon=True).start()
    assert done.wait(5), "on_alarm waited for delivery"
    stats = notifier.stats()["ops"]
    assert stats.dropped == 20 - 1 - 3  # one in flight, three queued
    assert "queue of ops is full" in caplog.text
    hook.gate.set()
    assert notifier.flush()
    assert len(hook.settle()) == 4


def test_close_delivers_what_is_queued_and_stops(
    clock: ManualClock, journal: Journal, hook: WebhookRecorder
) -> None:
    notifier = Notifier(validate(one_route(hook.url)), journal, clock, tick_every=None)
    notifier.on_alarm(make_alarm())  # queued before the start
    notifier.start()
    notifier.on_alarm(make_alarm(condition=False, state=AlarmState.NORMAL))
    notifier.close()
    assert statuses(hook.settle()) == [("firing", PUMP), ("resolved", PUMP)]
    notifier.on_alarm(make_alarm())  # closed: ignored
    notifier.tick()
    notifier.close()  # twice is fine
    assert len(hook.settle()) == 2


def test_close_without_start_drops_and_counts(
    clock: ManualClock, journal: Journal, hook: WebhookRecorder
) -> None:
    notifier = Notifier(validate(one_route(hook.url)), journal, clock, tick_every=None)
    notifier.on_alarm(make_alarm())
    notifier.close(timeout=0.1)
    assert notifier.stats()["ops"].dropped == 1
    assert notifier.flush(timeout=0)


def test_the_ticker_thread_sends_repeats_by_itself(
    clock: ManualClock, journal: Journal, hook: WebhookRecorder
) -> None:
    config = validate(one_route(hook.url, repeat_interval=60))
    with Notifier(config, journal, clock, tick_every=0.01) as notifier:
        notifier.start()
        notifier.on_alarm(make_alarm())
        clock.set(T0 + 60)
        assert [r.body["status"] for r in hook.wait(2)] == ["firing", "firing"]


def test_restored_alarms_are_not_sent_again_but_resolve(
    make: Make, hook: WebhookRecorder, clock: ManualClock
) -> None:
    notifier = make(one_route(hook.url, repeat_interval=600))
    notifier.restore(
        [make_alarm(), make_alarm("pump-2:spike", state=AlarmState.NORMAL, condition=False)]
    )
    assert notifier.firing() == [PUMP]
    assert notifier.flush()
    assert hook.settle() == []
    clock.set(T0 + 600)
    notifier.tick()
    notifier.on_alarm(make_alarm(condition=False, state=AlarmState.NORMAL))
    assert statuses(hook.wait(2)) == [("firing", PUMP), ("resolved", PUMP)]


def test_the_journal_is_the_stores(
    tmp_path: Path, clock: ManualClock, hook: WebhookRecorder
) -> None:
    store = SqliteStore(tmp_path / "nexus.db")
    try:
        notifier = Notifier(validate(one_route(hook.url)), store, clock, tick_every=None)
        notifier.start()
        notifier.on_alarm(make_alarm())
        notifier.close()
        [event] = store.events(kind="notify.sent")
        assert (event.actor, event.subject, event.data["receiver"]) == ("notifier", PUMP, "ops")
    finally:
        store.close()


def test_no_routes_no_threads_nothing_sent(clock: ManualClock, journal: Journal) -> None:
    notifier = Notifier(NotifyConfig(), journal, clock)
    assert not notifier.active
    notifier.start()
    notifier.on_alarm(make_alarm())
    notifier.tick()
    assert notifier.firing() == []
    notifier.close()
    assert journal.events == []


# -- configuration ---------------------------------------------------------------------------

GOOD = """
external_url: https://nexus.example
receivers:
  - name: ops
    webhook: {url: "https://hooks.example/ops", bearer_token_file: token.txt, timeout: 5}
  - name: am
    alertmanager: {url: "http://alertmanager:9093", resend_interval: 30}
routes:
  - subsystems: [power, water]
    min_priority: high
    receivers: [ops, am]
    continue: true
    escalate_after: 900
    escalate_to: [am]
  - receivers: [am]
"""


def test_a_good_config_loads_with_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text(GOOD, encoding="utf-8")
    (tmp_path / "token.txt").write_text("tok\n", encoding="utf-8")
    config = load_file(path)
    assert config.routes[0].continue_ is True
    assert config.routes[1].continue_ is False
    assert config.routes[1].repeat_interval == 3600.0
    assert config.routes[0].min_priority == "high"
    assert config.receivers[1].alertmanager is not None
    assert config.receiver("ops").endpoint.bearer_token_file == tmp_path / "token.txt"
    assert config.retries == 3
    notifier = Notifier(config, Journal(), ManualClock(T0))
    assert notifier.inbound_token is None
    notifier.close()
    assert NotifyConfig().routes == []
    assert load("").routes == []


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ("routs: []", "routs", "extra inputs are not permitted"),
        ("receivers: [{name: a}]", "receivers[0]", "needs one of webhook or alertmanager"),
        (
            "receivers: [{name: a, webhook: {url: 'http://x'}, alertmanager: {url: 'http://y'}}]",
            "receivers[0]",
            "needs one of webhook or alertmanager",
        ),
        ("receivers: [{name: a, webhook: {url: 'ftp://x'}}]", "receivers[0].webhook.url", "http"),
        ("receivers: [{name: a, webhook: {url: 'http://x', timeout: 0}}]", "timeout", "greater"),
        (
            "receivers: [{name: a, webhook: {url: 'http://x', bearer_token: t,"
            " bearer_token_file: f}}]",
            "receivers[0].webhook",
            "not both",
        ),
        (
            "receivers: [{name: a, webhook: {url: 'http://x'}}, {name: a, webhook: {url: 'http://y'}}]",
            "receivers[1].name",
            "named twice",
        ),
        ("routes: [{receivers: [nobody]}]", "routes[0].receivers", "unknown receiver 'nobody'"),
        (
            "receivers: [{name: a, webhook: {url: 'http://x'}}]\n"
            "routes: [{receivers: [a], escalate_after: 60, escalate_to: [boss]}]",
            "routes[0].escalate_to",
            "unknown receiver 'boss'",
        ),
        (
            "receivers: [{name: a, webhook: {url: 'http://x'}}]\n"
            "routes: [{receivers: [a], escalate_after: 60}]",
            "routes[0]",
            "go together",
        ),
        (
            "receivers: [{name: a, webhook: {url: 'http://x'}}]\n"
            "routes: [{receivers: [a], min_priority: urgent}]",
            "routes[0].min_priority",
            "'low', 'medium', 'high' or 'emergency'",
        ),
        ("routes: [{receivers: []}]", "routes[0].receivers", "at least 1"),
        (
            "receivers: [{name: a, webhook: {url: 'http://x'}}]\n"
            "routes: [{receivers: [a], repeat_interval: -1}]",
            "routes[0].repeat_interval",
            "greater than or equal to 0",
        ),
        ("queue_size: 0", "queue_size", "greater than or equal to 1"),
        ("external_url: nexus", "external_url", "http"),
        ("[1, 2", "", "yaml"),
    ],
)
def test_a_bad_config_is_refused_naming_the_field(text: str, path: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(text, "notify.yaml")
    issue = caught.value.issues[0]
    assert issue.path.endswith(path), issue
    assert message in issue.message, issue
    assert str(caught.value).startswith("notify.yaml: ")


def test_an_unreadable_token_file_fails_the_start(tmp_path: Path) -> None:
    config = validate(
        {"inbound": {"bearer_token_file": str(tmp_path / "missing")}},
    )
    with pytest.raises(ConfigError, match=r"inbound\.bearer_token_file: cannot read"):
        Notifier(config, Journal(), ManualClock(T0))
