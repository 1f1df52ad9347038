"""Operator actions through the manager: each recorded with who, when and why."""

from __future__ import annotations

import pytest

from findings import finding, recovery
from safety_nexus.alarms.manager import AlarmManager, ExternalAlert
from safety_nexus.core.clock import ManualClock
from safety_nexus.core.errors import AlarmError
from safety_nexus.core.types import AlarmState, FindingKind, Priority
from safety_nexus.store.sqlite import SqliteStore

CORE = "core-1:level_shift"
ZONE = "zone-1:level_shift"


def _last(store: SqliteStore, subject: str) -> tuple[str, str, dict[str, object]]:
    e = store.events(subject=subject, limit=1)[0]
    return e.kind, e.actor, e.data


def test_acknowledge_records_the_note(
    chain: AlarmManager, clock: ManualClock, store: SqliteStore
) -> None:
    chain.process([finding("core-1.x", 100.0)])
    clock.set(130.0)
    alarm = chain.acknowledge(CORE, "ann", "crew on the way")
    assert alarm.state is AlarmState.ACKNOWLEDGED
    assert (alarm.acknowledged_by, alarm.acknowledged_at) == ("ann", 130.0)
    kind, actor, data = _last(store, CORE)
    assert (kind, actor) == ("alarm.acknowledged", "ann")
    assert data["note"] == "crew on the way"
    assert data["event"] == "acknowledge"
    with pytest.raises(AlarmError, match="nothing to acknowledge"):
        chain.acknowledge(CORE, "ann")
    assert chain.get(CORE).acknowledged_at == 130.0  # a refusal changes nothing


def test_timed_shelf_ends_by_itself(
    chain: AlarmManager, clock: ManualClock, store: SqliteStore
) -> None:
    chain.process([finding("core-1.x", 100.0)])
    clock.set(110.0)
    shelved = chain.shelve(CORE, "ann", duration=600.0, note="known, crew there")
    assert shelved.state is AlarmState.SHELVED
    assert shelved.shelved_until == 710.0
    assert chain.alarms() == []
    assert [a.id for a in chain.alarms(view="removed")] == [CORE]
    chain.tick(709.0)
    assert chain.get(CORE).state is AlarmState.SHELVED
    chain.tick(710.0)  # the shelf is up and the condition still active: annunciated again
    assert chain.get(CORE).state is AlarmState.UNACKNOWLEDGED
    assert _last(store, CORE)[:2] == ("alarm.unacknowledged", "timer")


def test_one_shot_shelf_ends_when_the_condition_clears(
    chain: AlarmManager, clock: ManualClock
) -> None:
    chain.process([finding("core-1.x", 100.0)])
    clock.set(100.0)
    chain.shelve(CORE, "ann", one_shot=True)
    chain.process([], [recovery("core-1.x", 200.0)])
    assert chain.get(CORE).state is AlarmState.NORMAL


def test_shelving_is_bounded(chain: AlarmManager) -> None:
    chain.process([finding("core-1.x", 100.0)])
    with pytest.raises(AlarmError, match="exceeds the maximum"):
        chain.shelve(CORE, "ann", duration=9 * 3600.0)
    with pytest.raises(AlarmError, match="positive"):
        chain.shelve(CORE, "ann", duration=-5.0)
    with pytest.raises(AlarmError, match="not both"):
        chain.shelve(CORE, "ann", duration=60.0, one_shot=True)
    with pytest.raises(AlarmError, match="user"):
        chain.shelve(CORE, " ", duration=60.0)
    assert chain.get(CORE).state is AlarmState.UNACKNOWLEDGED


def test_unshelve_brings_it_back(chain: AlarmManager, clock: ManualClock) -> None:
    chain.process([finding("core-1.x", 100.0)])
    clock.set(100.0)
    chain.shelve(CORE, "ann", duration=60.0)
    assert chain.unshelve(CORE, "bob").state is AlarmState.UNACKNOWLEDGED
    with pytest.raises(AlarmError, match="not shelved"):
        chain.unshelve(CORE, "bob")


def test_out_of_service_follows_the_condition_and_returns(
    chain: AlarmManager, store: SqliteStore, clock: ManualClock
) -> None:
    chain.process([finding("core-1.x", 100.0)])
    clock.set(150.0)
    alarm = chain.remove_from_service(CORE, "ann", "sensor being replaced")
    assert alarm.state is AlarmState.OUT_OF_SERVICE
    assert alarm.out_of_service
    chain.process([], [recovery("core-1.x", 200.0)])
    chain.process([finding("core-1.x", 300.0)])  # still off the list while out of service
    assert chain.alarms() == []
    chain.process([], [recovery("core-1.x", 400.0)])
    clock.set(450.0)
    back = chain.return_to_service(CORE, "ann")
    assert back.state is AlarmState.NORMAL  # clear when it returns: nothing to show
    assert not back.out_of_service
    kinds = [e.kind for e in store.events(subject=CORE)]
    assert kinds[:2] == ["alarm.normal", "alarm.out_of_service"]


def test_emergency_alarms_latch_until_reset(
    chain: AlarmManager, clock: ManualClock, store: SqliteStore
) -> None:
    chain.process([finding("zone-1.x", 100.0)])
    zone = chain.get(ZONE)
    assert zone.priority is Priority.EMERGENCY
    assert zone.latching
    chain.acknowledge(ZONE, "ann")
    chain.process([], [recovery("zone-1.x", 200.0)])
    assert chain.get(ZONE).state is AlarmState.LATCHED
    assert [a.id for a in chain.alarms()] == [ZONE]  # still on the list
    chain.process([finding("core-1.x", 250.0)])
    with pytest.raises(AlarmError, match="only a latched alarm"):
        chain.reset(CORE, "ann")
    clock.set(300.0)
    assert chain.reset(ZONE, "ann", "zone inspected").state is AlarmState.NORMAL
    assert _last(store, ZONE)[:2] == ("alarm.normal", "ann")


def test_external_alerts_raise_and_clear(chain: AlarmManager) -> None:
    fire = ExternalAlert(
        name="DiskFull",
        asset="core-1",
        time=100.0,
        firing=True,
        priority=Priority.HIGH,
        message="disk 98 % full",
    )
    [alarm] = chain.on_external([fire])
    assert alarm.id == "core-1:external:DiskFull"
    assert alarm.kind is FindingKind.EXTERNAL
    assert alarm.subsystem == "compute"
    assert alarm.state is AlarmState.UNACKNOWLEDGED
    assert alarm.message == "disk 98 % full"
    chain.on_external([ExternalAlert("DiskFull", "core-1", 160.0, False, Priority.HIGH)])
    assert chain.get("core-1:external:DiskFull").state is AlarmState.RETURNED_UNACKNOWLEDGED
    # an alert about something the site does not know is still an alarm
    [other] = chain.on_external([ExternalAlert("Watchdog", "external", 170.0, True, Priority.LOW)])
    assert other.subsystem == "external"
    with pytest.raises(AlarmError, match="name"):
        chain.on_external([ExternalAlert(" ", "core-1", 1.0, True, Priority.LOW)])
