"""Alarm notifications: routes to webhooks (in Alertmanager's webhook format) and forwarding to a
Prometheus Alertmanager.

The runtime registers `Notifier.on_alarm` with `AlarmManager.subscribe`, so the notifier sees a
copy of every alarm that changed. An alarm *fires* while it is on the operators' list with its
condition active (`alarm.open and alarm.condition`) and *resolves* when it leaves that: it
clears, or is shelved, suppressed or taken out of service. Only those changes are sent, plus:

- repeats: while an alarm fires unacknowledged, every `repeat_interval` of the route that
  named the receiver (webhooks only: an Alertmanager repeats by its own rules);
- escalation: a route's `escalate_after` seconds after an alarm started firing, if it is still
  unacknowledged, its `escalate_to` receivers are told too (once per firing, journalled);
- updates: when an alarm's labels change while it fires (its priority rose), everyone already
  told is told again, and an Alertmanager gets the old label set resolved;
- keep-alives: an Alertmanager forgets an alert `resolve_timeout` after it last heard of it,
  so every firing alarm it holds is posted again each `resend_interval` (real seconds, as that
  timeout is on Alertmanager's wall clock).

Routes are tried in order; the first that matches an alarm (by subsystem and minimum priority)
wins unless it says `continue: true`, as in Alertmanager's routing tree, flattened. A receiver
that a later change or an escalation adds is told then; a resolution goes to everyone told.
Alarms raised from Alertmanager alerts (kind external) are never forwarded to an Alertmanager:
that one already has them, and the loop would be endless.

Delivery never blocks the alarm pipeline (whose lock is held while listeners run): `on_alarm`
only decides and queues. Each receiver has its own bounded queue and thread, so a dead webhook
does not delay the others; a failed delivery is retried with exponential backoff (on
connection errors, timeouts, 5xx, 408 and 429; other answers are final), a full queue drops
the notification (counted, logged). Every notification sent or given up is journalled
("notify.sent", "notify.failed", "notify.escalated": the audit log shows who was told what);
keep-alives are journalled only when a receiver starts failing. Messages name the receiver,
never its URL or token.

Times in payloads are the injected clock's (alarm time), RFC 3339 in UTC; sleeping, backoff and
keep-alive intervals are real time.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import math
import queue
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import quote, urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from safety_nexus import __version__
from safety_nexus.core.clock import Clock
from safety_nexus.core.closing import Closeable
from safety_nexus.core.errors import AlarmError, ConfigError, ConfigIssue, NexusError
from safety_nexus.core.types import Alarm, AlarmState, FindingKind, Priority

__all__ = [
    "ZERO_TIME",
    "AlertmanagerReceiver",
    "DeliveryError",
    "InboundConfig",
    "Notifier",
    "NotifyConfig",
    "NotifyJournal",
    "Receiver",
    "ReceiverStats",
    "Route",
    "WebhookReceiver",
    "alarm_labels",
    "http_post",
    "load",
    "load_file",
    "rfc3339",
]

log = logging.getLogger(__name__)

ACTOR = "notifier"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time: "not ended" in Alertmanager's payloads
PriorityLabel = Literal["low", "medium", "high", "emergency"]
# Severity label for each priority; the inverse of what `alarms.alertmanager` reads, so an
# alert that goes round (Nexus → Alertmanager → Nexus) keeps its priority.
SEVERITY = {
    Priority.LOW: "info",
    Priority.MEDIUM: "warning",
    Priority.HIGH: "critical",
    Priority.EMERGENCY: "emergency",
}
UNACKNOWLEDGED = frozenset({AlarmState.UNACKNOWLEDGED, AlarmState.RETURNED_UNACKNOWLEDGED})
AM_BATCH = 64  # queued alerts for one Alertmanager that go out in one POST


# -- configuration ---------------------------------------------------------------------------


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// url")
    return url


class _Bearer(BaseModel):
    """An optional bearer token, inline or in a file (read when the notifier starts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bearer_token: SecretStr | None = None
    bearer_token_file: Path | None = None

    @field_validator("bearer_token_file")
    @classmethod
    def _relative_to_config(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        base = (info.context or {}).get("base_dir")
        if path is not None and not path.is_absolute() and base is not None:
            return Path(base) / path
        return path

    @model_validator(mode="after")
    def _one_token(self) -> _Bearer:
        if self.bearer_token is not None and self.bearer_token_file is not None:
            raise ValueError("give bearer_token or bearer_token_file, not both")
        return self

    def token(self, where: str) -> str | None:
        if self.bearer_token is not None:
            return self.bearer_token.get_secret_value()
        if self.bearer_token_file is None:
            return None
        try:
            text = self.bearer_token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(
                [ConfigIssue(f"{where}.bearer_token_file", f"cannot read the token: {err}")]
            ) from err
        if not text:
            raise ConfigError([ConfigIssue(f"{where}.bearer_token_file", "the file is empty")])
        return text


class WebhookReceiver(_Bearer):
    url: str
    timeout: float = Field(10.0, gt=0, le=300, allow_inf_nan=False)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return _check_url(url)


class AlertmanagerReceiver(_Bearer):
    url: str = Field(description="base url; alerts go to {url}/api/v2/alerts")
    timeout: float = Field(10.0, gt=0, le=300, allow_inf_nan=False)
    resend_interval: float = Field(
        60.0,
        gt=0,
        allow_inf_nan=False,
        description="real seconds between posts of a firing alarm (below resolve_timeout)",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return _check_url(url)


class Receiver(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    webhook: WebhookReceiver | None = None
    alertmanager: AlertmanagerReceiver | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Receiver:
        if (self.webhook is None) == (self.alertmanager is None):
            raise ValueError(f"receiver '{self.name}' needs one of webhook or alertmanager")
        return self

    @property
    def endpoint(self) -> WebhookReceiver | AlertmanagerReceiver:
        found = self.webhook or self.alertmanager
        assert found is not None  # checked by _one_kind
        return found

    @property
    def kind(self) -> Literal["webhook", "alertmanager"]:
        return "webhook" if self.webhook is not None else "alertmanager"


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    subsystems: list[str] = Field(default_factory=list, description="empty: any subsystem")
    min_priority: PriorityLabel = "low"
    receivers: list[str] = Field(min_length=1)
    continue_: bool = Field(
        False, alias="continue", description="also try the routes after this one"
    )
    repeat_interval: float = Field(
        3600.0,
        ge=0,
        allow_inf_nan=False,
        description="seconds between repeats while unacknowledged (0: never)",
    )
    escalate_after: float | None = Field(None, gt=0, allow_inf_nan=False)
    escalate_to: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _escalation(self) -> Route:
        if (self.escalate_after is None) != (not self.escalate_to):
            raise ValueError("escalate_after and escalate_to go together")
        return self

    def matches(self, alarm: Alarm) -> bool:
        if self.subsystems and alarm.subsystem not in self.subsystems:
            return False
        return alarm.priority >= Priority[self.min_priority.upper()]


class InboundConfig(_Bearer):
    """The Alertmanager webhook Nexus receives (`POST /api/v1/alertmanager/webhook`): with a
    token, a request must carry `Authorization: Bearer <token>` (Alertmanager's
    `http_config.authorization`)."""


class NotifyConfig(BaseModel):
    """Who is told about which alarms. No routes (the default): nobody is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    external_url: str | None = Field(
        None, description="where Nexus is reachable: links in payloads (generatorURL)"
    )
    receivers: list[Receiver] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    retries: int = Field(3, ge=0, le=20, description="attempts after the first one")
    backoff: float = Field(1.0, gt=0, le=600, allow_inf_nan=False)
    max_backoff: float = Field(60.0, gt=0, allow_inf_nan=False)
    queue_size: int = Field(1000, ge=1, le=1_000_000)
    inbound: InboundConfig = Field(default_factory=InboundConfig)

    @field_validator("external_url")
    @classmethod
    def _external_url(cls, url: str | None) -> str | None:
        return None if url is None else _check_url(url).rstrip("/")

    @model_validator(mode="after")
    def _references(self) -> NotifyConfig:
        names: set[str] = set()
        for i, receiver in enumerate(self.receivers):
            if receiver.name in names:
                raise ValueError(f"receivers[{i}].name: receiver '{receiver.name}' is named twice")
            names.add(receiver.name)
        for i, route in enumerate(self.routes):
            for what in ("receivers", "escalate_to"):
                for name in getattr(route, what):
                    if name not in names:
                        raise ValueError(f"routes[{i}].{what}: unknown receiver '{name}'")
        return self

    def receiver(self, name: str) -> Receiver:
        return next(r for r in self.receivers if r.name == name)


_FIELD_FIRST = re.compile(r"([A-Za-z_][\w.\[\]]*): ")


def _loc(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validate(data: object, source: str = "", *, base_dir: Path | None = None) -> NotifyConfig:
    """A `NotifyConfig` from parsed data; every problem in one ConfigError naming its field."""
    try:
        return NotifyConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as err:
        issues = []
        for e in err.errors():
            msg = e["msg"].removeprefix("Value error, ")
            path = _loc(e["loc"])
            named = _FIELD_FIRST.match(msg)
            if not path and named:  # a cross-field check names its own field
                path, msg = named.group(1), msg[named.end() :]
            issues.append(ConfigIssue(path, msg.lower() if msg[:1].isupper() else msg))
        raise ConfigError(issues, source) from err


def load(text: str, source: str = "<string>", *, base_dir: Path | None = None) -> NotifyConfig:
    """Parse a notification config (YAML, so JSON too)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError([ConfigIssue("", f"yaml: {err}")], source) from err
    return validate({} if data is None else data, source, base_dir=base_dir)


def load_file(path: str | Path) -> NotifyConfig:
    """Load a notification config file; relative token files are relative to its folder."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([ConfigIssue("", f"cannot read {path}: {err}")], str(path)) from err
    return load(text, str(path), base_dir=Path(path).parent)


# -- payloads --------------------------------------------------------------------------------


def rfc3339(t: float) -> str:
    """Seconds since the epoch as RFC 3339 in UTC, fraction only when there is one."""
    dt = datetime.fromtimestamp(t, UTC)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}".rstrip("0")
    return text + "Z"


def alarm_labels(alarm: Alarm) -> dict[str, str]:
    """An alarm's identity as Alertmanager labels (empty values left out, as Alertmanager
    treats an empty label as absent)."""
    labels = {
        "alertname": alarm.kind.value,
        "alarm_id": alarm.id,
        "asset": alarm.asset,
        "subsystem": alarm.subsystem,
        "priority": alarm.priority.label,
        "position": alarm.position,
        "severity": SEVERITY[alarm.priority],
    }
    return {k: v for k, v in labels.items() if v}


def _annotations(alarm: Alarm) -> dict[str, str]:
    out = {"summary": alarm.message, "state": alarm.state.value}
    if alarm.root_cause:
        out["root_cause"] = alarm.root_cause
    if alarm.incident:
        out["incident"] = alarm.incident
    return {k: v for k, v in out.items() if v}


def _fingerprint(labels: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for key in sorted(labels):
        digest.update(f"{key}\xff{labels[key]}\xff".encode())
    return digest.hexdigest()[:16]


# -- delivery --------------------------------------------------------------------------------


class DeliveryError(AlarmError):
    """A notification could not be delivered; `retry` says whether trying again may help."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


Transport = Callable[[str, bytes, Mapping[str, str], float], None]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected POST would arrive as a GET without its body: refuse it instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# Explicit, not from the environment (as Alertmanager's own HTTP client): a proxy variable set
# for something else must not reroute alarms.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def http_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> None:
    """POST `body`; any 2xx is success. Raises DeliveryError (retry on connection errors,
    timeouts, 5xx, 408 and 429)."""
    req = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            resp.read(1 << 16)
    except urllib.error.HTTPError as err:
        code = err.code
        raise DeliveryError(f"answered {code}", retry=code >= 500 or code in (408, 429)) from err
    except (OSError, http.client.HTTPException) as err:  # URLError and timeouts are OSErrors
        reason = getattr(err, "reason", None) or err
        raise DeliveryError(f"{type(err).__name__}: {reason}", retry=True) from err


class NotifyJournal(Protocol):
    """Where notifications are journalled (the embedded store implements it)."""

    def add_event(
        self, time: float, kind: str, actor: str, subject: str, data: Mapping[str, object]
    ) -> int: ...


@dataclass(frozen=True, slots=True)
class _Message:
    """One notification for one receiver: a whole webhook payload, or Alertmanager alerts."""

    receiver: str
    status: Literal["firing", "resolved"]
    reason: str  # change, update, repeat, escalation, keepalive
    subjects: tuple[str, ...]  # alarm ids
    payload: Any  # webhook: the JSON object; Alertmanager: a list of postable alerts
    data: Mapping[str, object] = field(default_factory=dict)  # journal details

    @property
    def journalled(self) -> bool:
        return self.reason != "keepalive"


@dataclass(slots=True)
class ReceiverStats:
    sent: int = 0  # notifications delivered (an Alertmanager post may carry several)
    failed: int = 0  # given up after the retries
    dropped: int = 0  # the queue was full, or closing ran out of time


@dataclass(slots=True)
class _Channel:
    receiver: Receiver
    token: str | None
    queue: queue.Queue[_Message]
    stats: ReceiverStats = field(default_factory=ReceiverStats)
    healthy: bool = True
    thread: threading.Thread | None = None
    dropped_logged_at: float = -math.inf

    @property
    def url(self) -> str:
        base = self.receiver.endpoint.url
        return base.rstrip("/") + "/api/v2/alerts" if self.receiver.alertmanager else base


@dataclass(slots=True)
class _Target:
    """A receiver told about a firing alarm."""

    receiver: str
    repeat: float  # seconds between repeats while unacknowledged, 0: none
    last_sent: float  # clock time
    labels: dict[str, str]  # the labels it was last sent


@dataclass(slots=True)
class _Firing:
    alarm: Alarm
    starts_at: float
    routes: list[int] = field(default_factory=list)  # every route it has matched
    targets: dict[str, _Target] = field(default_factory=dict)
    escalated: set[int] = field(default_factory=set)  # routes whose escalation was done


class Notifier(Closeable):
    """Sends alarm notifications by the routes of a `NotifyConfig`; thread-safe.

    `on_alarm` (the manager's listener) and `tick` (time passing: repeats, escalations,
    keep-alives; called every `tick_every` real seconds by a thread of its own once started,
    or by hand with `tick_every=None`) only queue; `start` starts the delivery threads and
    `close` stops them, delivering what is queued within its timeout.
    """

    def __init__(
        self,
        config: NotifyConfig,
        journal: NotifyJournal,
        clock: Clock,
        *,
        transport: Transport = http_post,
        tick_every: float | None = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._journal = journal
        self._clock = clock
        self._transport = transport
        self._tick_every = tick_every
        self._monotonic = monotonic
        self.inbound_token = config.inbound.token("inbound")
        self._channels = {
            r.name: _Channel(
                r, r.endpoint.token(f"receivers[{i}].{r.kind}"), queue.Queue(config.queue_size)
            )
            for i, r in enumerate(config.receivers)
        }
        self._lock = threading.Lock()
        self._firing: dict[str, _Firing] = {}
        self._resolved_at: dict[str, float] = {}  # alarm id -> clock time it last resolved
        self._kept_alive: dict[str, float] = {}  # Alertmanager receiver -> monotonic time
        self._idle = threading.Condition()
        self._pending = 0
        self._stop = threading.Event()  # closing: no new waits, threads end when drained
        self._abort = threading.Event()  # closing ran out of time: drop what is left
        self._ticker: threading.Thread | None = None
        self._started = self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether any route can send anything."""
        return bool(self.config.routes)

    def start(self) -> None:
        if self._started or self._closed or not self.active:
            return
        self._started = True
        for ch in self._channels.values():
            ch.thread = threading.Thread(
                target=self._deliver, args=(ch,), name=f"nexus-notify-{ch.receiver.name}"
            )
            ch.thread.daemon = True
            ch.thread.start()
        if self._tick_every is not None:
            self._ticker = threading.Thread(target=self._tick_loop, name="nexus-notify-tick")
            self._ticker.daemon = True
            self._ticker.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop ticking, deliver what is queued (one attempt each, no more backoff) for up to
        `timeout` seconds, then drop the rest (counted and logged)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        deadline = time.monotonic() + timeout
        if self._ticker is not None:
            self._ticker.join(timeout=max(0.0, deadline - time.monotonic()))
        for ch in self._channels.values():
            if ch.thread is not None:
                ch.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._abort.set()
        for ch in self._channels.values():
            if ch.thread is not None:
                ch.thread.join(timeout=1.0)  # after its current attempt at most
            left = 0
            while True:
                try:
                    ch.queue.get_nowait()
                except queue.Empty:
                    break
                left += 1
            if left:
                ch.stats.dropped += left
                self._done(left)
                log.warning("closing: %d notification(s) for %s not sent", left, ch.receiver.name)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued has been delivered or given up (tests, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def stats(self) -> dict[str, ReceiverStats]:
        return {name: ch.stats for name, ch in self._channels.items()}

    def firing(self) -> list[str]:
        """Ids of the alarms the notifier holds as firing."""
        with self._lock:
            return sorted(self._firing)

    # -- deciding ----------------------------------------------------------------------------

    def on_alarm(self, alarm: Alarm) -> None:
        """An alarm changed (the manager's listener): queue what must be sent, nothing more.
        Never raises: the manager calls it holding its lock, on the pipeline's thread."""
        if not self.active or self._closed:
            return
        try:
            self._on_alarm(alarm)
        except Exception:
            log.exception("notifications for alarm %s failed", alarm.id)

    def _on_alarm(self, alarm: Alarm) -> None:
        now = self._clock.now()
        with self._lock:
            tracked = self._firing.get(alarm.id)
            if alarm.open and alarm.condition:
                if tracked is None:
                    starts = alarm.first_seen
                    if starts <= self._resolved_at.pop(alarm.id, -math.inf):
                        starts = now  # fires again within the same occurrence
                    tracked = self._firing[alarm.id] = _Firing(alarm, starts)
                else:
                    tracked.alarm = alarm
                    labels = alarm_labels(alarm)
                    for target in tracked.targets.values():
                        if target.labels != labels:
                            self._send(tracked, target, "firing", "update", now)
                self._route(tracked, now, send=True)
            elif tracked is not None:
                del self._firing[alarm.id]
                self._resolved_at[alarm.id] = now
                tracked.alarm = alarm
                for target in tracked.targets.values():
                    self._send(tracked, target, "resolved", "change", now)

    def restore(self, alarms: Iterable[Alarm]) -> None:
        """Firing alarms restored after a restart: taken as already notified (nothing is sent
        now), so that their repeats, escalations and resolutions follow, and an Alertmanager
        gets them again with the next keep-alive."""
        if not self.active:
            return
        now = self._clock.now()
        with self._lock:
            for alarm in alarms:
                if alarm.open and alarm.condition and alarm.id not in self._firing:
                    tracked = self._firing[alarm.id] = _Firing(alarm, alarm.first_seen)
                    self._route(tracked, now, send=False)

    def tick(self) -> None:
        """Time passed: repeats, escalations and Alertmanager keep-alives that are due."""
        if not self.active or self._closed:
            return
        now, mono = self._clock.now(), self._monotonic()
        escalations: list[tuple[str, dict[str, object]]] = []
        with self._lock:
            for tracked in self._firing.values():
                if tracked.alarm.state in UNACKNOWLEDGED:
                    escalations += self._escalate(tracked, now)
                    self._repeat(tracked, now)
            self._keep_alive(now, mono)
        for subject, data in escalations:
            self._record(now, "notify.escalated", subject, data)

    def _route(self, tracked: _Firing, now: float, *, send: bool) -> None:
        """Match the routes; receivers not yet told get the alarm (when `send`)."""
        for i, route in enumerate(self.config.routes):
            if not route.matches(tracked.alarm):
                continue
            if i not in tracked.routes:
                tracked.routes.append(i)
            for name in route.receivers:
                self._add_target(tracked, name, route, now, "change" if send else None)
            if not route.continue_:
                break

    def _add_target(
        self, tracked: _Firing, name: str, route: Route, now: float, reason: str | None
    ) -> bool:
        if name in tracked.targets or not self._forwards(name, tracked.alarm):
            return False
        target = _Target(name, route.repeat_interval, now, alarm_labels(tracked.alarm))
        tracked.targets[name] = target
        if reason is not None:
            self._send(tracked, target, "firing", reason, now)
        return True

    def _forwards(self, receiver: str, alarm: Alarm) -> bool:
        is_am = self._channels[receiver].receiver.alertmanager is not None
        return not (is_am and alarm.kind is FindingKind.EXTERNAL)

    def _escalate(self, tracked: _Firing, now: float) -> list[tuple[str, dict[str, object]]]:
        out: list[tuple[str, dict[str, object]]] = []
        for i in tracked.routes:
            route = self.config.routes[i]
            after = route.escalate_after
            if after is None or i in tracked.escalated or now - tracked.starts_at < after:
                continue
            tracked.escalated.add(i)
            told = [
                name
                for name in route.escalate_to
                if self._add_target(tracked, name, route, now, "escalation")
            ]
            alarm = tracked.alarm
            data: dict[str, object] = {
                "route": i,
                "receivers": told,
                "escalate_after": after,
                "unacknowledged_for": now - tracked.starts_at,
                "priority": alarm.priority.label,
                "state": alarm.state.value,
            }
            out.append((alarm.id, data))
        return out

    def _repeat(self, tracked: _Firing, now: float) -> None:
        for target in tracked.targets.values():
            if self._channels[target.receiver].receiver.webhook is None or target.repeat <= 0:
                continue
            if now - target.last_sent >= target.repeat:
                self._send(tracked, target, "firing", "repeat", now)

    def _keep_alive(self, now: float, mono: float) -> None:
        for name, ch in self._channels.items():
            am = ch.receiver.alertmanager
            if am is None or mono - self._kept_alive.get(name, -math.inf) < am.resend_interval:
                continue
            self._kept_alive[name] = mono
            held = [t for t in self._firing.values() if name in t.targets]
            if not held:
                continue
            alerts: list[dict[str, object]] = []
            for tracked in held:
                alerts += self._am_alerts(tracked, tracked.targets[name], "firing", now)
            ids = tuple(t.alarm.id for t in held)
            self._enqueue(_Message(name, "firing", "keepalive", ids, alerts))

    # -- building ----------------------------------------------------------------------------

    def _send(
        self,
        tracked: _Firing,
        target: _Target,
        status: Literal["firing", "resolved"],
        reason: str,
        now: float,
    ) -> None:
        alarm = tracked.alarm
        ch = self._channels[target.receiver]
        payload: object
        if ch.receiver.alertmanager is not None:
            payload = self._am_alerts(tracked, target, status, now)
        else:
            payload = self._webhook(tracked, target.receiver, status, now)
        target.last_sent = now
        target.labels = alarm_labels(alarm)
        data: dict[str, object] = {
            "receiver": target.receiver,
            "kind": ch.receiver.kind,
            "status": status,
            "reason": reason,
            "priority": alarm.priority.label,
            "state": alarm.state.value,
        }
        self._enqueue(_Message(target.receiver, status, reason, (alarm.id,), payload, data))

    def _alert(
        self, tracked: _Firing, labels: dict[str, str], status: str, now: float
    ) -> dict[str, object]:
        """One alert as Alertmanager shows it in webhooks."""
        alarm = tracked.alarm
        if status == "firing":
            ends = ZERO_TIME
        else:
            cleared = alarm.cleared_at if not alarm.condition else None
            ends = rfc3339(cleared if cleared is not None and cleared >= tracked.starts_at else now)
        return {
            "status": status,
            "labels": labels,
            "annotations": _annotations(alarm),
            "startsAt": rfc3339(tracked.starts_at),
            "endsAt": ends,
            "generatorURL": self._link(alarm),
            "fingerprint": _fingerprint(labels),
        }

    def _link(self, alarm: Alarm) -> str:
        base = self.config.external_url
        return f"{base}/api/v1/alarms/{quote(alarm.id, safe='')}" if base else ""

    def _webhook(
        self, tracked: _Firing, receiver: str, status: str, now: float
    ) -> dict[str, object]:
        """Alertmanager's webhook payload (version 4) for a group of this one alarm."""
        alert = self._alert(tracked, alarm_labels(tracked.alarm), status, now)
        group = {"alarm_id": tracked.alarm.id}
        return {
            "version": "4",
            "groupKey": "{}:{alarm_id=" + json.dumps(tracked.alarm.id) + "}",
            "truncatedAlerts": 0,
            "status": status,
            "receiver": receiver,
            "groupLabels": group,
            "commonLabels": alert["labels"],
            "commonAnnotations": alert["annotations"],
            "externalURL": self.config.external_url or "",
            "alerts": [alert],
        }

    def _am_alerts(
        self, tracked: _Firing, target: _Target, status: str, now: float
    ) -> list[dict[str, object]]:
        """Postable alerts (POST /api/v2/alerts): the alarm, and its old label set resolved
        when the labels changed (Alertmanager tells alerts apart by their labels)."""
        labels = alarm_labels(tracked.alarm)
        out = [self._postable(self._alert(tracked, labels, status, now))]
        if target.labels != labels:
            old = self._alert(tracked, target.labels, "resolved", now)
            out.insert(0, self._postable({**old, "endsAt": rfc3339(now)}))
        return out

    @staticmethod
    def _postable(alert: dict[str, object]) -> dict[str, object]:
        out = {k: alert[k] for k in ("labels", "annotations", "startsAt", "generatorURL")}
        if alert["endsAt"] != ZERO_TIME:  # firing: no end, Alertmanager's resolve_timeout
            out["endsAt"] = alert["endsAt"]
        if not out["generatorURL"]:
            del out["generatorURL"]
        return out

    # -- sending -----------------------------------------------------------------------------

    def _enqueue(self, message: _Message) -> None:
        ch = self._channels[message.receiver]
        with self._idle:
            self._pending += 1
        try:
            ch.queue.put_nowait(message)
        except queue.Full:  # the receiver is down or slow: keep the pipeline going
            self._dropped(ch, 1)

    def _dropped(self, ch: _Channel, n: int) -> None:
        ch.stats.dropped += n
        self._done(n)
        mono = time.monotonic()
        if mono - ch.dropped_logged_at >= 60.0:
            ch.dropped_logged_at = mono
            log.warning(
                "notification queue of %s is full (%d): %d dropped so far",
                ch.receiver.name,
                self.config.queue_size,
                ch.stats.dropped,
            )

    def _done(self, n: int) -> None:
        with self._idle:
            self._pending -= n
            self._idle.notify_all()

    def _tick_loop(self) -> None:
        assert self._tick_every is not None
        while not self._stop.wait(self._tick_every):
            try:
                self.tick()
            except Exception:
                log.exception("notification tick failed")

    def _deliver(self, ch: _Channel) -> None:
        """The receiver's thread: send in order, retrying each message before the next."""
        while not self._abort.is_set():
            try:
                first = ch.queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            batch = [first]
            while ch.receiver.alertmanager is not None and len(batch) < AM_BATCH:
                try:
                    batch.append(ch.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._deliver_batch(ch, batch)
            except Exception:  # a bug here must not silence the receiver for good
                log.exception("delivering to %s failed", ch.receiver.name)
            finally:
                self._done(len(batch))

    def _deliver_batch(self, ch: _Channel, batch: list[_Message]) -> None:
        if ch.receiver.alertmanager is not None:
            body: object = [alert for m in batch for alert in m.payload]
        else:
            body = batch[0].payload
        encoded = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": f"safety-nexus/{__version__}"}
        if ch.token is not None:
            headers["Authorization"] = f"Bearer {ch.token}"
        attempts, error = self._attempt(ch, encoded, headers)
        now = self._clock.now()
        if error is None:
            ch.stats.sent += len(batch)
            if not ch.healthy:
                log.info("notifications to %s are delivered again", ch.receiver.name)
            ch.healthy = True
            for m in batch:
                if m.journalled:
                    self._record(
                        now, "notify.sent", m.subjects[0], {**m.data, "attempts": attempts}
                    )
            return
        ch.stats.failed += len(batch)
        log.warning(
            "notification to %s failed after %d attempt(s): %s", ch.receiver.name, attempts, error
        )
        was_healthy, ch.healthy = ch.healthy, False
        for m in batch:
            if m.journalled:
                data = {**m.data, "attempts": attempts, "error": error}
                self._record(now, "notify.failed", m.subjects[0], data)
            elif was_healthy:  # a keep-alive: journalled when the receiver starts failing
                data = {
                    "receiver": ch.receiver.name,
                    "kind": ch.receiver.kind,
                    "reason": m.reason,
                    "alarms": list(m.subjects[:50]),
                    "attempts": attempts,
                    "error": error,
                }
                self._record(now, "notify.failed", f"receiver:{ch.receiver.name}", data)
                was_healthy = False

    def _attempt(
        self, ch: _Channel, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, str | None]:
        """Send with retries and backoff; (attempts made, last error or None)."""
        endpoint = ch.receiver.endpoint
        attempt = 0
        while True:
            attempt += 1
            try:
                self._transport(ch.url, body, headers, endpoint.timeout)
            except DeliveryError as err:
                error = str(err)
                if not err.retry or attempt > self.config.retries or self._stop.is_set():
                    return attempt, error
            else:
                return attempt, None
            delay = min(self.config.max_backoff, self.config.backoff * 2 ** (attempt - 1))
            if self._stop.wait(delay):  # closing: no more waiting
                return attempt, error

    def _record(self, now: float, kind: str, subject: str, data: Mapping[str, object]) -> None:
        try:
            self._journal.add_event(now, kind, ACTOR, subject, data)
        except NexusError as err:  # the journal closed under us (shutdown): say so, go on
            log.warning("cannot journal %s for %s: %s", kind, subject, err)
