"""Alertmanager's webhook payload read into ExternalAlerts: the mapping of labels, times and
statuses, Nexus's own alarms skipped, and errors that name the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from safety_nexus.alarms.alertmanager import (
    external_alerts,
    parse_rfc3339,
    parse_webhook,
    priority_of,
)
from safety_nexus.alarms.manager import ExternalAlert
from safety_nexus.alarms.notify import alarm_labels, rfc3339
from safety_nexus.core.errors import IngestError
from safety_nexus.core.types import Alarm, AlarmState, FindingKind, Priority

STARTS = "2026-06-01T08:00:00.123456789Z"
T_STARTS = 1_780_300_800.123456


def alert(labels: dict[str, str], status: str = "firing", **fields: Any) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "DiskFull", **labels},
        "annotations": {"summary": "disk is 97% full", "description": "longer"},
        "startsAt": STARTS,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
        "fingerprint": "1a30ba71cca2921f",
        **fields,
    }


def payload(*alerts: dict[str, Any], status: str = "firing", **fields: Any) -> bytes:
    body = {
        "receiver": "nexus",
        "status": status,
        "alerts": list(alerts),
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": '{}:{alertname="DiskFull"}',
        "truncatedAlerts": 0,
        "someFieldOfALaterVersion": {"ignored": True},
        **fields,
    }
    return json.dumps(body).encode()


def test_a_firing_alert_becomes_an_external_alert() -> None:
    got = external_alerts(parse_webhook(payload(alert({"instance": "db-1:9100"}))))
    assert got == [
        ExternalAlert(
            name="DiskFull",
            asset="db-1",
            time=pytest.approx(T_STARTS, abs=1e-6),  # type: ignore[arg-type]
            firing=True,
            priority=Priority.MEDIUM,
            message="disk is 97% full",
            source="alertmanager",
            subsystem=None,
        )
    ]


def test_a_resolved_alert_clears_at_its_end() -> None:
    ended = alert(
        {"asset": "pump-1", "subsystem": "water"},
        status="resolved",
        endsAt="2026-06-01T10:00:00+02:00",
    )
    [got] = external_alerts(parse_webhook(payload(ended, status="resolved")))
    assert not got.firing
    assert got.time == 1_780_300_800.0  # 08:00 UTC
    assert (got.asset, got.subsystem) == ("pump-1", "water")


@pytest.mark.parametrize(
    ("labels", "asset"),
    [
        ({"asset": "pump-1", "instance": "db-1:9100"}, "pump-1"),
        ({"instance": "db-1:9100"}, "db-1"),
        ({"instance": "db-1"}, "db-1"),
        ({"instance": "https://server.example.org/health"}, "server.example.org"),
        ({"instance": "[::1]:9100"}, "::1"),
        ({}, "external"),
        ({"asset": "  "}, "external"),
    ],
)
def test_the_asset_is_the_asset_label_else_the_instance_host(
    labels: dict[str, str], asset: str
) -> None:
    [got] = external_alerts(parse_webhook(payload(alert(labels))))
    assert got.asset == asset


@pytest.mark.parametrize(
    ("labels", "priority"),
    [
        ({"severity": "critical"}, Priority.HIGH),
        ({"severity": "CRITICAL"}, Priority.HIGH),
        ({"severity": "page"}, Priority.EMERGENCY),
        ({"severity": "emergency"}, Priority.EMERGENCY),
        ({"severity": "warning"}, Priority.MEDIUM),
        ({"severity": "info"}, Priority.LOW),
        ({"severity": "P1"}, Priority.MEDIUM),  # unknown: the default
        ({}, Priority.MEDIUM),
        ({"priority": "emergency", "severity": "info"}, Priority.EMERGENCY),
        ({"priority": "p0", "severity": "critical"}, Priority.HIGH),  # unknown priority: passed
    ],
)
def test_priority_from_the_priority_label_else_the_severity(
    labels: dict[str, str], priority: Priority
) -> None:
    assert priority_of(labels) is priority


def test_every_priority_goes_round_through_the_labels_nexus_sends() -> None:
    for p in Priority:
        alarm = Alarm(
            id="pump-1:spike",
            asset="pump-1",
            subsystem="water",
            kind=FindingKind.SPIKE,
            priority=p,
            state=AlarmState.UNACKNOWLEDGED,
            first_seen=0.0,
            last_seen=0.0,
        )
        labels = alarm_labels(alarm)
        assert priority_of(labels) is p
        assert priority_of({"severity": labels["severity"]}) is p


def test_nexus_own_alarms_coming_back_are_skipped() -> None:
    ours = alert({"alarm_id": "pump-1:spike", "asset": "pump-1"})
    theirs = alert({"instance": "db-1:9100"})
    body = parse_webhook(payload(ours, theirs))
    assert [a.asset for a in external_alerts(body)] == ["db-1"]


def test_the_message_is_the_summary_else_the_description() -> None:
    no_summary = alert({}, annotations={"description": "the long story"})
    nothing = alert({}, annotations={})
    got = external_alerts(parse_webhook(payload(no_summary, nothing)))
    assert [a.message for a in got] == ["the long story", ""]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "the body is not json"),
        (payload(alert({}), status="pending"), "status: input should be 'firing' or 'resolved'"),
        (payload(alert({"alertname": ""})), "alerts[0].labels: an alert needs the label alertname"),
        (payload(alert({}, startsAt="yesterday")), "alerts[0].startsAt: 'yesterday' is not"),
        (payload(alert({}, startsAt="2026-13-01T00:00:00Z")), "alerts[0].startsAt:"),
        (payload(alert({"alertname": 3})), "alerts[0].labels.alertname:"),  # type: ignore[dict-item]
        (payload(alerts="none"), "alerts: input should be a valid array"),
    ],
)
def test_a_bad_payload_is_refused_naming_the_field(body: bytes, message: str) -> None:
    with pytest.raises(IngestError) as caught:
        parse_webhook(body)
    assert caught.value.reason == "bad_payload"
    assert caught.value.status == 400
    assert message in str(caught.value), str(caught.value)


def test_a_resolved_alert_without_its_end_is_refused() -> None:
    body = parse_webhook(payload(alert({}, status="resolved"), status="resolved"))
    with pytest.raises(IngestError, match=r"alerts\[0\]\.endsAt: a resolved alert needs"):
        external_alerts(body)


@pytest.mark.parametrize(
    ("text", "t"),
    [
        ("2026-06-01T08:00:00Z", 1_780_300_800.0),
        ("2026-06-01T08:00:00.5Z", 1_780_300_800.5),
        ("2026-06-01t08:00:00.000000001z", 1_780_300_800.0),
        ("2026-06-01T09:30:00+01:30", 1_780_300_800.0),
        ("2026-06-01T06:00:00-02:00", 1_780_300_800.0),
        ("0001-01-01T00:00:00Z", None),
    ],
)
def test_rfc3339_times(text: str, t: float | None) -> None:
    assert parse_rfc3339(text) == t
    if t is not None:
        assert parse_rfc3339(rfc3339(t)) == t  # what the notifier writes reads back


@pytest.mark.parametrize("text", ["2026-06-01", "2026-06-01 08:00:00Z", "2026-06-01T08:00:00"])
def test_rfc3339_needs_date_time_and_zone(text: str) -> None:
    with pytest.raises(ValueError, match="not an RFC 3339 time"):
        parse_rfc3339(text)
