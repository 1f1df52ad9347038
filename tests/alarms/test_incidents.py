"""Incidents on the dependency graph: the root cause shown, its consequences grouped under it."""

from __future__ import annotations

from alarm_site import chain_manager

from findings import finding, recovery
from safety_nexus.alarms.config import AlarmConfig
from safety_nexus.alarms.manager import AlarmManager
from safety_nexus.core.clock import ManualClock
from safety_nexus.core.types import AlarmState, FindingKind, Priority
from safety_nexus.store.sqlite import SqliteStore

SHOWN = AlarmState.UNACKNOWLEDGED


def _annunciated(store: SqliteStore, alarm: str) -> int:
    return len(store.events(kind="alarm.unacknowledged", subject=alarm))


def test_a_cascade_shows_only_its_root(chain: AlarmManager, store: SqliteStore) -> None:
    chain.process(
        [
            finding("sub-1.x", 100.0),
            finding("feeder-1.x", 101.0),
            finding("pump-1.x", 103.0),
            finding("zone-1.x", 113.0),
        ]
    )
    shown = chain.alarms()
    assert [a.id for a in shown] == ["sub-1:level_shift"]
    root = shown[0]
    assert root.root_cause is None
    assert root.first_out
    assert root.consequences == ["feeder-1:level_shift", "pump-1:level_shift", "zone-1:level_shift"]
    # the root carries its worst consequence's priority: the critical zone's emergency
    assert root.priority is Priority.EMERGENCY
    for aid in root.consequences:
        a = chain.get(aid)
        assert a.state is AlarmState.SUPPRESSED
        assert a.root_cause == root.id
        assert a.incident == root.incident
        assert a.suppressed_by == ["root:sub-1:level_shift"]
        assert not a.first_out
        assert _annunciated(store, aid) == 0  # never shown, not even for a moment
    assert _annunciated(store, root.id) == 1


def test_a_late_root_cause_takes_its_consequences_under_it(
    chain: AlarmManager, store: SqliteStore
) -> None:
    chain.process([finding("pump-1.x", 100.0), finding("zone-1.x", 110.0)])
    assert [a.id for a in chain.alarms()] == ["pump-1:level_shift"]  # the pump is upstream
    # the substation and its feeder are detected half a minute after the pump
    chain.process([finding("sub-1.y", 130.0), finding("feeder-1.x", 131.0)])
    shown = chain.alarms()
    assert [a.id for a in shown] == ["sub-1:level_shift"]
    assert shown[0].consequences == [
        "pump-1:level_shift",
        "zone-1:level_shift",
        "feeder-1:level_shift",
    ]
    pump = chain.get("pump-1:level_shift")
    assert pump.state is AlarmState.SUPPRESSED
    assert pump.root_cause == "sub-1:level_shift"
    assert pump.first_out
    assert not shown[0].first_out
    moved = store.events(kind="alarm.suppressed", subject="pump-1:level_shift")
    assert [e.actor for e in moved] == ["root-cause:sub-1:level_shift"]


def test_grouping_survives_a_restart(store: SqliteStore, clock: ManualClock) -> None:
    first = chain_manager(store, clock)
    first.process(
        [finding("sub-1.x", 100.0), finding("feeder-1.x", 101.0), finding("pump-1.x", 103.0)]
    )
    before = {a.id: (a.state, a.root_cause) for a in first.alarms(view="all")}
    again = chain_manager(store, clock)
    assert {a.id: (a.state, a.root_cause) for a in again.alarms(view="all")} == before
    assert [a.id for a in again.alarms()] == ["sub-1:level_shift"]
    assert _annunciated(store, "pump-1:level_shift") == 0


def test_a_root_cause_arriving_after_a_restart_still_groups(
    store: SqliteStore, clock: ManualClock
) -> None:
    first = chain_manager(store, clock)
    first.process([finding("zone-1.x", 100.0)])
    assert [a.id for a in first.alarms()] == ["zone-1:level_shift"]
    again = chain_manager(store, clock)
    again.process([finding("feeder-1.x", 160.0), finding("pump-1.y", 161.0)])
    assert [a.id for a in again.alarms()] == ["feeder-1:level_shift"]
    assert again.get("zone-1:level_shift").state is AlarmState.SUPPRESSED


def test_consequences_come_back_when_their_root_is_gone(
    chain: AlarmManager, clock: ManualClock
) -> None:
    chain.process(
        [
            finding("sub-1.x", 100.0),
            finding("feeder-1.x", 101.0),
            finding("pump-1.x", 103.0),
            finding("zone-1.x", 113.0),
        ]
    )
    chain.process([], [recovery("zone-1.x", 150.0)])  # this one recovered under its root
    chain.process([], [recovery("sub-1.x", 200.0), recovery("feeder-1.x", 200.0)])
    assert chain.get("sub-1:level_shift").state is AlarmState.RETURNED_UNACKNOWLEDGED
    # the root is still on the list (unacknowledged): its consequences stay under it
    assert [a.id for a in chain.alarms()] == ["sub-1:level_shift"]
    clock.set(210.0)
    chain.acknowledge("sub-1:level_shift", "ann")
    # the pump is still abnormal: now it is its own alarm; the feeder and the zone closed
    # quietly
    assert [a.id for a in chain.alarms()] == ["pump-1:level_shift"]
    assert chain.get("pump-1:level_shift").state is SHOWN
    assert chain.get("feeder-1:level_shift").state is AlarmState.NORMAL
    assert chain.get("zone-1:level_shift").state is AlarmState.NORMAL


def test_an_old_upstream_alarm_does_not_swallow_a_new_fault(
    store: SqliteStore, clock: ManualClock
) -> None:
    chain = chain_manager(store, clock, AlarmConfig(on_delay=0.0, cascade_window=300.0))
    chain.process([finding("sub-1.x", 100.0)])
    # an hour later, a fault at the pump that the substation's old trouble cannot explain
    chain.process([finding("pump-1.x", 3700.0)])
    assert {a.id for a in chain.alarms()} == {"sub-1:level_shift", "pump-1:level_shift"}
    assert chain.get("pump-1:level_shift").root_cause is None


def test_trouble_reaches_a_dependant_only_through_a_provider_in_trouble(
    chain: AlarmManager,
) -> None:
    # a minor alarm at the substation, then the pump trips while the feeder between them is
    # quiet: the substation's trouble did not reach the pump, the pump is a fault of its own
    chain.process([finding("sub-1.x", 100.0)])
    chain.process([finding("pump-1.x", 110.0), finding("pump-1.y", 110.0)])
    assert {a.id for a in chain.alarms()} == {"sub-1:level_shift", "pump-1:level_shift"}
    assert chain.get("pump-1:level_shift").root_cause is None
    # once the feeder shows the same trouble, the path is there: one incident again
    chain.process([finding("feeder-1.x", 115.0), finding("feeder-1.y", 115.0)])
    assert chain.get("pump-1:level_shift").root_cause is not None


def test_late_trouble_is_a_slow_consequence_only_of_an_asset_as_broken(
    store: SqliteStore, clock: ManualClock
) -> None:
    # beyond the root window (lag + 120 s) but within the cascade window (900 s)
    minor = chain_manager(store, clock)
    minor.process([finding("sub-1.x", 100.0)])
    # five minutes later the feeder trips all over: an old one-signal alarm upstream does not
    # explain it
    minor.process([finding("feeder-1.x", 400.0), finding("feeder-1.y", 400.0)])
    assert minor.get("feeder-1:level_shift").root_cause is None

    # a substation that failed all over explains what its feeder shows a while later
    tripped = chain_manager(store, clock)
    tripped.process([finding("sub-1.x", 1000.0), finding("sub-1.y", 1000.0)])
    tripped.process([finding("feeder-1.x", 1300.0)])
    assert tripped.get("feeder-1:level_shift").root_cause == "sub-1:level_shift"


def test_new_trouble_leads_over_an_old_alarm_of_the_asset_left_to_acknowledge(
    chain: AlarmManager, store: SqliteStore
) -> None:
    chain.process([finding("sub-1.x", 100.0, FindingKind.VARIANCE)])
    chain.process([], [recovery("sub-1.x", 110.0, FindingKind.VARIANCE)])
    assert chain.get("sub-1:variance").state is AlarmState.RETURNED_UNACKNOWLEDGED
    # minutes later the substation trips, and its feeder with it
    chain.process([finding("sub-1.x", 400.0), finding("sub-1.y", 400.0)])
    chain.process([finding("feeder-1.x", 401.0), finding("feeder-1.y", 401.0)])
    trip = chain.get("sub-1:level_shift")
    assert trip.state is SHOWN
    assert trip.root_cause is None
    assert _annunciated(store, "sub-1:level_shift") == 1
    assert chain.get("feeder-1:level_shift").root_cause == "sub-1:level_shift"
    # the old alarm, clear, is folded under the asset's new trouble: one alarm on the list
    assert [a.id for a in chain.alarms()] == ["sub-1:level_shift"]


def test_what_a_supply_restored_stirs_up_stays_under_the_root(chain: AlarmManager) -> None:
    chain.process([finding("sub-1.x", 100.0), finding("sub-1.y", 100.0)])
    chain.process([finding("feeder-1.x", 101.0), finding("feeder-1.y", 101.0)])
    # the substation comes back after 25 minutes, longer than the cascade window
    recovered = ["sub-1.x", "sub-1.y", "feeder-1.x", "feeder-1.y"]
    chain.process([], [recovery(s, 1600.0) for s in recovered])
    assert [a.id for a in chain.alarms()] == ["sub-1:level_shift"]  # to acknowledge
    # the restart surges through the feeder to the pump
    chain.process([finding("feeder-1.x", 1602.0, FindingKind.RATE)])
    chain.process([finding("pump-1.x", 1605.0, FindingKind.RATE)])
    assert [a.id for a in chain.alarms()] == ["sub-1:level_shift"]
    assert chain.get("pump-1:rate").root_cause == "sub-1:level_shift"
    # trouble long after the restoration is not the substation's
    chain.process([], [recovery("pump-1.x", 1650.0, FindingKind.RATE)])
    chain.process([finding("pump-1.y", 2000.0, FindingKind.VARIANCE)])
    assert chain.get("pump-1:variance").root_cause is None


def test_a_side_effect_of_a_consequence_is_under_the_root_too(
    store: SqliteStore, clock: ManualClock
) -> None:
    m = chain_manager(store, clock, tank=True)
    m.process([finding("sub-1.x", 100.0), finding("sub-1.y", 100.0)])
    m.process([finding("feeder-1.x", 101.0), finding("feeder-1.y", 101.0)])
    m.process([finding("pump-1.x", 103.0), finding("pump-1.y", 103.0)])
    # the pump stopped: the tank that supplies it feels its draw go
    m.process([finding("tank-1.x", 108.0, FindingKind.RATE)])
    assert [a.id for a in m.alarms()] == ["sub-1:level_shift"]
    assert m.get("tank-1:rate").root_cause == "sub-1:level_shift"


def test_a_consequence_that_gets_worse_stays_under_its_root(chain: AlarmManager) -> None:
    chain.process([finding("sub-1.x", 100.0)])
    # a slow consequence (later than lag + root window), no more broken than its root
    chain.process([finding("feeder-1.x", 230.0)])
    assert [a.id for a in chain.alarms()] == ["sub-1:level_shift"]
    # minutes later more of the feeder is abnormal than of the substation
    chain.process([finding("feeder-1.y", 400.0)])
    assert [a.id for a in chain.alarms()] == ["sub-1:level_shift"]
    assert chain.get("feeder-1:level_shift").root_cause == "sub-1:level_shift"


def test_a_trip_after_a_standing_alarm_of_the_asset_is_told_anew(
    chain: AlarmManager, store: SqliteStore
) -> None:
    chain.process([finding("core-1.x", 100.0)])
    chain.acknowledge("core-1:level_shift", "ann")
    # ten minutes later the core breaches a limit: new trouble, told anew
    chain.process([finding("core-1.y", 700.0, FindingKind.LIMIT)])
    assert _annunciated(store, "core-1:limit") == 1
    assert chain.get("core-1:limit").root_cause is None
    # what the same trouble brings within the root window stays grouped
    chain.process([finding("core-1.x", 710.0, FindingKind.RATE)])
    assert chain.get("core-1:rate").root_cause == "core-1:level_shift"
    assert _annunciated(store, "core-1:rate") == 0


def test_unrelated_assets_are_separate_incidents(chain: AlarmManager) -> None:
    chain.process([finding("sub-1.x", 100.0), finding("core-1.x", 101.0)])
    shown = {a.id: a for a in chain.alarms()}
    assert set(shown) == {"sub-1:level_shift", "core-1:level_shift"}
    assert shown["sub-1:level_shift"].incident != shown["core-1:level_shift"].incident
    assert all(a.first_out for a in shown.values())


def test_alarms_of_one_asset_group_under_its_first(chain: AlarmManager) -> None:
    chain.process([finding("pump-1.x", 100.0), finding("pump-1.y", 104.0, FindingKind.VARIANCE)])
    assert [a.id for a in chain.alarms()] == ["pump-1:level_shift"]
    assert chain.get("pump-1:variance").root_cause == "pump-1:level_shift"


def test_priority_follows_the_consequence_downstream(chain: AlarmManager) -> None:
    # the medium feeder reaches the critical zone: high, one level below the zone's emergency
    chain.process([finding("feeder-1.x", 100.0), finding("core-1.x", 100.0)])
    assert chain.get("feeder-1:level_shift").priority is Priority.HIGH
    assert chain.get("core-1:level_shift").priority is Priority.HIGH  # its own criticality
    # a stale sensor says nothing about the zone: the signal's own criticality
    chain.process([finding("sub-1.y", 5000.0, FindingKind.STALE)])
    assert chain.get("sub-1:stale").priority is Priority.MEDIUM


def test_a_tripped_dependant_explains_its_providers_load_change(chain: AlarmManager) -> None:
    # The pump trips: every signal of it is abnormal, the zone it feeds is short, and the
    # feeder feels the load go (one signal). The feeder is upstream and saw it first, but the
    # pump explains it.
    chain.process([finding("feeder-1.x", 100.0)])
    chain.process([finding("pump-1.x", 101.0), finding("pump-1.y", 101.0)])
    chain.process([finding("zone-1.x", 112.0)])
    assert [a.id for a in chain.alarms()] == ["pump-1:level_shift"]
    assert chain.get("feeder-1:level_shift").root_cause == "pump-1:level_shift"


def test_a_provider_all_of_whose_dependants_fail_is_the_root(chain: AlarmManager) -> None:
    chain.process([finding("feeder-1.x", 100.0), finding("feeder-1.y", 100.0)])
    chain.process([finding("pump-1.x", 101.0), finding("pump-1.y", 101.0)])
    assert [a.id for a in chain.alarms()] == ["feeder-1:level_shift"]


def test_an_on_delay_lets_the_grouping_settle_before_anything_shows(
    store: SqliteStore, clock: ManualClock
) -> None:
    m = chain_manager(store, clock, AlarmConfig(on_delay=10.0))
    # the pump is seen first; its feeder, upstream, five seconds later
    m.process([finding("pump-1.x", 100.0), finding("pump-1.y", 100.0)], now=100.0)
    m.process([finding("feeder-1.x", 105.0), finding("feeder-1.y", 105.0)], now=105.0)
    assert m.alarms() == []  # both wait out the delay; nothing is suppressed yet either
    assert store.events(kind="alarm.suppressed") == []
    # the pump's delay is over first, but the feeder waiting out its own is evidence already
    m.process(now=110.0)
    assert m.alarms() == []
    assert m.get("pump-1:level_shift").root_cause == "feeder-1:level_shift"
    m.process(now=115.0)
    assert [a.id for a in m.alarms()] == ["feeder-1:level_shift"]
    # the pump was never on the list, not even for a moment
    assert _annunciated(store, "pump-1:level_shift") == 0


def test_a_root_on_the_list_keeps_its_place_against_an_equal_rival(
    store: SqliteStore, clock: ManualClock
) -> None:
    m = chain_manager(store, clock)
    m.process([finding("pump-1.x", 100.0), finding("zone-1.x", 111.0)])
    assert [a.id for a in m.alarms()] == ["pump-1:level_shift"]
    # the feeder shows a little of the same trouble a minute later, no more broken than the
    # pump: it does not take the incident over
    m.process([finding("feeder-1.x", 160.0)])
    assert {a.id for a in m.alarms()} >= {"pump-1:level_shift"}
    assert m.get("pump-1:level_shift").root_cause is None
    assert _annunciated(store, "pump-1:level_shift") == 1
