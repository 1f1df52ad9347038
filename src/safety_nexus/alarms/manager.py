"""The first alarm model: one alarm per asset and finding kind.

An alarm is *active* while at least one of its asset's signals has an active finding of its kind,
and *acknowledged* once an operator says so. The four states used here are the ISA-18.2
combinations of those two bits. The full lifecycle (latched, shelved, suppressed, out of service)
is the state machine in `alarms.lifecycle`, which is to take over this manager's transitions.

Every transition is written to the journal with who or what caused it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Protocol

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

DETECTOR_ACTOR = "detector"


class AlarmJournal(Protocol):
    """Where alarm state and transitions are kept (the embedded store implements it)."""

    def save_alarm(self, alarm: Alarm) -> None: ...

    def add_event(
        self, time: float, kind: str, actor: str, subject: str, data: dict[str, object]
    ) -> int: ...


AlarmListener = Callable[[Alarm], None]


def alarm_id(asset: str, kind: FindingKind) -> str:
    return f"{asset}:{kind.value}"


class AlarmManager:
    """Folds findings and recoveries into alarms; thread-safe (pipeline and API both call it)."""

    def __init__(
        self,
        table: SignalTable,
        journal: AlarmJournal,
        clock: Clock,
        *,
        restored: Iterable[Alarm] = (),
    ) -> None:
        self._table = table
        self._journal = journal
        self._clock = clock
        self._lock = threading.RLock()
        self._alarms: dict[str, Alarm] = {a.id: a for a in restored}
        # signals currently abnormal per alarm; after a restart the detectors re-arm, so an
        # active restored alarm starts with its recorded signals and clears when they recover
        self._active_signals: dict[str, set[str]] = {
            a.id: set(a.signals) for a in self._alarms.values() if a.active
        }
        self._listeners: list[AlarmListener] = []

    def subscribe(self, listener: AlarmListener) -> None:
        self._listeners.append(listener)

    # -- queries ---------------------------------------------------------------------------

    def get(self, alarm_id_: str) -> Alarm:
        with self._lock:
            alarm = self._alarms.get(alarm_id_)
            if alarm is None:
                raise NotFoundError(f"no alarm '{alarm_id_}'")
            return replace(alarm, signals=list(alarm.signals))

    def open_count(self) -> int:
        """Alarms on the operators' list, without copying them."""
        with self._lock:
            return sum(1 for a in self._alarms.values() if a.open)

    def alarms(self, *, open_only: bool = True) -> list[Alarm]:
        """Newest first within priority, most urgent first."""
        with self._lock:
            chosen = [
                replace(a, signals=list(a.signals))
                for a in self._alarms.values()
                if a.open or not open_only
            ]
        chosen.sort(key=lambda a: (-a.priority, -a.last_seen))
        return chosen

    # -- detector side ---------------------------------------------------------------------

    def on_findings(self, findings: Iterable[Finding]) -> list[Alarm]:
        changed: dict[str, Alarm] = {}
        with self._lock:
            for finding in findings:
                alarm = self._raise(finding)
                changed[alarm.id] = alarm
        return self._publish(changed.values())

    def on_recoveries(self, recoveries: Iterable[Recovery]) -> list[Alarm]:
        changed: dict[str, Alarm] = {}
        with self._lock:
            for rec in recoveries:
                alarm = self._recover(rec)
                if alarm is not None:
                    changed[alarm.id] = alarm
        return self._publish(changed.values())

    # -- operator side ---------------------------------------------------------------------

    def acknowledge(self, alarm_id_: str, user: str, note: str | None = None) -> Alarm:
        if not user.strip():
            raise AlarmError("acknowledging needs a user name")
        with self._lock:
            alarm = self._alarms.get(alarm_id_)
            if alarm is None:
                raise NotFoundError(f"no alarm '{alarm_id_}'")
            now = self._clock.now()
            if alarm.state is AlarmState.UNACKNOWLEDGED:
                new_state = AlarmState.ACKNOWLEDGED
            elif alarm.state is AlarmState.RETURNED_UNACKNOWLEDGED:
                new_state = AlarmState.NORMAL
            else:
                raise AlarmError(
                    f"alarm '{alarm_id_}' is {alarm.state.value}, nothing to acknowledge"
                )
            alarm.acknowledged_by = user
            alarm.acknowledged_at = now
            self._transition(alarm, new_state, now, actor=user, note=note)
        return self._publish([alarm])[0]

    # -- internals -------------------------------------------------------------------------

    def _priority(self, signal: str) -> Priority:
        idx = self._table.index.get(signal)
        crit = self._table.criticality[idx] if idx is not None else Criticality.MEDIUM
        return Priority.from_criticality(crit)

    def _subsystem(self, signal: str, asset: str) -> str:
        idx = self._table.index.get(signal)
        return self._table.subsystems[idx] if idx is not None else asset

    def _raise(self, f: Finding) -> Alarm:
        aid = alarm_id(f.asset, f.kind)
        alarm = self._alarms.get(aid)
        priority = self._priority(f.signal)
        if alarm is None or alarm.state is AlarmState.NORMAL:
            # a closed alarm that fires again is a new occurrence: fresh counters
            alarm = Alarm(
                id=aid,
                asset=f.asset,
                subsystem=self._subsystem(f.signal, f.asset),
                kind=f.kind,
                priority=priority,
                state=AlarmState.NORMAL,
                first_seen=f.time,
                last_seen=f.time,
                count=0,
                signals=[],
            )
            self._alarms[aid] = alarm
            self._active_signals[aid] = set()
        alarm.count += 1
        alarm.last_seen = max(alarm.last_seen, f.time)
        alarm.priority = max(alarm.priority, priority)
        alarm.message = f.explain()
        if f.signal not in alarm.signals:
            alarm.signals.append(f.signal)
        self._active_signals.setdefault(aid, set()).add(f.signal)
        if alarm.state in (AlarmState.NORMAL, AlarmState.RETURNED_UNACKNOWLEDGED):
            alarm.acknowledged_by = None
            alarm.acknowledged_at = None
            alarm.cleared_at = None
            self._transition(alarm, AlarmState.UNACKNOWLEDGED, f.time, actor=DETECTOR_ACTOR)
        else:
            self._journal.save_alarm(alarm)  # deduplicated: same alarm, one more finding
        return alarm

    def _recover(self, rec: Recovery) -> Alarm | None:
        aid = alarm_id(rec.asset, rec.kind)
        alarm = self._alarms.get(aid)
        if alarm is None or not alarm.active:
            return None
        active = self._active_signals.setdefault(aid, set())
        active.discard(rec.signal)
        if active:
            return None
        alarm.cleared_at = rec.time
        new_state = (
            AlarmState.NORMAL
            if alarm.state is AlarmState.ACKNOWLEDGED
            else AlarmState.RETURNED_UNACKNOWLEDGED
        )
        self._transition(alarm, new_state, rec.time, actor=DETECTOR_ACTOR)
        return alarm

    def _transition(
        self, alarm: Alarm, new: AlarmState, time: float, *, actor: str, note: str | None = None
    ) -> None:
        old = alarm.state
        alarm.state = new
        self._journal.save_alarm(alarm)
        data: dict[str, object] = {
            "from": old.value,
            "to": new.value,
            "priority": alarm.priority.label,
        }
        if note:
            data["note"] = note
        self._journal.add_event(time, "alarm." + new.value, actor, alarm.id, data)

    def _publish(self, alarms: Iterable[Alarm]) -> list[Alarm]:
        out = [replace(a, signals=list(a.signals)) for a in alarms]
        for alarm in out:
            for listener in self._listeners:
                listener(alarm)
        return out
