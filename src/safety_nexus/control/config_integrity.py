"""Configuration integrity: the authorised value of every setpoint and directive, and its history.

The site file declares the setpoints and directives with their values at start. From then on the
authorised value changes only through `ConfigurationRegistry.change` (the API's PUT), which
checks it against the declaration (a setpoint's `range`, a directive's `states`), stores it and
journals it as a `config.changed` event with who, when, the diff `{"from", "to"}` and the reason,
in one transaction (`SqliteStore.put_config`: one configuration key per setpoint or directive,
so the store's configuration history is each one's history). A restart restores the last
authorised values. A site file whose declared value differs from the one the stored value was
derived from wins, as an authorised change by the file's author (actor "site"): otherwise an
edit of the file would be silently overridden by an older API change.

What a controller reports as in effect is compared with the authorised value by the pipeline
(`pipeline.watch_config`), which tells the registry what it sees: the last reported value (shown
by the API) and each change it observes, journalled as `config.observed_change` (actor
"telemetry", with the diff). The comparison needs only arrays (`Targets`), rebuilt when
`version` moves, so the pipeline does not take the lock on every frame.

After an authorised change the controller reports the old value until it has applied the new
one. The old value therefore stays acceptable for `APPLY_GRACE` seconds of sample time, or until
the new one is reported, whichever comes first: a change through the API followed by the
controller taking it up raises nothing, while a controller that never takes it up, or goes back
to the old value once it had the new, does.

Thread-safe: the API's threads change values while the pipeline's worker compares and reports.

>>> from safety_nexus.core.clock import ManualClock
>>> from safety_nexus.site.load import load
>>> from safety_nexus.site.table import signal_table
>>> from safety_nexus.store.sqlite import SqliteStore
>>> site = load('''
... site: {name: Example}
... subsystems: [{id: water, name: Water}]
... assets:
...   - {id: pump-1, subsystem: water, type: pump, signals: [{name: sp, unit: bar, normal: [4, 6]}]}
... setpoints:
...   - {id: pump-1-pressure, asset: pump-1, value: 5, unit: bar, range: [4, 6], signal: pump-1.sp}
... ''')
>>> store = SqliteStore(":memory:")
>>> registry = ConfigurationRegistry(site, signal_table(site), store, ManualClock(1000.0))
>>> registry.change("pump-1-pressure", 5.2, "alice", "summer demand").value
5.2
>>> event = store.events(kind="config.changed", limit=1)[0]
>>> event.actor, event.data["from"], event.data["to"], event.data["reason"]
('alice', 5.0, 5.2, 'summer demand')
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from safety_nexus.core.clock import Clock
from safety_nexus.core.errors import ControlError, NotFoundError
from safety_nexus.core.types import F64, Index, SignalTable
from safety_nexus.site.schema import Directive, Setpoint, Site
from safety_nexus.store.sqlite import Event, SqliteStore

APPLY_GRACE = 120.0  # seconds the value before an authorised change is still accepted
OBSERVED_CHANGE = "config.observed_change"  # journal event kind of a change seen in telemetry
SITE_ACTOR = "site"  # who set a value the site file declares
TELEMETRY_ACTOR = "telemetry"  # who "did" a change seen in what a controller reports

Value = float | str


class ControlKind(StrEnum):
    SETPOINT = "setpoint"
    DIRECTIVE = "directive"


def control_key(kind: ControlKind, control_id: str) -> str:
    """The configuration key (and journal subject) of a setpoint or directive."""
    return f"{kind.value}:{control_id}"


@dataclass(frozen=True, slots=True)
class ControlState:
    """A setpoint or directive as it stands: what is authorised, by whom, and what is reported."""

    id: str
    kind: ControlKind
    asset: str
    value: Value  # authorised now: a number (setpoint) or a state name (directive)
    declared: Value  # what the site file declares
    changed_at: float
    changed_by: str
    reason: str
    signal: str | None  # the controller's readback, if any
    reported: float | None  # the last value reported through `signal` (a directive: an index)
    reported_at: float | None
    description: str = ""
    unit: str = ""  # setpoints
    tolerance: float = 0.0  # setpoints: absolute
    range: tuple[float, float] | None = None  # setpoints: what a change may set
    states: tuple[str, ...] = ()  # directives

    @property
    def key(self) -> str:
        return control_key(self.kind, self.id)

    @property
    def readback_value(self) -> float:
        """The authorised value as the readback reports it: a directive's as its index."""
        if isinstance(self.value, str):
            return float(self.states.index(self.value))
        return self.value

    @property
    def reported_state(self) -> str | None:
        """A directive's reported state by name (None: nothing reported, or no such index)."""
        if self.kind is not ControlKind.DIRECTIVE or self.reported is None:
            return None
        return _state_name(self.states, self.reported)

    @property
    def in_effect(self) -> bool | None:
        """Whether the reported value is the authorised one (None: nothing reported yet)."""
        if self.reported is None:
            return None
        if isinstance(self.value, str):
            return self.reported == self.states.index(self.value)
        return abs(self.reported - self.value) <= self.tolerance


@dataclass(frozen=True, slots=True)
class WatchList:
    """The setpoints and directives that have a readback signal, in declaration order: what the
    pipeline compares, one column of the frame each."""

    ids: tuple[str, ...]
    kinds: tuple[ControlKind, ...]
    assets: tuple[str, ...]
    signals: tuple[str, ...]
    units: tuple[str, ...]
    states: tuple[tuple[str, ...], ...]  # a directive's states, () for a setpoint
    cols: Index  # each signal's column in the site's SignalTable

    def __len__(self) -> int:
        return len(self.ids)

    def value(self, slot: int, x: float) -> Value:
        """A reported (or authorised) number as the journal records it: a directive's index as
        its state's name, when there is such a state."""
        if self.kinds[slot] is ControlKind.DIRECTIVE:
            name = _state_name(self.states[slot], x)
            return name if name is not None else x
        return x

    def show(self, slot: int, x: float) -> str:
        """A number as an operator reads it: "5.3 bar", "off", "7 (no such state)"."""
        if self.kinds[slot] is ControlKind.DIRECTIVE:
            name = _state_name(self.states[slot], x)
            return name if name is not None else f"{x:.6g} (no such state)"
        unit = self.units[slot]
        return f"{x:.6g} {unit}" if unit else f"{x:.6g}"


@dataclass(frozen=True, slots=True)
class Targets:
    """What each watched readback is compared with (arrays over the `WatchList`)."""

    version: int
    authorised: F64  # a setpoint's value, a directive's state index
    tolerance: F64  # absolute; 0 for a directive
    previous: F64  # the value before an authorised change, while it is still accepted; NaN: none
    until: F64  # sample time until which `previous` is accepted; -inf: none


@dataclass(slots=True)
class _Entry:
    kind: ControlKind
    spec: Setpoint | Directive
    value: Value
    changed_at: float
    changed_by: str
    reason: str
    slot: int = -1  # position in the watch list; -1: no readback signal
    previous: float = math.nan
    until: float = -math.inf

    @property
    def key(self) -> str:
        return control_key(self.kind, self.spec.id)

    def number(self, value: Value) -> float:
        """A value as the readback reports it: a setpoint's number, a directive's index."""
        if isinstance(self.spec, Directive):
            return float(self.spec.states.index(str(value)))
        return float(value)


class ConfigurationRegistry:
    """The authorised setpoints and directives of a site; see the module doc."""

    def __init__(self, site: Site, table: SignalTable, store: SqliteStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.RLock()
        self._version = 0
        self._entries: dict[str, _Entry] = {}
        specs: list[Setpoint | Directive] = [*site.setpoints, *site.directives]
        for spec in specs:
            self._entries[spec.id] = self._restore(spec)
        watched = [e for e in self._entries.values() if e.spec.signal is not None]
        for slot, entry in enumerate(watched):
            entry.slot = slot
        self._watched = watched
        self._watch = WatchList(
            ids=tuple(e.spec.id for e in watched),
            kinds=tuple(e.kind for e in watched),
            assets=tuple(e.spec.asset for e in watched),
            signals=tuple(str(e.spec.signal) for e in watched),
            units=tuple(e.spec.unit if isinstance(e.spec, Setpoint) else "" for e in watched),
            states=tuple(
                tuple(e.spec.states) if isinstance(e.spec, Directive) else () for e in watched
            ),
            cols=np.asarray([table.index[str(e.spec.signal)] for e in watched], dtype=np.intp),
        )
        self._targets = self._build_targets()
        # What each readback last reported, and when (NaN: nothing yet): arrays, because the
        # pipeline updates them on every frame.
        self._reported = np.full(len(watched), np.nan)
        self._reported_at = np.full(len(watched), np.nan)
        self._listeners: list[Callable[[ControlState], None]] = []

    # -- queries -----------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Moves whenever something the comparison depends on changes (a plain int read: the
        pipeline checks it on every frame without the lock)."""
        return self._version

    def watch_list(self) -> WatchList:
        return self._watch

    def targets(self) -> Targets:
        with self._lock:
            return self._targets

    def states(self, kind: ControlKind | None = None) -> list[ControlState]:
        """Every setpoint and directive (or those of `kind`) in the site file's order."""
        with self._lock:
            return [
                self._state(e) for e in self._entries.values() if kind is None or e.kind is kind
            ]

    def get(self, control_id: str, kind: ControlKind | None = None) -> ControlState:
        with self._lock:
            return self._state(self._find(control_id, kind))

    def history(
        self, control_id: str, kind: ControlKind | None = None, *, limit: int = 500
    ) -> list[Event]:
        """The journal of one setpoint or directive, newest first: authorised changes
        (`config.changed`) and changes seen in telemetry (`config.observed_change`)."""
        with self._lock:
            key = self._find(control_id, kind).key
        return self._store.events(subject=key, limit=limit)

    # -- authorised changes ------------------------------------------------------------------

    def subscribe(self, listener: Callable[[ControlState], None]) -> None:
        """Call `listener` with the new state after every authorised change: how a change
        reaches the controllers (the simulator's). It runs on the changing thread under the
        registry's lock, so that listeners see changes in the order they were made: it must be
        quick and must not call back into the registry."""
        self._listeners.append(listener)

    def change(
        self,
        control_id: str,
        value: Value,
        user: str,
        reason: str,
        *,
        kind: ControlKind | None = None,
    ) -> ControlState:
        """Authorise a new value: checked against the declaration, stored and journalled with
        `user`, the time, the diff and `reason`. Setting the value it already has changes
        nothing and journals nothing. Raises `NotFoundError` for an unknown id (or one of the
        other kind), `ControlError` for a value the declaration does not allow."""
        user, reason = user.strip(), reason.strip()
        with self._lock:
            entry = self._find(control_id, kind)
            what = f"{entry.kind.value} '{control_id}'"
            if not user:
                raise ControlError(f"changing {what} needs a user name")
            if not reason:
                raise ControlError(f"changing {what} needs a reason")
            problem = _refused(entry.spec, value)
            if problem is not None:
                raise ControlError(problem)
            new: Value = value if isinstance(value, str) else float(value)
            if new == entry.value:
                return self._state(entry)
            now = self._clock.now()
            self._store.put_config(
                entry.key,
                _document(new, entry.spec.value, reason),
                time=now,
                actor=user,
                event=_diff(entry, entry.value, new, reason),
            )
            if entry.slot >= 0:
                entry.previous = entry.number(entry.value)
                entry.until = now + APPLY_GRACE
            entry.value, entry.changed_at, entry.changed_by, entry.reason = new, now, user, reason
            self._touch()
            state = self._state(entry)
            for listener in self._listeners:
                listener(state)
            return state

    # -- what the pipeline sees --------------------------------------------------------------

    def confirm(self, slots: Iterable[int], version: int) -> None:
        """The controllers at `slots` have reported their new authorised value: the old one is
        no longer acceptable from them. `version` is that of the targets compared with; after
        another change since, the next frame decides again."""
        with self._lock:
            if version != self._version:
                return
            for slot in slots:
                entry = self._watched[slot]
                entry.previous, entry.until = math.nan, -math.inf
            self._touch()

    def record_reports(self, slots: Index, values: F64, times: F64) -> None:
        """The latest value each readback at `slots` reported, and when (for the API)."""
        with self._lock:
            newer = ~(times < self._reported_at[slots])  # NaN (nothing yet) compares False
            self._reported[slots[newer]] = values[newer]
            self._reported_at[slots[newer]] = times[newer]

    def observed(
        self, slot: int, time: float, before: float, after: float, *, restored: bool
    ) -> None:
        """Journal a change seen in telemetry: the readback at `slot` moved from `before` to
        `after` (`restored`: back to the authorised value)."""
        watch = self._watch
        with self._lock:
            entry = self._watched[slot]
            data = {
                "kind": entry.kind.value,
                "id": entry.spec.id,
                "asset": entry.spec.asset,
                "signal": entry.spec.signal,
                "from": watch.value(slot, before),
                "to": watch.value(slot, after),
                "authorised": entry.value,
                "restored": restored,
            }
            self._store.add_event(time, OBSERVED_CHANGE, TELEMETRY_ACTOR, entry.key, data)

    # -- internals ---------------------------------------------------------------------------

    def _find(self, control_id: str, kind: ControlKind | None) -> _Entry:
        entry = self._entries.get(control_id)
        if entry is None or (kind is not None and entry.kind is not kind):
            what = kind.value if kind is not None else "setpoint or directive"
            raise NotFoundError(f"no {what} '{control_id[:64]}'")
        return entry

    def _touch(self) -> None:
        self._version += 1
        self._targets = self._build_targets()

    def _build_targets(self) -> Targets:
        w = self._watched
        return Targets(
            version=self._version,
            authorised=np.asarray([e.number(e.value) for e in w], dtype=np.float64),
            tolerance=np.asarray(
                [e.spec.allowed_deviation if isinstance(e.spec, Setpoint) else 0.0 for e in w],
                dtype=np.float64,
            ),
            previous=np.asarray([e.previous for e in w], dtype=np.float64),
            until=np.asarray([e.until for e in w], dtype=np.float64),
        )

    def _restore(self, spec: Setpoint | Directive) -> _Entry:
        """The last authorised value from the store, or the declared one (journalled as set by
        the site) at the first start, after an edit of the site file, or when the stored value
        is no longer allowed by the declaration."""
        kind = ControlKind.SETPOINT if isinstance(spec, Setpoint) else ControlKind.DIRECTIVE
        entry = _Entry(kind, spec, spec.value, 0.0, SITE_ACTOR, "")
        versions = self._store.config_history(entry.key)
        previous: Value | None = None
        if versions:
            last = versions[-1]
            doc = _parse(last.text)
            if doc is None:
                why = "the stored value is unreadable: the site file's value applies"
            else:
                value, declared, reason = doc
                previous = value
                problem = _refused(spec, value)
                if declared != spec.value:
                    why = "the site file declares a new value"
                elif problem is not None:
                    why = f"the stored value is no longer allowed: {problem}"
                else:
                    entry.value, entry.changed_at, entry.changed_by = value, last.time, last.actor
                    entry.reason = reason
                    return entry
        else:
            why = "declared in the site file"
        now = self._clock.now()
        self._store.put_config(
            entry.key,
            _document(spec.value, spec.value, why),
            time=now,
            actor=SITE_ACTOR,
            event=_diff(entry, previous, spec.value, why),
        )
        entry.changed_at, entry.reason = now, why
        return entry

    def _state(self, e: _Entry) -> ControlState:
        spec = e.spec
        common: dict[str, Any] = {
            "id": spec.id,
            "kind": e.kind,
            "asset": spec.asset,
            "value": e.value,
            "declared": spec.value,
            "changed_at": e.changed_at,
            "changed_by": e.changed_by,
            "reason": e.reason,
            "signal": spec.signal,
            "reported": None if e.slot < 0 else _optional(self._reported[e.slot]),
            "reported_at": None if e.slot < 0 else _optional(self._reported_at[e.slot]),
            "description": spec.description,
        }
        if isinstance(spec, Setpoint):
            span = (spec.range.low, spec.range.high) if spec.range is not None else None
            return ControlState(
                **common, unit=spec.unit, tolerance=spec.allowed_deviation, range=span
            )
        return ControlState(**common, states=tuple(spec.states))


def _optional(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _state_name(states: tuple[str, ...], x: float) -> str | None:
    if math.isfinite(x) and x == int(x) and 0 <= int(x) < len(states):
        return states[int(x)]
    return None


def _refused(spec: Setpoint | Directive, value: object) -> str | None:
    """Why `value` may not be authorised for `spec`, or None if it may."""
    if isinstance(spec, Directive):
        if not isinstance(value, str) or value not in spec.states:
            return (
                f"'{str(value)[:64]}' is not a state of directive '{spec.id}'"
                f" ({', '.join(spec.states)})"
            )
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"setpoint '{spec.id}' takes a number, not '{str(value)[:64]}'"
    if not math.isfinite(value):
        return f"setpoint '{spec.id}' takes a finite number, not {value}"
    span = spec.range
    if span is not None and not span.low <= value <= span.high:
        return (
            f"{value:g} is outside the range [{span.low:g}, {span.high:g}] of setpoint '{spec.id}'"
        )
    return None


def _document(value: Value, declared: Value, reason: str) -> str:
    """A stored version: the authorised value, the declared value it was derived from (to tell
    an edit of the site file), and why it was set."""
    return json.dumps({"value": value, "declared": declared, "reason": reason}, sort_keys=True)


def _parse(text: str) -> tuple[Value, Value, str] | None:
    """(value, declared, reason) of a stored version; None if it cannot be read."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    value, declared = _value(doc.get("value")), _value(doc.get("declared"))
    if value is None or declared is None:
        return None
    return value, declared, str(doc.get("reason", ""))


def _value(raw: object) -> Value | None:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    return None


def _diff(entry: _Entry, old: Value | None, new: Value, reason: str) -> dict[str, object]:
    return {
        "kind": entry.kind.value,
        "id": entry.spec.id,
        "asset": entry.spec.asset,
        "from": old,
        "to": new,
        "reason": reason,
    }
