"""Alertmanager's webhook as a source of alarms: its payload, read into `ExternalAlert`s.

A Prometheus Alertmanager with a `webhook_config` pointing at
`POST /api/v1/alertmanager/webhook` sends groups of alerts (payload version 4); each alert
becomes an `ExternalAlert` for `AlarmManager.on_external`, which keeps one alarm per asset and
alert name ("<asset>:external:<name>"):

    name      labels.alertname (required)
    asset     labels.asset, else the host of labels.instance ("db-1:9100" -> "db-1"),
              else "external"
    subsystem labels.subsystem, if any
    priority  labels.priority, else labels.severity, read by the table below (case ignored);
              a value not in the table is passed over; neither: medium
    firing    status == "firing" (a resolved alert clears the alarm's condition)
    time      startsAt when firing, endsAt when resolved
    message   annotations.summary, else annotations.description

    emergency, page              -> emergency
    critical, high, error        -> high
    warning, warn, medium        -> medium
    info, low, none              -> low

`critical` is high rather than emergency: Prometheus rules call most things critical that
page someone, and Nexus keeps emergency for a threat to life or a critical asset; a rule that
means emergency says `priority: emergency` (or severity `page`). Nexus's own alarms forwarded to
an Alertmanager carry an `alarm_id` label; coming back through its webhook they are skipped, not
raised a second time.

The model ignores fields it does not know (unlike our configuration models): Alertmanager adds
fields across versions, and refusing a payload would lose its alarms. What it needs is checked,
and an error names the field ("alerts[0].startsAt: ...").
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from safety_nexus.alarms.manager import ExternalAlert
from safety_nexus.core.errors import IngestError
from safety_nexus.core.types import Priority

__all__ = [
    "LEVELS",
    "WebhookAlert",
    "WebhookPayload",
    "external_alerts",
    "parse_rfc3339",
    "parse_webhook",
    "priority_of",
]

SOURCE = "alertmanager"
OWN_LABEL = "alarm_id"  # set on every alarm Nexus forwards (alarms.notify.alarm_labels)
DEFAULT_ASSET = "external"
LEVELS = {
    "emergency": Priority.EMERGENCY,
    "page": Priority.EMERGENCY,
    "critical": Priority.HIGH,
    "high": Priority.HIGH,
    "error": Priority.HIGH,
    "warning": Priority.MEDIUM,
    "warn": Priority.MEDIUM,
    "medium": Priority.MEDIUM,
    "info": Priority.LOW,
    "low": Priority.LOW,
    "none": Priority.LOW,
}
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def parse_rfc3339(text: str) -> float | None:
    """Seconds since the epoch; None for Go's zero time ("0001-01-01T00:00:00Z": not set).
    Fractions beyond microseconds (Go writes nanoseconds) are cut."""
    m = _RFC3339.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"'{text[:40]}' is not an RFC 3339 time")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if year <= 1:
        return None
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    try:
        t = datetime(year, month, day, hour, minute, min(second, 59), micro, tzinfo=UTC)
    except ValueError as err:
        raise ValueError(f"'{text[:40]}' is not a valid time: {err}") from err
    offset = 0
    if m.group(9):
        sign = 1 if m.group(9) == "+" else -1
        offset = sign * (int(m.group(10)) * 3600 + int(m.group(11)) * 60)
    return t.timestamp() - offset


class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: str = Field(alias="startsAt")
    ends_at: str = Field("0001-01-01T00:00:00Z", alias="endsAt")
    generator_url: str = Field("", alias="generatorURL")
    fingerprint: str = ""

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _time(cls, value: str) -> str:
        parse_rfc3339(value)
        return value

    @field_validator("labels")
    @classmethod
    def _alertname(cls, labels: dict[str, str]) -> dict[str, str]:
        if not labels.get("alertname", "").strip():
            raise ValueError("an alert needs the label alertname")
        return labels


class WebhookPayload(BaseModel):
    """What Alertmanager POSTs to a webhook receiver (version 4)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: str = "4"
    group_key: str = Field("", alias="groupKey")
    truncated_alerts: int = Field(0, alias="truncatedAlerts", ge=0)
    status: Literal["firing", "resolved"]
    receiver: str = ""
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field("", alias="externalURL")
    alerts: list[WebhookAlert]


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_webhook(body: bytes | str) -> WebhookPayload:
    """Validate a webhook body. Raises IngestError (400, reason "bad_payload") naming the
    first field that is wrong."""
    try:
        return WebhookPayload.model_validate_json(body)
    except ValidationError as err:
        first = err.errors()[0]
        where = _where(first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        msg = msg[:1].lower() + msg[1:]
        if first["type"] == "json_invalid":
            where, msg = "", f"the body is not json ({first.get('ctx', {}).get('error', msg)})"
        text = f"alertmanager webhook: {where}: {msg}" if where else f"alertmanager webhook: {msg}"
        raise IngestError(text, "bad_payload") from err


def priority_of(labels: dict[str, str]) -> Priority:
    for key in ("priority", "severity"):
        found = LEVELS.get(labels.get(key, "").strip().lower())
        if found is not None:
            return found
    return Priority.MEDIUM


def _host(instance: str) -> str:
    """ "db-1:9100" -> "db-1", "https://db-1.example/x" -> "db-1.example", "[::1]:9100" -> "::1"."""
    text = instance.strip()
    if "://" in text:
        return urlsplit(text).hostname or text
    if text.startswith("[") and "]" in text:
        return text[1 : text.index("]")]
    if text.count(":") == 1:
        return text.split(":", 1)[0]
    return text


def external_alerts(payload: WebhookPayload) -> list[ExternalAlert]:
    """The payload's alerts for `AlarmManager.on_external`, in order; Nexus's own alarms that
    came back through the Alertmanager (label alarm_id) are left out."""
    out: list[ExternalAlert] = []
    for i, alert in enumerate(payload.alerts):
        labels = alert.labels
        if OWN_LABEL in labels:
            continue
        firing = alert.status == "firing"
        when = parse_rfc3339(alert.starts_at if firing else alert.ends_at)
        if when is None:
            field = "startsAt" if firing else "endsAt"
            state = "a firing" if firing else "a resolved"
            raise IngestError(
                f"alertmanager webhook: alerts[{i}].{field}: {state} alert needs this time",
                "bad_payload",
            )
        asset = labels.get("asset", "").strip()
        if not asset and labels.get("instance", "").strip():
            asset = _host(labels["instance"])
        notes = alert.annotations
        out.append(
            ExternalAlert(
                name=labels["alertname"].strip(),
                asset=asset or DEFAULT_ASSET,
                time=when,
                firing=firing,
                priority=priority_of(labels),
                message=(notes.get("summary") or notes.get("description") or "").strip(),
                source=SOURCE,
                subsystem=labels.get("subsystem", "").strip() or None,
            )
        )
    return out
