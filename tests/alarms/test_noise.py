"""Noise control: deduplication, on/off delays, chatter, flood, maintenance windows."""

from __future__ import annotations

from dataclasses import replace

from alarm_site import chain_manager

from findings import finding, recovery
from safety_nexus.alarms.config import AlarmConfig
from safety_nexus.alarms.manager import AlarmManager, ExternalAlert, MaintenanceWindow
from safety_nexus.core.clock import ManualClock
from safety_nexus.core.types import AlarmState, FindingKind, Priority
from safety_nexus.store.sqlite import SqliteStore

CORE = "core-1:level_shift"


def _annunciations(store: SqliteStore, alarm: str | None = None) -> list[float]:
    return sorted(
        e.time for e in store.events(kind="alarm.unacknowledged", subject=alarm, limit=10_000)
    )


def test_repeated_findings_are_one_alarm(chain: AlarmManager, store: SqliteStore) -> None:
    for t in range(100, 110):
        chain.process([finding("core-1.x", float(t)), finding("core-1.y", t + 0.5)])
    alarm = chain.get(CORE)
    assert alarm.count == 20
    assert alarm.signals == ["core-1.x", "core-1.y"]
    assert _annunciations(store, CORE) == [100.0]


def test_on_delay_ignores_a_blip_and_alarms_a_lasting_condition(
    store: SqliteStore, clock: ManualClock
) -> None:
    m = chain_manager(store, clock, AlarmConfig(on_delay=30.0))
    m.process([finding("core-1.x", 100.0)])
    m.process([], [recovery("core-1.x", 110.0)])
    m.tick(200.0)
    assert _annunciations(store) == []  # shorter than the delay: never an alarm
    m.process([finding("core-1.x", 300.0)], now=320.0)
    assert m.alarms() == []
    m.tick(330.0)
    assert _annunciations(store, CORE) == [330.0]  # annunciated when the delay ran out
    assert m.get(CORE).state is AlarmState.UNACKNOWLEDGED


def test_by_default_a_condition_must_hold_ten_seconds_to_alarm(
    store: SqliteStore, clock: ManualClock
) -> None:
    assert AlarmConfig().on_delay == 10.0  # ISA-18.2 practice
    m = chain_manager(store, clock, AlarmConfig())
    m.process([finding("core-1.x", 100.0)])
    m.process([], [recovery("core-1.x", 109.9)])  # held for less than 10 s
    m.tick(200.0)
    assert _annunciations(store) == []
    assert m.alarms() == []
    m.process([finding("core-1.x", 300.0)])
    m.tick(309.9)
    assert m.alarms() == []
    m.tick(310.0)  # held for 10 s: it alarms
    assert [a.id for a in m.alarms()] == [CORE]
    assert _annunciations(store, CORE) == [310.0]


def test_an_alarm_waiting_out_its_on_delay_survives_a_restart(
    store: SqliteStore, clock: ManualClock
) -> None:
    before = chain_manager(store, clock, AlarmConfig())
    before.process([finding("core-1.x", 100.0)], now=105.0)
    assert before.alarms() == []
    # the product restarts; the detector does not report the same trouble again
    after = chain_manager(store, clock, AlarmConfig())
    after.tick(109.9)
    assert after.alarms() == []
    after.tick(110.0)  # the delay runs on from the finding, not from the restart
    assert [a.id for a in after.alarms()] == [CORE]
    assert _annunciations(store, CORE) == [110.0]
    assert after.get(CORE).pending_since is None
    # and its recovery still clears it
    after.process([], [recovery("core-1.x", 120.0)], now=120.0)
    assert not after.get(CORE).condition


def test_an_external_alert_is_not_delayed_again(store: SqliteStore, clock: ManualClock) -> None:
    # Alertmanager has waited out the rule's `for` already
    m = chain_manager(store, clock, AlarmConfig(off_delay=60.0))
    alert = ExternalAlert("DiskFull", "core-1", 100.0, True, Priority.HIGH)
    m.on_external([alert])
    assert [a.id for a in m.alarms()] == ["core-1:external:DiskFull"]
    m.on_external([replace(alert, time=130.0, firing=False)])
    assert not m.get("core-1:external:DiskFull").condition


def test_off_delay_holds_the_alarm_through_a_short_recovery(
    store: SqliteStore, clock: ManualClock
) -> None:
    # (four changes in 70 s would be chatter, held longer: see the next test)
    m = chain_manager(
        store, clock, AlarmConfig(on_delay=0.0, off_delay=60.0, chatter_transitions=5)
    )
    m.process([finding("core-1.x", 100.0)])
    m.process([], [recovery("core-1.x", 120.0)], now=150.0)
    assert m.get(CORE).state is AlarmState.UNACKNOWLEDGED  # not clear long enough yet
    m.process([finding("core-1.x", 160.0)])  # back before the delay ran out
    m.process([], [recovery("core-1.x", 170.0)])
    m.tick(229.0)
    assert m.get(CORE).condition
    m.tick(230.0)
    alarm = m.get(CORE)
    assert alarm.state is AlarmState.RETURNED_UNACKNOWLEDGED
    assert alarm.cleared_at == 230.0
    assert _annunciations(store, CORE) == [100.0]


def test_chattering_is_flagged_held_and_ends(chain: AlarmManager, store: SqliteStore) -> None:
    chain.process([finding("core-1.x", 100.0)])
    chain.process([], [recovery("core-1.x", 110.0)])
    assert not chain.get(CORE).chattering
    chain.process([finding("core-1.x", 120.0)])  # the third change within a minute
    assert chain.get(CORE).chattering
    flagged = store.events(kind="alarm.chattering", subject=CORE)
    assert [e.data["chattering"] for e in flagged] == [True]
    # it keeps flapping, but is held active: no new annunciation
    for t in range(130, 200, 10):
        if t % 20 == 10:
            chain.process([], [recovery("core-1.x", float(t))])
        else:
            chain.process([finding("core-1.x", float(t))])
    assert _annunciations(store, CORE) == [100.0, 120.0]
    assert chain.get(CORE).condition
    # quiet (clear) for the hold time: it clears and stops chattering
    chain.tick(190.0 + 299.0)
    assert chain.get(CORE).condition
    chain.tick(190.0 + 300.0)
    alarm = chain.get(CORE)
    assert not alarm.condition
    assert not alarm.chattering
    assert alarm.state is AlarmState.RETURNED_UNACKNOWLEDGED
    ended = store.events(kind="alarm.chattering", subject=CORE)
    assert [e.data["chattering"] for e in ended] == [False, True]  # newest first


def _independent(m: AlarmManager, t: float, i: int) -> None:
    """One alarm of its own: a different kind on the core each time."""
    kinds = [k for k in FindingKind if k is not FindingKind.EXTERNAL]
    m.process([finding("core-1.x", t, kinds[i])])
    m.process([], [recovery("core-1.x", t + 1.0, kinds[i])])
    m.acknowledge(f"core-1:{kinds[i].value}", "ann")


def test_flood_begins_above_ten_in_ten_minutes_and_ends(
    store: SqliteStore, clock: ManualClock
) -> None:
    m = chain_manager(
        store, clock, AlarmConfig(on_delay=0.0, positions={"utilities": ["power", "water"]})
    )
    m.process([finding("sub-1.x", 90.0)])
    for i in range(11):
        clock.set(100.0 + 30 * i + 2)
        _independent(m, 100.0 + 30 * i, i)
    floods = {f.position: f for f in m.floods()}
    assert floods["control-room"].flood  # compute is in no position: the default one
    assert floods["control-room"].count == 11
    assert floods["control-room"].since == 400.0
    assert not floods["utilities"].flood
    assert floods["utilities"].count == 1
    started = store.events(kind="alarm.flood")
    assert [(e.subject, e.data["flood"]) for e in started] == [("control-room", True)]
    m.tick(100.0 + 30 * 10 + 600.0)  # ten minutes after the last one
    assert not {f.position: f for f in m.floods()}["control-room"].flood
    assert [e.data["flood"] for e in store.events(kind="alarm.flood")] == [False, True]


def test_ten_alarms_in_ten_minutes_are_not_a_flood(chain: AlarmManager, clock: ManualClock) -> None:
    for i in range(10):
        clock.set(100.0 + 30 * i + 2)
        _independent(chain, 100.0 + 30 * i, i)
    assert not any(f.flood for f in chain.floods())


def test_maintenance_window_suppresses_its_assets_while_it_runs(
    chain: AlarmManager, clock: ManualClock, store: SqliteStore
) -> None:
    clock.set(50.0)
    chain.add_maintenance(
        MaintenanceWindow(id="mw-1", start=100.0, end=400.0, actor="ann", assets=("core-1",))
    )
    chain.process([finding("core-1.x", 150.0), finding("pump-1.x", 150.0)])
    assert [a.id for a in chain.alarms()] == ["pump-1:level_shift"]
    core = chain.get(CORE)
    assert core.state is AlarmState.SUPPRESSED
    assert core.suppressed_by == ["maintenance:mw-1"]
    assert _annunciations(store, CORE) == []
    chain.tick(400.0)  # the window is over and the core still abnormal: now it shows
    assert chain.get(CORE).state is AlarmState.UNACKNOWLEDGED
    assert _annunciations(store, CORE) == [400.0]


def test_ending_maintenance_early_and_bad_windows(chain: AlarmManager, clock: ManualClock) -> None:
    import pytest

    from safety_nexus.core.errors import AlarmError, NotFoundError

    clock.set(100.0)
    chain.add_maintenance(
        MaintenanceWindow(id="mw", start=0.0, end=1e9, actor="ann", subsystems=("compute",))
    )
    chain.process([finding("core-1.x", 110.0)])
    assert chain.alarms() == []
    clock.set(120.0)
    chain.end_maintenance("mw", "ann")
    assert [a.id for a in chain.alarms()] == [CORE]
    with pytest.raises(NotFoundError):
        chain.end_maintenance("mw", "ann")
    with pytest.raises(AlarmError, match="asset or subsystem"):
        chain.add_maintenance(MaintenanceWindow(id="x", start=0.0, end=1.0, actor="ann"))
    with pytest.raises(AlarmError, match="end after"):
        chain.add_maintenance(
            MaintenanceWindow(id="x", start=5.0, end=1.0, actor="ann", assets=("core-1",))
        )
