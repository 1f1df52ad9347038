"""Alarms from findings: one per asset and finding kind, moved by the ISA-18.2 lifecycle.

The data flow of one step (`process`, and every operator action):

    findings, recoveries ─▶ raw condition per alarm (any of its signals abnormal)
        ─▶ on/off delays and chatter hold ─▶ the condition the lifecycle is told
        ─▶ incidents on the dependency graph ─▶ suppression reasons (root cause, maintenance)
        ─▶ `Lifecycle.apply` per alarm ─▶ flood accounting ─▶ store, journal, listeners

Priority. An alarm's priority is the higher of its signal's criticality and its consequence in
the dependency graph: an asset whose trouble reaches a critical asset is one level below that
asset (a threat to a critical asset is high; the critical asset's own trouble is an emergency).
Instrument findings (a stale, flat or coarsened sensor, a disagreement, a phantom) say nothing
about the process downstream and keep the priority of their signal.

Incidents. Live alarms (on the list, or with their condition active, or waiting out their
on-delay) whose assets are linked form one incident. An asset's onset is that of its first live
alarm, unless that one had cleared before the asset's present trouble began (it is on the list
only to be acknowledged); its trouble has *ended* when none of its alarms is active. Two assets
are linked when one is upstream of the other and the downstream one's onset is no earlier than
the upstream one's minus `root_window` (a root cause can be detected a little late; a provider
feels a dependant's trip at once) and

* the trouble had a way between them (the upstream one is a direct provider of the downstream
  one, or a provider of it on the way is in trouble too), and the downstream onset falls within
  the *evidence window* of the upstream asset: the lag plus `root_window` after its onset, or
  around the end of its trouble (a supply restored stirs up what depends on it as well);
* or, later than that but within the lag plus `cascade_window` (trouble takes time to travel),
  the upstream asset is at least as broken (see breadth below): a failed provider's slow
  consequence, not a fresh fault under an old, minor alarm;
* or the downstream trouble began right after the upstream trouble ended and the upstream one
  is at least as broken (the assets between may have recovered first);

and assets that are one incident already stay linked while the cascade window lasts (what is
grouped does not come apart as the assets on the way recover or a consequence gets worse).
Partners are linked too when their onsets are within `root_window`: members of a redundancy
group or parallel providers of one dependant (one takes over the other's duty or load).
Trouble travels both ways along a dependency: a provider that fails leaves its dependants
short, and a dependant that trips changes its provider's load.

The root of an incident is the asset that best explains the others. Its score is its *breadth*
(the share of its signals with a finding: a tripped asset is abnormal all over, one that feels
a neighbour's trouble in a signal or two) times its *coverage* (the share of the direct
dependants that rely on it alone with an alarm, counting itself: a failed provider leaves all
of them short; one with a parallel provider to fall back on need not show anything), times
one plus the number of alarmed assets it accounts for: those downstream of it within its
evidence window, its direct providers (a load gone), and the partners of it and of what is
downstream of it (a duty taken over). An asset whose alarms are all about its instruments
accounts for none: a sensor gone stale explains nothing elsewhere. A provider seen after its
dependant accounts for it only if it is at least as broken (a supply that failed is abnormal
all over; a provider that shows a little after its dependant tripped only felt the load go),
and a dependant's trip accounts for its provider only if the provider was not seen first
(`LOAD_SLACK`). Among the assets within `ROOT_BAND` of the best score, a root already on the
operators' list keeps its place (hysteresis: the picture does not flip on evidence that is
merely as good) and gives way only to an asset that accounts for it; else the most upstream
wins, then the first. The root's first alarm is the incident's root alarm; every other alarm
the root is linked to is its consequence, and so are the side effects of those (a provider
that felt a consequence's load go, a partner that took its duty over, within `root_window` and
no more broken); what is left forms further incidents the same way. One exception: when the
root asset's first process alarm had stood alone for longer than `root_window` before the
next (a standing alarm, then a trip), that next alarm is told anew beside the standing one
rather than folded under it; the onsets the grouping times against do not move. Consequences are
*suppressed by design* while their root is live. The root carries the highest priority in its
incident and the list of its consequences, so the operator sees one alarm, the right one, at
the priority of the worst thing it causes. When a clearly better root arrives later the
incident moves under it. An alarm waiting out its `on_delay` counts as evidence (it may turn
out to be the root) but annunciates nothing and is suppressed by nothing until it is due: the
delay is when the grouping settles, and the first thing the operator sees is the root.
Grouping is recomputed from the stored alarms, so it survives a restart, and so does an alarm
waiting out its delay (`pending_since`).

Noise. A finding that repeats feeds the same alarm (deduplication: one more `count`). The raw
condition can be delayed (`on_delay`, `off_delay`; not an external alert's, which the
system that raised it has delayed already); an alarm whose raw condition changes
`chatter_transitions` times within `chatter_window` is *chattering*: it is flagged and does not
clear until its condition has stayed clear for `chatter_hold`. The deadband is the detectors':
a limit finding recovers only inside the limit by `limit_hysteresis`. A position in *flood*
(more than `flood_alarms` annunciations in `flood_window`) is journalled and shown; it ends when
the rate falls to half that. Maintenance windows suppress the alarms of their assets or
subsystems while they run.

Journal. Every transition is one event "alarm.<to_state>" whose data names the cause (`event`),
the position, subsystem, asset, kind, priority and whether it chatters; "alarm.flood" and
"alarm.chattering" record those changes. The KPIs (`alarms.kpi`) are computed from it.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from safety_nexus.alarms.config import AlarmConfig
from safety_nexus.alarms.lifecycle import (
    DETECTOR,
    Acknowledge,
    Activate,
    Clear,
    Event,
    Lifecycle,
    RemoveFromService,
    Reset,
    ReturnToService,
    Shelve,
    Suppress,
    Tick,
    Transition,
    Unshelve,
    Unsuppress,
)
from safety_nexus.core.clock import Clock
from safety_nexus.core.errors import AlarmError, NotFoundError
from safety_nexus.core.types import (
    Alarm,
    AlarmState,
    Criticality,
    Finding,
    FindingKind,
    Priority,
    Recovery,
    SignalTable,
)
from safety_nexus.site.graph import DependencyGraph

ROOT_REASON = "root:"  # suppressed_by entry: "root:<alarm id>"
MAINTENANCE_REASON = "maintenance:"  # suppressed_by entry: "maintenance:<window id>"
# Root-cause candidates score at least this share of the best score (see `AlarmManager._group`):
# one abnormal signal fewer than the best, on an asset of five or six signals, is still a
# candidate, and the most upstream candidate wins.
ROOT_BAND = 0.8
# Seconds a provider's trouble may be seen before its dependant's for the dependant's trip to
# explain it (a load goes at once; the detectors of the two may differ by a sample or two).
LOAD_SLACK = 5.0

# Findings about the instrument rather than the process: no consequence downstream.
INSTRUMENT_KINDS = frozenset(
    {
        FindingKind.STALE,
        FindingKind.FLATLINE,
        FindingKind.QUANTISATION,
        FindingKind.DISAGREEMENT,
        FindingKind.PHANTOM,
        FindingKind.OUT_OF_RANGE,
        FindingKind.CLOCK_SKEW,
    }
)

View = Literal["shown", "removed", "live", "all"]


class AlarmJournal(Protocol):
    """Where alarm state and transitions are kept (the embedded store implements it)."""

    def save_alarms(self, alarms: Sequence[Alarm]) -> None: ...

    def add_event(
        self, time: float, kind: str, actor: str, subject: str, data: dict[str, object]
    ) -> int: ...


AlarmListener = Callable[[Alarm], None]


def alarm_id(asset: str, kind: FindingKind) -> str:
    return f"{asset}:{kind.value}"


@dataclass(frozen=True, slots=True)
class ExternalAlert:
    """An alert raised by another monitoring system (an Alertmanager webhook)."""

    name: str
    asset: str
    time: float
    firing: bool
    priority: Priority
    message: str = ""
    source: str = "alertmanager"
    subsystem: str | None = None


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Alarms of these assets and subsystems are suppressed from `start` until `end`."""

    id: str
    start: float
    end: float
    actor: str
    assets: tuple[str, ...] = ()
    subsystems: tuple[str, ...] = ()
    note: str = ""

    def covers(self, alarm: Alarm, now: float) -> bool:
        return self.start <= now < self.end and (
            alarm.asset in self.assets or alarm.subsystem in self.subsystems
        )


@dataclass(frozen=True, slots=True)
class FloodStatus:
    position: str
    flood: bool
    count: int  # annunciations in the last flood window
    since: float | None  # when the flood began


@dataclass(slots=True)
class _Track:
    """What the manager keeps beside an alarm: its machine, signals, delays and chatter."""

    life: Lifecycle
    signals: set[str] = field(default_factory=set)  # abnormal now
    raw: bool = False  # any signal abnormal (before delays)
    raw_since: float = 0.0  # when `raw` last changed
    changes: deque[float] = field(default_factory=deque)  # raw changes, for chatter
    own_priority: Priority = Priority.LOW


class AlarmManager:
    """Folds findings and recoveries into alarms; thread-safe (pipeline and API both call it)."""

    def __init__(
        self,
        table: SignalTable,
        journal: AlarmJournal,
        clock: Clock,
        *,
        graph: DependencyGraph | None = None,
        config: AlarmConfig | None = None,
        restored: Iterable[Alarm] = (),
    ) -> None:
        self._table = table
        self._journal = journal
        self._clock = clock
        self._graph = graph
        self.config = config or AlarmConfig()
        self._lock = threading.RLock()
        self._listeners: list[AlarmListener] = []
        self._alarms: dict[str, Alarm] = {}
        self._tracks: dict[str, _Track] = {}
        self._upstream: dict[str, dict[str, float]] = {}
        self._consequence: dict[str, Priority] = {}
        self._asset_order: dict[str, int] = {}
        self._per_asset: dict[str, int] = {}
        self._providers: dict[str, tuple[str, ...]] = {}
        self._reliant: dict[str, tuple[str, ...]] = {}
        self._partners: dict[str, list[str]] = {}
        self._windows: dict[str, MaintenanceWindow] = {}
        self._annunciations: dict[str, deque[float]] = defaultdict(deque)
        self._flood_since: dict[str, float] = {}
        self._now = -math.inf
        self._dirty: dict[str, Alarm] = {}
        for alarm in restored:
            self._restore(alarm)
        with self._lock:
            if self._alarms:
                self._now = max(a.last_seen for a in self._alarms.values())
                self._settle(self._now, [])
                self._flush()

    def subscribe(self, listener: AlarmListener) -> None:
        self._listeners.append(listener)

    # -- queries ----------------------------------------------------------------------------

    def get(self, alarm_id_: str) -> Alarm:
        with self._lock:
            return _copy(self._find(alarm_id_))

    def open_count(self) -> int:
        """Alarms on the operators' list, without copying them."""
        with self._lock:
            return sum(1 for a in self._alarms.values() if a.open)

    def alarms(self, *, open_only: bool = True, view: View | None = None) -> list[Alarm]:
        """Most urgent first, then newest. `view`: "shown" (on the list; the default),
        "removed" (shelved, suppressed, out of service), "live" (not normal) or "all"."""
        chosen_view: View = view or ("shown" if open_only else "all")
        keep: Callable[[Alarm], bool] = {
            "shown": lambda a: a.open,
            "removed": lambda a: a.removed,
            "live": lambda a: not a.closed,
            "all": lambda a: True,
        }[chosen_view]
        with self._lock:
            chosen = [_copy(a) for a in self._alarms.values() if keep(a)]
        chosen.sort(key=lambda a: (-a.priority, -a.last_seen, a.id))
        return chosen

    def floods(self) -> list[FloodStatus]:
        """Every position that has had alarms, with its flood state now."""
        with self._lock:
            horizon = self._now - self.config.flood_window
            out = []
            for position, times in sorted(self._annunciations.items()):
                count = sum(1 for t in times if t > horizon)
                since = self._flood_since.get(position)
                out.append(FloodStatus(position, since is not None, count, since))
            return out

    def maintenance(self) -> list[MaintenanceWindow]:
        with self._lock:
            return sorted(self._windows.values(), key=lambda w: (w.start, w.id))

    # -- detector side ----------------------------------------------------------------------

    def process(
        self,
        findings: Iterable[Finding] = (),
        recoveries: Iterable[Recovery] = (),
        *,
        now: float | None = None,
    ) -> list[Alarm]:
        """One pipeline step: findings, then recoveries, then time up to `now` (default: the
        latest time seen). Returns the alarms that changed."""
        with self._lock:
            touched = [self._on_finding(f) for f in findings]
            for r in recoveries:
                aid = self._on_recovery(r)
                if aid is not None:
                    touched.append(aid)
            if now is not None:
                self._advance(now)
            self._settle(self._now, touched)
            return self._flush()

    def on_findings(self, findings: Iterable[Finding]) -> list[Alarm]:
        return self.process(findings)

    def on_recoveries(self, recoveries: Iterable[Recovery]) -> list[Alarm]:
        return self.process((), recoveries)

    def tick(self, now: float) -> list[Alarm]:
        """Let time pass: delays run out, shelves end, floods end, maintenance starts."""
        return self.process(now=now)

    def on_external(self, alerts: Iterable[ExternalAlert]) -> list[Alarm]:
        """Alerts from another monitoring system: firing raises, resolved clears."""
        with self._lock:
            touched = []
            for alert in alerts:
                if not alert.name.strip() or not alert.asset.strip():
                    raise AlarmError("an external alert needs a name and an asset")
                aid = f"{alert.asset}:external:{alert.name}"
                self._advance(alert.time)
                if alert.firing:
                    alarm = self._occurrence(
                        aid,
                        alert.asset,
                        alert.subsystem or self._asset_subsystem(alert.asset),
                        FindingKind.EXTERNAL,
                        alert.time,
                        alert.priority,
                    )
                    track = self._tracks[aid]
                    alarm.count += 1
                    alarm.last_seen = max(alarm.last_seen, alert.time)
                    alarm.message = alert.message or f"{alert.name} ({alert.source})"
                    track.signals.add(alert.source)
                    self._set_raw(aid, True, alert.time)
                elif aid in self._alarms:
                    self._tracks[aid].signals.clear()
                    self._set_raw(aid, False, alert.time)
                else:
                    continue
                touched.append(aid)
            self._settle(self._now, touched)
            return self._flush()

    # -- operator side ----------------------------------------------------------------------

    def acknowledge(self, alarm_id_: str, user: str, note: str | None = None) -> Alarm:
        def act(alarm: Alarm, now: float) -> Event:
            alarm.acknowledged_by, alarm.acknowledged_at = user, now
            return Acknowledge(time=now, actor=user, note=note or "")

        return self._operate(alarm_id_, user, act)

    def reset(self, alarm_id_: str, user: str, note: str | None = None) -> Alarm:
        return self._operate(
            alarm_id_, user, lambda a, now: Reset(time=now, actor=user, note=note or "")
        )

    def shelve(
        self,
        alarm_id_: str,
        user: str,
        *,
        duration: float | None = None,
        one_shot: bool = False,
        note: str | None = None,
    ) -> Alarm:
        """Off the list for `duration` seconds, or with `one_shot` until the condition next
        clears; either way at most `max_shelve`."""
        if duration is not None and not (math.isfinite(duration) and duration > 0):
            raise AlarmError("a shelf's duration must be a positive number of seconds")

        def act(alarm: Alarm, now: float) -> Event:
            until = None if duration is None else now + duration
            return Shelve(time=now, actor=user, until=until, one_shot=one_shot, note=note or "")

        return self._operate(alarm_id_, user, act)

    def unshelve(self, alarm_id_: str, user: str, note: str | None = None) -> Alarm:
        return self._operate(
            alarm_id_, user, lambda a, now: Unshelve(time=now, actor=user, note=note or "")
        )

    def remove_from_service(self, alarm_id_: str, user: str, note: str | None = None) -> Alarm:
        return self._operate(
            alarm_id_,
            user,
            lambda a, now: RemoveFromService(time=now, actor=user, note=note or ""),
        )

    def return_to_service(self, alarm_id_: str, user: str, note: str | None = None) -> Alarm:
        return self._operate(
            alarm_id_,
            user,
            lambda a, now: ReturnToService(time=now, actor=user, note=note or ""),
        )

    def add_maintenance(self, window: MaintenanceWindow) -> MaintenanceWindow:
        if not window.actor.strip():
            raise AlarmError("a maintenance window needs a user name")
        if not window.assets and not window.subsystems:
            raise AlarmError("a maintenance window needs at least one asset or subsystem")
        if not window.end > window.start:
            raise AlarmError("a maintenance window must end after it starts")
        with self._lock:
            if window.id in self._windows:
                raise AlarmError(f"maintenance window '{window.id}' exists already")
            self._windows[window.id] = window
            self._journal.add_event(
                self._clock.now(),
                "maintenance.scheduled",
                window.actor,
                window.id,
                {
                    "start": window.start,
                    "end": window.end,
                    "assets": list(window.assets),
                    "subsystems": list(window.subsystems),
                    "note": window.note,
                },
            )
            self._advance(self._clock.now())
            self._settle(self._now, [])
            self._flush()
        return window

    def end_maintenance(self, window_id: str, user: str) -> MaintenanceWindow:
        if not user.strip():
            raise AlarmError("ending a maintenance window needs a user name")
        with self._lock:
            window = self._windows.pop(window_id, None)
            if window is None:
                raise NotFoundError(f"no maintenance window '{window_id}'")
            now = self._clock.now()
            self._journal.add_event(now, "maintenance.ended", user, window_id, {})
            self._advance(now)
            self._settle(self._now, [])
            self._flush()
        return window

    # -- internals: raw condition -----------------------------------------------------------

    def _find(self, alarm_id_: str) -> Alarm:
        alarm = self._alarms.get(alarm_id_)
        if alarm is None:
            raise NotFoundError(f"no alarm '{alarm_id_}'")
        return alarm

    def _advance(self, t: float) -> None:
        if t > self._now:
            self._now = t

    def _on_finding(self, f: Finding) -> str:
        aid = alarm_id(f.asset, f.kind)
        self._advance(f.time)
        priority = self._priority(f.signal, f.asset, f.kind)
        alarm = self._occurrence(
            aid, f.asset, self._subsystem(f.signal, f.asset), f.kind, f.time, priority
        )
        track = self._tracks[aid]
        alarm.count += 1
        alarm.last_seen = max(alarm.last_seen, f.time)
        alarm.message = f.explain()
        if f.signal not in alarm.signals:
            alarm.signals.append(f.signal)
        track.signals.add(f.signal)
        self._set_raw(aid, True, f.time)
        self._dirty[aid] = alarm
        return aid

    def _on_recovery(self, r: Recovery) -> str | None:
        aid = alarm_id(r.asset, r.kind)
        self._advance(r.time)
        track = self._tracks.get(aid)
        if track is None or not track.raw:
            return None
        track.signals.discard(r.signal)
        if track.signals:
            return None
        self._set_raw(aid, False, r.time)
        return aid

    def _occurrence(
        self,
        aid: str,
        asset: str,
        subsystem: str,
        kind: FindingKind,
        time: float,
        priority: Priority,
    ) -> Alarm:
        """The alarm a report feeds: the live one (or one about to fire), else a fresh
        occurrence."""
        alarm = self._alarms.get(aid)
        track = self._tracks.get(aid)
        if alarm is not None and track is not None and (track.raw or not alarm.closed):
            if priority > track.own_priority:
                track.own_priority = priority
                track.life.latching = self.config.latches(priority)
                alarm.latching = track.life.latching
            return alarm
        # a closed alarm that fires again is a new occurrence: fresh counters
        alarm = Alarm(
            id=aid,
            asset=asset,
            subsystem=subsystem,
            kind=kind,
            priority=priority,
            state=AlarmState.NORMAL,
            first_seen=time,
            last_seen=time,
            count=0,
            position=self.config.position_of(subsystem),
            latching=self.config.latches(priority),
        )
        self._alarms[aid] = alarm
        self._tracks[aid] = _Track(
            life=Lifecycle(latching=alarm.latching, max_shelve=self.config.max_shelve),
            raw_since=time,
            own_priority=priority,
        )
        return alarm

    def _set_raw(self, aid: str, raw: bool, time: float) -> None:
        track = self._tracks[aid]
        if track.raw == raw:
            return
        track.raw, track.raw_since = raw, time
        changes = track.changes
        changes.append(time)
        while changes and changes[0] < time - self.config.chatter_window:
            changes.popleft()
        alarm = self._alarms[aid]
        if not alarm.chattering and len(changes) >= self.config.chatter_transitions:
            alarm.chattering = True
            self._journal.add_event(
                time, "alarm.chattering", DETECTOR, aid, {"chattering": True, **_about(alarm)}
            )
        self._dirty[aid] = alarm

    def _wanted(self, aid: str, now: float) -> tuple[bool, float]:
        """The condition the lifecycle should have by `now`, and since when."""
        track = self._tracks[aid]
        life = track.life
        if track.raw == life.condition:
            return life.condition, track.raw_since
        alarm = self._alarms[aid]
        # an external alert was delayed by the system that raised it (Alertmanager's `for`)
        external = alarm.kind is FindingKind.EXTERNAL
        if track.raw:
            due = track.raw_since + (0.0 if external else self.config.on_delay)
        else:
            hold = self.config.chatter_hold if alarm.chattering else 0.0
            due = track.raw_since + max(0.0 if external else self.config.off_delay, hold)
        return (track.raw, due) if now >= due else (life.condition, track.raw_since)

    # -- internals: one step ----------------------------------------------------------------

    def _settle(self, now: float, touched: Iterable[str]) -> None:
        """Bring every alarm to where its raw condition, the time, the incidents and the
        maintenance windows say, in an order that never annunciates an alarm only to suppress
        it in the same step."""
        candidates = set(touched) | {
            aid
            for aid, t in self._tracks.items()
            if t.raw != t.life.condition or t.life.state is AlarmState.SHELVED
        }
        wanted: dict[str, tuple[bool, float]] = {}
        for aid in candidates:
            cond, at = self._wanted(aid, now)
            if cond != self._tracks[aid].life.condition:
                wanted[aid] = (cond, at)

        # what moved can change what is live: group again until nothing moves (a root that
        # closed releases its consequences, which may become roots of others)
        moved = self._regroup(now, wanted)
        for _ in range(len(self._alarms)):
            if not moved:
                break
            moved = self._regroup(now, {})
        # 4. time: shelves that run out, chatter that has stopped; what is still pending
        hold = self.config.chatter_hold
        for aid, track in self._tracks.items():
            alarm = self._alarms[aid]
            pending = track.raw_since if track.raw != track.life.condition else None
            if alarm.pending_since != pending:
                alarm.pending_since = pending
                self._dirty[aid] = alarm
            if track.life.state is AlarmState.SHELVED:
                self._apply(alarm, Tick(time=now))
            if alarm.chattering and now - track.raw_since >= hold:
                alarm.chattering = False
                track.changes.clear()
                self._journal.add_event(
                    now, "alarm.chattering", "timer", aid, {"chattering": False, **_about(alarm)}
                )
                self._dirty[aid] = alarm
        self._floods(now)

    def _regroup(self, now: float, wanted: dict[str, tuple[bool, float]]) -> bool:
        """Incidents and suppression reasons, then the conditions in `wanted`, in the order
        that never shows an alarm only to suppress it. True if anything moved."""
        reasons = self._reasons(now, wanted)
        moved = bool(wanted)
        lifted: list[Alarm] = []
        # 1. new reasons first: an alarm about to fire under its root never shows
        for aid, new in reasons.items():
            alarm = self._alarms[aid]
            if new and not alarm.suppressed_by:
                self._apply(alarm, Suppress(time=now, actor=_reason_actor(new[0])))
                moved = True
            elif alarm.suppressed_by and not new:
                lifted.append(alarm)
                moved = True
            if new != alarm.suppressed_by:
                alarm.suppressed_by = new
                self._dirty[aid] = alarm
        # 2. the conditions, in time order
        for aid, (cond, at) in sorted(wanted.items(), key=lambda kv: (kv[1][1], kv[0])):
            alarm = self._alarms[aid]
            if cond:
                self._apply(alarm, Activate(time=at))
            else:
                alarm.cleared_at = at
                self._apply(alarm, Clear(time=at))
        # 3. lifted reasons last: an alarm back from under its root shows as it is now
        for alarm in lifted:
            self._apply(alarm, Unsuppress(time=now, actor="system"))
        return moved

    def _reasons(self, now: float, wanted: dict[str, tuple[bool, float]]) -> dict[str, list[str]]:
        """Every alarm's suppression reasons (root cause, maintenance) as of this step."""
        out: dict[str, list[str]] = {aid: [] for aid in self._alarms}
        live = {
            aid: a
            for aid, a in self._alarms.items()
            if wanted.get(aid, (a.condition, 0.0))[0] or a.open
        }
        # an alarm waiting out its on-delay is evidence for the grouping (it may be the root)
        # but moves no lifecycle until it is due
        pending = {
            aid: a
            for aid, a in self._alarms.items()
            if aid not in live and self._tracks[aid].raw and not a.condition
        }
        self._group(live | pending)
        for aid, alarm in live.items():
            if alarm.root_cause is not None:
                out[aid].append(ROOT_REASON + alarm.root_cause)
        for window in self._windows.values():
            for aid, alarm in self._alarms.items():
                if window.covers(alarm, now):
                    out[aid].append(MAINTENANCE_REASON + window.id)
        return {aid: r for aid, r in out.items() if r or self._alarms[aid].suppressed_by}

    def _group(self, live: dict[str, Alarm]) -> None:
        """Incidents over the live alarms (see the module doc); sets root_cause, incident,
        first_out, consequences and the roots' priorities."""
        by_asset: dict[str, list[Alarm]] = defaultdict(list)
        for alarm in live.values():
            by_asset[alarm.asset].append(alarm)
        # an asset's first alarm leads, unless it had cleared before the asset's present trouble
        # began (it is on the list only to be acknowledged): the new trouble leads then
        ended: dict[str, float] = {}  # when the trouble of an asset with none active now ended
        for asset, alarms in by_asset.items():
            active = {a.id: a.first_seen for a in alarms if a.condition or self._tracks[a.id].raw}
            start = min(active.values(), default=math.inf)
            if not active:
                ended[asset] = max((a.cleared_at or a.last_seen for a in alarms), default=0.0)
            alarms.sort(
                key=lambda a: (
                    a.id not in active and a.cleared_at is not None and a.cleared_at <= start,
                    a.first_seen,
                    -self._tracks[a.id].own_priority,
                    a.id,
                )
            )
        onset = {asset: alarms[0].first_seen for asset, alarms in by_asset.items()}
        window = self.config.cascade_window
        near = self.config.root_window
        breadth = {a: self._breadth(a, alarms) for a, alarms in by_asset.items()}
        incident_of = {asset: alarms[0].incident for asset, alarms in by_asset.items()}

        def evidence(a: str, b: str) -> bool:
            """`b`'s trouble began soon enough after `a`'s began, or after it ended (a supply
            restored is a change too), to tell whether `a` is the root."""
            lag = self._upstream_of(b).get(a, 0.0)
            return onset[b] <= onset[a] + lag + near or restored(a, b, lag, near)

        def restored(a: str, b: str, lag: float, before: float) -> bool:
            """`b`'s trouble began from `before` seconds before `a`'s trouble ended to the lag
            plus `root_window` after."""
            return a in ended and ended[a] - before <= onset[b] <= ended[a] + lag + near

        def feeds(u: str, x: str) -> bool:
            """`u` is upstream of `x` and their onsets fit the lag (see the module doc); trouble
            that arrives later than the evidence window is `u`'s only if `u` is at least as
            broken (a failed provider's slow consequence, not a fresh fault under an old,
            minor alarm), and so is trouble that reached `x` by no way in trouble now (after a
            supply was restored, what it stirs up may show after the assets between recovered)."""
            lag = self._upstream_of(x).get(u)
            if lag is None or onset[x] < onset[u] - near:
                return False
            # one incident already: it stays so while the window lasts (what is grouped does
            # not come apart as the assets on the way recover or as a consequence gets worse)
            together = incident_of[x] is not None and incident_of[x] == incident_of[u]
            as_broken = together or breadth[u] >= breadth[x]
            if not together and not path(u, x):
                return as_broken and restored(u, x, lag, 0.0)
            if evidence(u, x):
                return True
            return onset[x] <= onset[u] + lag + window and as_broken

        def path(u: str, x: str) -> bool:
            """Trouble travels hop by hop: it reaches `x` from its provider `u`, or through a
            provider of `x` in trouble too."""
            return any(
                p == u or (p in onset and u in self._upstream_of(p)) for p in self._providers_of(x)
            )

        def partners(a: str, b: str) -> bool:
            """Redundant partners: one takes over the other's duty when it fails."""
            return b in self._partners_of(a) and abs(onset[a] - onset[b]) <= near

        def linked(a: str, b: str) -> bool:
            return a != b and (feeds(a, b) or feeds(b, a) or partners(a, b))

        # connected assets: trouble can have travelled between them, either way
        component = {asset: asset for asset in by_asset}

        def find(a: str) -> str:
            while component[a] != a:
                component[a] = component[component[a]]
                a = component[a]
            return a

        for x in by_asset:
            for u in [*self._upstream_of(x), *self._partners_of(x)]:
                if u in onset and linked(u, x):
                    component[find(u)] = find(x)
        members_of: dict[str, list[str]] = defaultdict(list)
        for asset in by_asset:
            members_of[find(asset)].append(asset)

        def claims(u: str, x: str) -> bool:
            """`u` failing can be why `x` is in trouble: `u` feeds `x`, and if `x` was seen
            first, `u` is at least as broken (a provider whose supply failed is abnormal all
            over; one that shows a little after its dependant tripped only felt the load go)."""
            return feeds(u, x) and (onset[x] >= onset[u] or breadth[u] >= breadth[x])

        def unloads(x: str, u: str) -> bool:
            """`x` tripping can be why its direct provider `u` is in trouble: the load goes at
            once, so `u` was not seen before `x` (beyond `LOAD_SLACK`)."""
            return u in self._providers_of(x) and feeds(u, x) and onset[u] >= onset[x] - LOAD_SLACK

        def accounts(a: str, assets: list[str]) -> int:
            """How many of `assets` `a` failing accounts for: those downstream of it (supply
            lost), its direct providers (a load gone), and the redundant partners of it and of
            what is downstream of it (a duty taken over)."""
            down = {b for b in assets if b != a and claims(a, b) and evidence(a, b)}
            out = down | {b for b in assets if unloads(a, b)}
            for x in (a, *down):
                out |= {r for r in self._partners_of(x) if r in onset and partners(x, r)}
            out.discard(a)
            return len(out)

        def explains(a: str, b: str) -> bool:
            """`a` failing accounts for `b`'s trouble (see `accounts`)."""
            return a != b and (claims(a, b) or unloads(a, b) or partners(a, b))

        def side_effect(c: str, r: str) -> bool:
            """`r`'s trouble followed from `c`'s: `r` felt `c`'s load go or took `c`'s duty
            over, soon after, and is no more broken."""
            follows = onset[c] - LOAD_SLACK <= onset[r] <= onset[c] + near
            return follows and breadth[r] <= breadth[c] and (partners(c, r) or unloads(c, r))

        def held_root(a: str) -> bool:
            """`a`'s first alarm is a root on the operators' list now."""
            first = by_asset[a][0]
            return first.open and first.root_cause is None and first.incident is not None

        score: dict[str, float] = {}
        for assets in members_of.values():
            for a in assets:
                # a sensor gone stale or flat explains nothing about the process elsewhere
                instrument = all(x.kind in INSTRUMENT_KINDS for x in by_asset[a])
                accounted = 0 if instrument else accounts(a, assets)
                hit = [d for d in self._reliant_on(a) if d in onset and evidence(a, d)]
                score[a] = (1 + accounted) * breadth[a] * self._coverage(a, len(hit))

        root_of: dict[str, str] = {}
        for assets in members_of.values():
            remaining = set(assets)
            while remaining:
                # the root: the asset that best explains the others (within ROOT_BAND of the
                # best), a root on the list already, else the most upstream, then the first;
                # a root on the list gives way only to an asset that accounts for it
                held = [a for a in remaining if held_root(a)]
                pool = [
                    a for a in remaining if not held or any(a == h or explains(a, h) for h in held)
                ]
                best = max(score[a] for a in pool)
                broken = [a for a in pool if score[a] >= ROOT_BAND * best]
                sources = [a for a in broken if not any(claims(b, a) for b in broken if b != a)]
                kept = [a for a in broken if a in held]
                top = min(kept or sources or broken, key=lambda a: (onset[a], self._order(a)))
                explained = {a for a in remaining if a == top or linked(top, a)}
                # and the side effects of its consequences: a provider that felt a consequence's
                # load go, a partner that took its duty over, soon after and no more broken (one
                # step only: a side effect of a side effect is too far to tell from a fault)
                explained |= {
                    r
                    for r in remaining - explained
                    if any(side_effect(c, r) for c in explained if c != top)
                }
                for asset in explained:
                    root_of[asset] = top
                remaining -= explained

        groups: dict[str, list[Alarm]] = defaultdict(list)
        for asset, alarms in by_asset.items():
            groups[root_of[asset]].extend(alarms)
        for alarm in self._alarms.values():
            if alarm.id not in live:
                self._set_group(alarm, None, None, False, [])
        for root_asset, members in groups.items():
            root = by_asset[root_asset][0]
            incident = f"{root.id}@{root.first_seen:.0f}"
            first = min(members, key=lambda a: (a.first_seen, a.id))
            # a trip after a standing alarm of the root asset is told anew, beside it
            trip = self._trip_after_standing(by_asset[root_asset], self.config.root_window)
            if trip is not None:
                self._set_group(trip, None, incident, False, [])
                self._set_priority(trip, self._tracks[trip.id].own_priority)
            consequences = sorted(
                (a for a in members if a is not root and a is not trip),
                key=lambda a: (a.first_seen, a.id),
            )
            for alarm in consequences:
                self._set_group(alarm, root.id, incident, alarm is first, [])
                self._set_priority(alarm, self._tracks[alarm.id].own_priority)
            self._set_group(root, None, incident, root is first, [a.id for a in consequences])
            worst = max([self._tracks[a.id].own_priority for a in members], default=Priority.LOW)
            self._set_priority(root, worst)

    @staticmethod
    def _trip_after_standing(alarms: list[Alarm], near: float) -> Alarm | None:
        """The first alarm of new trouble at an asset whose first process alarm had stood
        alone for longer than `near` (a standing alarm, then a trip), else None. It depends on
        the alarms' onsets alone, never on the grouping, and moves no onset."""
        process = sorted(
            (a for a in alarms if a.kind not in INSTRUMENT_KINDS),
            key=lambda a: (a.first_seen, a.id),
        )
        if len(process) >= 2 and process[1].first_seen - process[0].first_seen > near:
            return process[1]
        return None

    def _breadth(self, asset: str, alarms: list[Alarm]) -> float:
        """The share of the asset's signals with a finding in its live alarms: a tripped asset
        is abnormal all over, an asset that only feels a neighbour's trouble in one or two."""
        total = self._signals_per_asset().get(asset, 0)
        if total == 0:
            return 0.5  # an asset the table does not know (an external alert's)
        abnormal = {s for a in alarms for s in a.signals}
        return min(1.0, len(abnormal) / total)

    def _coverage(self, asset: str, hit: int) -> float:
        """The share of the direct dependants that rely on the asset alone (`hit` of them with
        an alarm), counting the asset itself (so that a provider is never ruled out before its
        dependants' alarms arrive): a provider that failed leaves all of them short, one that
        merely feels a dependant's trip few; a dependant with a parallel provider to fall back
        on need not show anything. 1 for an asset nothing relies on alone."""
        if self._graph is None or asset not in self._graph.graph:
            return 1.0
        return (1 + hit) / (1 + len(self._reliant_on(asset)))

    def _signals_per_asset(self) -> dict[str, int]:
        if not self._per_asset:
            for asset in self._table.assets:
                self._per_asset[asset] = self._per_asset.get(asset, 0) + 1
        return self._per_asset

    def _set_group(
        self,
        alarm: Alarm,
        root: str | None,
        incident: str | None,
        first_out: bool,
        consequences: list[str],
    ) -> None:
        if (alarm.root_cause, alarm.incident, alarm.first_out, alarm.consequences) != (
            root,
            incident,
            first_out,
            consequences,
        ):
            alarm.root_cause, alarm.incident = root, incident
            alarm.first_out, alarm.consequences = first_out, consequences
            self._dirty[alarm.id] = alarm

    def _set_priority(self, alarm: Alarm, priority: Priority) -> None:
        if alarm.priority != priority:
            alarm.priority = priority
            self._dirty[alarm.id] = alarm

    def _floods(self, now: float) -> None:
        horizon = now - self.config.flood_window
        for position, times in self._annunciations.items():
            while times and times[0] <= horizon:
                times.popleft()
            count = len(times)
            flooding = position in self._flood_since
            if not flooding and count > self.config.flood_alarms:
                self._flood_since[position] = times[-1]
                self._flood_event(times[-1], position, True, count)
            elif flooding and count <= self.config.flood_alarms // 2:
                del self._flood_since[position]
                self._flood_event(now, position, False, count)

    def _flood_event(self, time: float, position: str, flood: bool, count: int) -> None:
        self._journal.add_event(
            time,
            "alarm.flood",
            "system",
            position,
            {"position": position, "flood": flood, "count": count},
        )

    # -- internals: transitions -------------------------------------------------------------

    def _operate(self, alarm_id_: str, user: str, make: Callable[[Alarm, float], Event]) -> Alarm:
        if not user.strip():
            raise AlarmError("an operator action needs a user name")
        with self._lock:
            alarm = self._find(alarm_id_)
            now = self._clock.now()
            self._advance(now)
            before = (alarm.acknowledged_by, alarm.acknowledged_at)
            try:
                transition = self._apply(alarm, make(alarm, now))
            except AlarmError:
                alarm.acknowledged_by, alarm.acknowledged_at = before
                raise
            if transition is None:
                raise AlarmError(f"alarm '{alarm_id_}' is {alarm.state.value}: nothing changed")
            self._settle(self._now, [alarm.id])
            self._flush()
            return _copy(alarm)

    def _apply(self, alarm: Alarm, event: Event) -> Transition | None:
        life = self._tracks[alarm.id].life
        was = alarm.state
        transition = life.apply(event)  # raises AlarmError on a refused event
        after = (life.condition, life.state, life.shelved_until, life.one_shot)
        if after != (alarm.condition, alarm.state, alarm.shelved_until, alarm.one_shot) or (
            life.out_of_service != alarm.out_of_service
        ):
            alarm.condition, alarm.state, alarm.shelved_until, alarm.one_shot = after
            alarm.out_of_service = life.out_of_service
            self._dirty[alarm.id] = alarm
        if transition is None:
            return None
        if transition.to_state is AlarmState.UNACKNOWLEDGED:
            if was is not AlarmState.UNACKNOWLEDGED:
                alarm.acknowledged_by = alarm.acknowledged_at = None
                alarm.cleared_at = None
            self._annunciations[alarm.position].append(transition.time)
        data: dict[str, object] = {
            "from": transition.from_state.value,
            "to": transition.to_state.value,
            "event": transition.event,
            **_about(alarm),
        }
        if transition.note:
            data["note"] = transition.note
        if alarm.root_cause is not None:
            data["root_cause"] = alarm.root_cause
        self._journal.add_event(
            transition.time, "alarm." + transition.to_state.value, transition.actor, alarm.id, data
        )
        return transition

    def _flush(self) -> list[Alarm]:
        changed = list(self._dirty.values())
        self._dirty = {}
        if changed:
            self._journal.save_alarms(changed)
        out = [_copy(a) for a in changed]
        for alarm in out:
            for listener in self._listeners:
                listener(alarm)
        return out

    def _restore(self, alarm: Alarm) -> None:
        life = Lifecycle(
            state=alarm.state,
            condition=alarm.condition,
            latching=alarm.latching,
            max_shelve=self.config.max_shelve,
            shelved_until=alarm.shelved_until,
            one_shot=alarm.one_shot,
            suppressed=bool(alarm.suppressed_by),
            out_of_service=alarm.out_of_service,
        )
        own = (
            max(
                (self._priority(s, alarm.asset, alarm.kind) for s in alarm.signals),
                default=alarm.priority,
            )
            if alarm.kind is not FindingKind.EXTERNAL
            else alarm.priority
        )
        # after a restart the detectors re-arm: an active alarm (or one about to fire) keeps
        # its recorded signals and clears when they recover; a pending change goes on waiting
        raw = alarm.condition != (alarm.pending_since is not None)
        self._alarms[alarm.id] = alarm
        self._tracks[alarm.id] = _Track(
            life=life,
            signals=set(alarm.signals) if raw else set(),
            raw=raw,
            raw_since=alarm.last_seen if alarm.pending_since is None else alarm.pending_since,
            own_priority=own,
        )

    # -- internals: the site ----------------------------------------------------------------

    def _priority(self, signal: str, asset: str, kind: FindingKind) -> Priority:
        idx = self._table.index.get(signal)
        crit = self._table.criticality[idx] if idx is not None else Criticality.MEDIUM
        own = Priority.from_criticality(crit)
        if kind in INSTRUMENT_KINDS:
            return own
        return max(own, self._consequence_of(asset))

    def _consequence_of(self, asset: str) -> Priority:
        cached = self._consequence.get(asset)
        if cached is not None:
            return cached
        worst = Priority.LOW
        if self._graph is not None and asset in self._graph.graph:
            for other in self._graph.downstream(asset):
                rank = self._graph.criticality(other).rank  # 0..3; one level below its own
                worst = max(worst, Priority(max(1, rank)))
        self._consequence[asset] = worst
        return worst

    def _upstream_of(self, asset: str) -> dict[str, float]:
        cached = self._upstream.get(asset)
        if cached is None:
            graph = self._graph
            cached = graph.upstream(asset) if graph is not None and asset in graph.graph else {}
            self._upstream[asset] = cached
        return cached

    def _reliant_on(self, asset: str) -> tuple[str, ...]:
        return self._neighbours(self._reliant, asset, "reliant")

    def _providers_of(self, asset: str) -> tuple[str, ...]:
        return self._neighbours(self._providers, asset, "providers")

    def _neighbours(
        self,
        cache: dict[str, tuple[str, ...]],
        asset: str,
        which: Literal["providers", "reliant"],
    ) -> tuple[str, ...]:
        """The asset's direct providers, or the dependants that rely on it alone, in the graph
        (none if it is unknown), looked up once."""
        cached = cache.get(asset)
        if cached is None:
            graph = self._graph
            known = graph is not None and asset in graph.graph
            cached = tuple(getattr(graph, which)(asset)) if graph is not None and known else ()
            cache[asset] = cached
        return cached

    def _partners_of(self, asset: str) -> list[str]:
        cached = self._partners.get(asset)
        if cached is None:
            graph = self._graph
            known = graph is not None and asset in graph.graph
            cached = (
                sorted({*graph.partners(asset), *graph.parallel(asset)})
                if graph is not None and known
                else []
            )
            self._partners[asset] = cached
        return cached

    def _order(self, asset: str) -> int:
        if not self._asset_order and self._graph is not None:
            self._asset_order = {a: i for i, a in enumerate(self._graph.assets)}
        return self._asset_order.get(asset, 0)

    def _subsystem(self, signal: str, asset: str) -> str:
        idx = self._table.index.get(signal)
        return self._table.subsystems[idx] if idx is not None else self._asset_subsystem(asset)

    def _asset_subsystem(self, asset: str) -> str:
        if self._graph is not None and asset in self._graph.graph:
            return str(self._graph.graph.nodes[asset]["subsystem"])
        idx = next((i for i, a in enumerate(self._table.assets) if a == asset), None)
        return self._table.subsystems[idx] if idx is not None else "external"


def _copy(alarm: Alarm) -> Alarm:
    return replace(
        alarm,
        signals=list(alarm.signals),
        consequences=list(alarm.consequences),
        suppressed_by=list(alarm.suppressed_by),
    )


def _about(alarm: Alarm) -> dict[str, object]:
    return {
        "priority": alarm.priority.label,
        "position": alarm.position,
        "subsystem": alarm.subsystem,
        "asset": alarm.asset,
        "kind": alarm.kind.value,
        "chattering": alarm.chattering,
    }


def _reason_actor(reason: str) -> str:
    if reason.startswith(ROOT_REASON):
        return "root-cause:" + reason[len(ROOT_REASON) :]
    return reason
