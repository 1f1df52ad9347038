"""The ISA-18.2 alarm lifecycle as one explicit state machine.

An alarm has two facts that move on their own: its *condition* (the process is abnormal or not,
set by the detectors) and what the operators have done about it. The states (ISA-18.2's state
diagram, letters as there):

    A  normal                   condition clear, nothing to acknowledge
    B  unacknowledged           condition active, not acknowledged
    C  acknowledged             condition active, acknowledged
    D  returned_unacknowledged  condition clear again, never acknowledged
    E  latched                  a latching alarm whose condition cleared after acknowledgement:
                                stays on the list until an operator resets it
    F  shelved                  taken off the list by an operator, for a time or until the
                                condition next clears (one-shot); at most `max_shelve` seconds
    G  suppressed               taken off the list by design (a plant state, a maintenance window)
    H  out_of_service           taken off the list by an operator (an instrument being repaired)

The condition is followed in every state, so that an alarm coming back from F, G or H goes
straight to what its condition says: B if still active (annunciated again, as the operator has
not seen this occurrence), A if clear.

`Lifecycle.apply(event)` is the only way to change an alarm: it either returns the `Transition`
it made (with who or what caused it, when, and a note), returns None for an event that changes
nothing (a condition already known; a detector's report about an alarm in a removed state is
still followed as the condition), or raises `AlarmError` naming the state and the event for an
event that is not allowed there (acknowledging a normal alarm, resetting one that is not
latched, shelving beyond the maximum). `TRANSITIONS` lists every (from, to) pair the machine
can make; the property test drives random event sequences against it.

>>> life = Lifecycle(latching=True)
>>> life.apply(Activate(time=1.0)).to_state
<AlarmState.UNACKNOWLEDGED: 'unacknowledged'>
>>> life.apply(Acknowledge(time=2.0, actor="ann", note="crew sent")).to_state
<AlarmState.ACKNOWLEDGED: 'acknowledged'>
>>> life.apply(Clear(time=3.0)).to_state  # latching: waits for a reset
<AlarmState.LATCHED: 'latched'>
>>> life.apply(Reset(time=4.0, actor="ann")).to_state
<AlarmState.NORMAL: 'normal'>
"""

from __future__ import annotations

from dataclasses import dataclass

from safety_nexus.core.errors import AlarmError
from safety_nexus.core.types import AlarmState

S = AlarmState
DETECTOR = "detector"  # the actor of condition changes
TIMER = "timer"  # the actor of a shelf that runs out
MAX_SHELVE = 8 * 3600.0  # seconds: a shift; sites may set less

# States in which the alarm is on the operators' list.
SHOWN = frozenset({S.UNACKNOWLEDGED, S.ACKNOWLEDGED, S.RETURNED_UNACKNOWLEDGED, S.LATCHED})
# States that take the alarm off the list whatever its condition.
REMOVED = frozenset({S.SHELVED, S.SUPPRESSED, S.OUT_OF_SERVICE})


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Activate:
    """The condition became (or still is) active."""

    time: float
    actor: str = DETECTOR


@dataclass(frozen=True, slots=True)
class Clear:
    """The condition returned to normal."""

    time: float
    actor: str = DETECTOR


@dataclass(frozen=True, slots=True)
class OperatorEvent:
    """What a person (or, for suppression, a plant state or maintenance window) does."""

    time: float
    actor: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Acknowledge(OperatorEvent):
    pass


@dataclass(frozen=True, slots=True)
class Reset(OperatorEvent):
    """An operator releases a latched alarm."""


@dataclass(frozen=True, slots=True)
class Shelve:
    """Off the list until `until` (a time), or with `one_shot` until the condition next clears
    (and at most `max_shelve` seconds either way)."""

    time: float
    actor: str
    until: float | None = None
    one_shot: bool = False
    note: str = ""


@dataclass(frozen=True, slots=True)
class Unshelve(OperatorEvent):
    pass


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passes: a shelf whose time is up ends."""

    time: float
    actor: str = TIMER


@dataclass(frozen=True, slots=True)
class Suppress(OperatorEvent):
    """Suppressed by design: `actor` names the plant state or maintenance window."""


@dataclass(frozen=True, slots=True)
class Unsuppress(OperatorEvent):
    pass


@dataclass(frozen=True, slots=True)
class RemoveFromService(OperatorEvent):
    pass


@dataclass(frozen=True, slots=True)
class ReturnToService(OperatorEvent):
    pass


Event = (
    Activate
    | Clear
    | Acknowledge
    | Reset
    | Shelve
    | Unshelve
    | Tick
    | Suppress
    | Unsuppress
    | RemoveFromService
    | ReturnToService
)

_NAMES: dict[type, str] = {
    Activate: "activate",
    Clear: "clear",
    Acknowledge: "acknowledge",
    Reset: "reset",
    Shelve: "shelve",
    Unshelve: "unshelve",
    Tick: "tick",
    Suppress: "suppress",
    Unsuppress: "unsuppress",
    RemoveFromService: "remove_from_service",
    ReturnToService: "return_to_service",
}


def event_name(event: Event) -> str:
    return _NAMES[type(event)]


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of state, as journalled."""

    from_state: AlarmState
    to_state: AlarmState
    event: str  # event_name of the cause
    actor: str  # who (a user) or what (detector, timer, a maintenance window)
    time: float
    note: str = ""


# Every change of state the machine makes (the property test checks each against this).
TRANSITIONS: frozenset[tuple[AlarmState, AlarmState]] = frozenset(
    {
        (S.NORMAL, S.UNACKNOWLEDGED),  # activate
        (S.UNACKNOWLEDGED, S.ACKNOWLEDGED),  # acknowledge
        (S.UNACKNOWLEDGED, S.RETURNED_UNACKNOWLEDGED),  # clear
        (S.ACKNOWLEDGED, S.NORMAL),  # clear
        (S.ACKNOWLEDGED, S.LATCHED),  # clear, latching
        (S.RETURNED_UNACKNOWLEDGED, S.NORMAL),  # acknowledge
        (S.RETURNED_UNACKNOWLEDGED, S.LATCHED),  # acknowledge, latching
        (S.RETURNED_UNACKNOWLEDGED, S.UNACKNOWLEDGED),  # activate again
        (S.LATCHED, S.NORMAL),  # reset
        (S.LATCHED, S.UNACKNOWLEDGED),  # activate again
        # off the list from any state on it or normal, and between the removed states
        *((a, b) for a in (S.NORMAL, *SHOWN) for b in REMOVED),
        *((a, b) for a in REMOVED for b in REMOVED if a != b),
        # back on: where the condition says
        *((a, b) for a in REMOVED for b in (S.NORMAL, S.UNACKNOWLEDGED)),
    }
)


@dataclass(slots=True)
class Lifecycle:
    """One alarm's state. `latching` alarms need a reset after they clear; `max_shelve` bounds
    every shelf (seconds)."""

    state: AlarmState = S.NORMAL
    condition: bool = False  # the process is abnormal (followed in every state)
    latching: bool = False
    max_shelve: float = MAX_SHELVE
    shelved_until: float | None = None  # while shelved: when the shelf ends
    one_shot: bool = False  # while shelved: the shelf ends when the condition clears
    # Removals stack: an alarm suppressed by design and also taken out of service stays off the
    # list until both are lifted; the state shows the latest.
    suppressed: bool = False
    out_of_service: bool = False

    @property
    def shown(self) -> bool:
        """On the operators' list."""
        return self.state in SHOWN

    def apply(self, event: Event) -> Transition | None:
        """Apply one event: the transition made, None if nothing changed; AlarmError if the event
        is not allowed in this state (nothing changes then)."""
        match event:
            case Activate():
                return self._activate(event)
            case Clear():
                return self._clear(event)
            case Acknowledge():
                return self._acknowledge(event)
            case Reset():
                return self._reset(event)
            case Shelve():
                return self._shelve(event)
            case Unshelve():
                return self._unshelve(event)
            case Tick():
                return self._tick(event)
            case Suppress():
                return self._suppress(event)
            case Unsuppress():
                return self._unsuppress(event)
            case RemoveFromService():
                return self._remove_from_service(event)
            case ReturnToService():
                return self._return_to_service(event)

    # -- condition ----------------------------------------------------------------------------

    def _activate(self, e: Activate) -> Transition | None:
        self.condition = True
        if self.state in (S.NORMAL, S.RETURNED_UNACKNOWLEDGED, S.LATCHED):
            return self._go(S.UNACKNOWLEDGED, e)  # a new occurrence
        return None  # active already, or off the list (followed, not shown)

    def _clear(self, e: Clear) -> Transition | None:
        self.condition = False
        if self.state is S.SHELVED and self.one_shot:
            return self._leave_removed(S.SHELVED, e)
        if self.state is S.UNACKNOWLEDGED:
            return self._go(S.RETURNED_UNACKNOWLEDGED, e)
        if self.state is S.ACKNOWLEDGED:
            return self._go(S.LATCHED if self.latching else S.NORMAL, e)
        return None

    # -- operators ----------------------------------------------------------------------------

    def _acknowledge(self, e: Acknowledge) -> Transition:
        if self.state is S.UNACKNOWLEDGED:
            return self._go(S.ACKNOWLEDGED, e)
        if self.state is S.RETURNED_UNACKNOWLEDGED:
            return self._go(S.LATCHED if self.latching else S.NORMAL, e)
        raise self._refuse(e, "nothing to acknowledge")

    def _reset(self, e: Reset) -> Transition:
        if self.state is not S.LATCHED:
            raise self._refuse(e, "only a latched alarm is reset")
        return self._go(S.NORMAL, e)

    def _shelve(self, e: Shelve) -> Transition:
        if self.state in (S.SUPPRESSED, S.OUT_OF_SERVICE, S.SHELVED):
            raise self._refuse(e, "it is off the list already")
        if e.one_shot == (e.until is not None):
            raise AlarmError("shelving needs either an end time or one-shot, not both")
        until = e.time + self.max_shelve if e.one_shot else e.until
        assert until is not None
        if until <= e.time:
            raise AlarmError("a shelf must end after it starts")
        if until - e.time > self.max_shelve:
            raise AlarmError(
                f"shelving for {until - e.time:.0f} s exceeds the maximum of"
                f" {self.max_shelve:.0f} s"
            )
        self.shelved_until, self.one_shot = until, e.one_shot
        return self._go(S.SHELVED, e)

    def _unshelve(self, e: Unshelve) -> Transition | None:
        if self.state is not S.SHELVED:
            raise self._refuse(e, "it is not shelved")
        return self._leave_removed(S.SHELVED, e)

    def _tick(self, e: Tick) -> Transition | None:
        due = self.shelved_until is not None and e.time >= self.shelved_until
        return self._leave_removed(S.SHELVED, e) if self.state is S.SHELVED and due else None

    def _suppress(self, e: Suppress) -> Transition | None:
        if self.suppressed:
            return None
        self.suppressed = True
        return self._remove(S.SUPPRESSED, e)

    def _unsuppress(self, e: Unsuppress) -> Transition | None:
        if not self.suppressed:
            raise self._refuse(e, "it is not suppressed")
        self.suppressed = False
        return self._leave_removed(S.SUPPRESSED, e)

    def _remove_from_service(self, e: RemoveFromService) -> Transition | None:
        if self.out_of_service:
            raise self._refuse(e, "it is out of service already")
        self.out_of_service = True
        return self._remove(S.OUT_OF_SERVICE, e)

    def _return_to_service(self, e: ReturnToService) -> Transition | None:
        if not self.out_of_service:
            raise self._refuse(e, "it is in service")
        self.out_of_service = False
        return self._leave_removed(S.OUT_OF_SERVICE, e)

    # -- helpers ------------------------------------------------------------------------------

    def _remove(self, to: AlarmState, e: Event) -> Transition | None:
        """Into a removed state; out of service wins over suppressed, both over a shelf (which
        they end: a shelf is a short operator decision, not something to come back to)."""
        if self.state is S.OUT_OF_SERVICE and to is S.SUPPRESSED:
            return None  # out of service shows; the suppression waits underneath
        self.shelved_until, self.one_shot = None, False
        return self._go(to, e)

    def _leave_removed(self, removal: AlarmState, e: Event) -> Transition | None:
        """`removal` is lifted: to the other removal still in force, else where the condition
        says (annunciated anew if active)."""
        self.shelved_until, self.one_shot = None, False
        if self.state is not removal:
            return None  # it was underneath another removal, which still shows
        if self.out_of_service:
            to = S.OUT_OF_SERVICE
        elif self.suppressed:
            to = S.SUPPRESSED
        else:
            to = S.UNACKNOWLEDGED if self.condition else S.NORMAL
        return self._go(to, e)

    def _go(self, to: AlarmState, e: Event) -> Transition:
        t = Transition(
            from_state=self.state,
            to_state=to,
            event=event_name(e),
            actor=e.actor,
            time=e.time,
            note=getattr(e, "note", ""),
        )
        self.state = to
        return t

    def _refuse(self, e: Event, why: str) -> AlarmError:
        action = event_name(e).replace("_", " ")
        return AlarmError(f"cannot {action}: the alarm is {self.state.value} ({why})")
