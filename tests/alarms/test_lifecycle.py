"""The ISA-18.2 lifecycle: random event sequences reach no illegal state, every transition is a
declared one and names its cause; the rules one by one."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safety_nexus.alarms.lifecycle import (
    REMOVED,
    SHOWN,
    TRANSITIONS,
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
    event_name,
)
from safety_nexus.core.errors import AlarmError
from safety_nexus.core.types import AlarmState

S = AlarmState
USERS = st.sampled_from(["ann", "bob"])


@st.composite
def _events(draw: st.DrawFn) -> list[Event]:
    """A sequence of any events at rising times (shelves of any length, some too long)."""
    count = draw(st.integers(1, 60))
    t = 0.0
    out: list[Event] = []
    for _ in range(count):
        t += draw(st.sampled_from([0.0, 1.0, 60.0, 3600.0, 9 * 3600.0]))
        kind = draw(st.integers(0, 10))
        user = draw(USERS)
        if kind == 0:
            out.append(Activate(t))
        elif kind == 1:
            out.append(Clear(t))
        elif kind == 2:
            out.append(Acknowledge(t, user, note=draw(st.sampled_from(["", "checked"]))))
        elif kind == 3:
            out.append(Reset(t, user))
        elif kind == 4:
            one_shot = draw(st.booleans())
            length = draw(st.sampled_from([-1.0, 30.0, 3600.0, 8 * 3600.0, 9 * 3600.0]))
            out.append(Shelve(t, user, until=None if one_shot else t + length, one_shot=one_shot))
        elif kind == 5:
            out.append(Unshelve(t, user))
        elif kind == 6:
            out.append(Tick(t))
        elif kind == 7:
            out.append(Suppress(t, "maintenance-window-3"))
        elif kind == 8:
            out.append(Unsuppress(t, "maintenance-window-3"))
        elif kind == 9:
            out.append(RemoveFromService(t, user))
        else:
            out.append(ReturnToService(t, user))
    return out


def _check_invariants(life: Lifecycle) -> None:
    """What no reachable state may violate."""
    state = life.state
    if state in (S.UNACKNOWLEDGED, S.ACKNOWLEDGED):
        assert life.condition, state
    if state in (S.NORMAL, S.RETURNED_UNACKNOWLEDGED, S.LATCHED):
        assert not life.condition, state
    if state is S.LATCHED:
        assert life.latching
    if state is S.SHELVED:
        assert life.shelved_until is not None
        assert not life.suppressed
        assert not life.out_of_service
    else:
        assert life.shelved_until is None
        assert not life.one_shot
    if state is S.SUPPRESSED:
        assert life.suppressed
        assert not life.out_of_service
    if state is S.OUT_OF_SERVICE:
        assert life.out_of_service
    if state not in REMOVED:
        assert not life.suppressed
        assert not life.out_of_service
    assert life.shown == (state in SHOWN)


@settings(max_examples=400, deadline=None)
@given(_events(), st.booleans())
def test_no_illegal_state_is_reachable_and_every_transition_is_recorded(
    events: list[Event], latching: bool
) -> None:
    life = Lifecycle(latching=latching, max_shelve=8 * 3600.0)
    journal: list[Transition] = []
    for event in events:
        before = copy.copy(life)
        refusal: str | None = None
        try:
            t = life.apply(event)
        except AlarmError as err:
            refusal = str(err)
        if refusal is not None:  # a refusal says why and changes nothing
            assert refusal
            assert life == before
            continue
        _check_invariants(life)
        if t is None:
            assert life.state is before.state
            continue
        assert (t.from_state, t.to_state) in TRANSITIONS, t
        assert t.from_state is before.state
        assert t.to_state is life.state
        assert t.from_state is not t.to_state
        assert t.event == event_name(event)
        assert t.actor == event.actor
        assert t.actor
        assert t.time == event.time
        journal.append(t)
    # the journal alone replays the state: each transition starts where the last one ended
    state = S.NORMAL
    for t in journal:
        assert t.from_state is state
        state = t.to_state
    assert state is life.state


def _run(life: Lifecycle, *events: Event) -> list[AlarmState]:
    out = []
    for e in events:
        life.apply(e)
        out.append(life.state)
    return out


def test_the_plain_cycle() -> None:
    life = Lifecycle()
    assert _run(life, Activate(1), Acknowledge(2, "ann"), Clear(3)) == [
        S.UNACKNOWLEDGED,
        S.ACKNOWLEDGED,
        S.NORMAL,
    ]
    assert _run(life, Activate(4), Clear(5), Acknowledge(6, "ann")) == [
        S.UNACKNOWLEDGED,
        S.RETURNED_UNACKNOWLEDGED,
        S.NORMAL,
    ]


def test_a_return_before_acknowledgement_is_annunciated_again_when_it_recurs() -> None:
    life = Lifecycle()
    assert _run(life, Activate(1), Clear(2), Activate(3)) == [
        S.UNACKNOWLEDGED,
        S.RETURNED_UNACKNOWLEDGED,
        S.UNACKNOWLEDGED,
    ]


def test_a_latching_alarm_waits_for_a_reset() -> None:
    life = Lifecycle(latching=True)
    assert _run(life, Activate(1), Clear(2), Acknowledge(3, "ann")) == [
        S.UNACKNOWLEDGED,
        S.RETURNED_UNACKNOWLEDGED,
        S.LATCHED,
    ]
    t = life.apply(Reset(4, "ann", note="valve replaced"))
    assert t is not None
    assert (t.to_state, t.actor, t.note) == (S.NORMAL, "ann", "valve replaced")
    with pytest.raises(AlarmError, match="only a latched alarm is reset"):
        life.apply(Reset(5, "ann"))


def test_a_shelf_ends_on_time_and_the_alarm_comes_back_as_its_condition_says() -> None:
    life = Lifecycle()
    _run(life, Activate(1), Acknowledge(2, "ann"), Shelve(3, "ann", until=3 + 600))
    assert life.state is S.SHELVED
    assert not life.shown
    assert life.apply(Tick(500)) is None  # not yet
    t = life.apply(Tick(603))
    assert t is not None
    assert (t.to_state, t.actor) == (S.UNACKNOWLEDGED, "timer")


def test_a_one_shot_shelf_ends_when_the_condition_clears() -> None:
    life = Lifecycle()
    _run(life, Activate(1), Shelve(2, "ann", one_shot=True))
    assert life.apply(Activate(3)) is None  # followed, not shown
    t = life.apply(Clear(4))
    assert t is not None
    assert (t.from_state, t.to_state) == (S.SHELVED, S.NORMAL)


def test_shelving_is_bounded_and_needs_one_end() -> None:
    life = Lifecycle(max_shelve=3600.0)
    life.apply(Activate(0))
    with pytest.raises(AlarmError, match="exceeds the maximum of 3600 s"):
        life.apply(Shelve(1, "ann", until=1 + 7200))
    with pytest.raises(AlarmError, match="either an end time or one-shot"):
        life.apply(Shelve(1, "ann"))
    with pytest.raises(AlarmError, match="end after it starts"):
        life.apply(Shelve(1, "ann", until=1.0))
    assert life.state is S.UNACKNOWLEDGED


def test_removals_stack_and_the_alarm_returns_to_what_its_condition_says() -> None:
    life = Lifecycle()
    assert _run(life, Activate(1), Suppress(2, "plant-state:shutdown")) == [
        S.UNACKNOWLEDGED,
        S.SUPPRESSED,
    ]
    assert _run(life, RemoveFromService(3, "bob"), Unsuppress(4, "plant-state:shutdown")) == [
        S.OUT_OF_SERVICE,
        S.OUT_OF_SERVICE,  # still out of service
    ]
    assert _run(life, Clear(5), ReturnToService(6, "bob")) == [S.OUT_OF_SERVICE, S.NORMAL]


def test_refusals_name_the_state_and_the_action() -> None:
    life = Lifecycle()
    with pytest.raises(AlarmError, match="cannot acknowledge: the alarm is normal"):
        life.apply(Acknowledge(1, "ann"))
    with pytest.raises(AlarmError, match="cannot return to service: the alarm is normal"):
        life.apply(ReturnToService(1, "ann"))
    life.apply(Suppress(2, "maintenance"))
    with pytest.raises(AlarmError, match="cannot shelve: the alarm is suppressed"):
        life.apply(Shelve(3, "ann", one_shot=True))
