from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from findings import finding, recovery
from safety_nexus.alarms.config import AlarmConfig
from safety_nexus.alarms.manager import AlarmManager
from safety_nexus.core.clock import ManualClock
from safety_nexus.core.errors import AlarmError, NotFoundError
from safety_nexus.core.types import (
    AlarmState,
    Criticality,
    Finding,
    FindingKind,
    Priority,
    SignalTable,
)
from safety_nexus.store.sqlite import SqliteStore

LEVEL = FindingKind.LEVEL_SHIFT
NO_DELAY = AlarmConfig(on_delay=0.0)  # these tests are about the lifecycle: alarms show at once


def _table() -> SignalTable:
    n = 3
    return SignalTable(
        ids=("pump-1.pressure", "pump-1.flow", "core-a1.cpu_temp"),
        assets=("pump-1", "pump-1", "core-a1"),
        subsystems=("water", "water", "compute"),
        units=("bar", "L/s", "°C"),
        period=np.ones(n),
        normal_lo=np.zeros(n),
        normal_hi=np.ones(n),
        limit_lo=np.full(n, -np.inf),
        limit_hi=np.full(n, np.inf),
        criticality=(Criticality.MEDIUM, Criticality.HIGH, Criticality.CRITICAL),
    )


def _finding(signal: str, t: float, kind: FindingKind = LEVEL) -> Finding:
    return finding(signal, t, kind, unit="bar")


@pytest.fixture
def manager(store: SqliteStore) -> AlarmManager:
    return AlarmManager(_table(), store, ManualClock(1000.0), config=NO_DELAY)


def test_one_alarm_per_asset_and_kind(manager: AlarmManager) -> None:
    manager.on_findings([_finding("pump-1.pressure", 10), _finding("pump-1.flow", 11)])
    manager.on_findings([_finding("pump-1.pressure", 12)])
    alarms = manager.alarms()
    assert len(alarms) == 1
    a = alarms[0]
    assert a.id == "pump-1:level_shift"
    assert a.count == 3
    assert a.signals == ["pump-1.pressure", "pump-1.flow"]
    assert a.first_seen == 10
    assert a.last_seen == 12
    assert a.state is AlarmState.UNACKNOWLEDGED


def test_priority_is_the_highest_criticality_of_contributing_signals(
    manager: AlarmManager,
) -> None:
    manager.on_findings([_finding("pump-1.pressure", 10)])
    assert manager.get("pump-1:level_shift").priority is Priority.MEDIUM
    manager.on_findings([_finding("pump-1.flow", 11)])
    assert manager.get("pump-1:level_shift").priority is Priority.HIGH
    manager.on_findings([_finding("core-a1.cpu_temp", 11)])
    assert manager.get("core-a1:level_shift").priority is Priority.EMERGENCY


def test_clears_only_when_every_signal_has_recovered(manager: AlarmManager) -> None:
    manager.on_findings([_finding("pump-1.pressure", 10), _finding("pump-1.flow", 10)])
    manager.on_recoveries([recovery("pump-1.pressure", 20)])
    assert manager.get("pump-1:level_shift").state is AlarmState.UNACKNOWLEDGED
    manager.on_recoveries([recovery("pump-1.flow", 25)])
    a = manager.get("pump-1:level_shift")
    assert a.state is AlarmState.RETURNED_UNACKNOWLEDGED
    assert a.cleared_at == 25


def test_acknowledge_lifecycle(manager: AlarmManager, store: SqliteStore) -> None:
    manager.on_findings([_finding("pump-1.pressure", 10)])
    a = manager.acknowledge("pump-1:level_shift", "alice", "looking at it")
    assert a.state is AlarmState.ACKNOWLEDGED
    assert a.acknowledged_by == "alice"
    assert a.acknowledged_at == 1000.0
    with pytest.raises(AlarmError, match="nothing to acknowledge"):
        manager.acknowledge("pump-1:level_shift", "bob")
    manager.on_recoveries([recovery("pump-1.pressure", 1030)])
    assert manager.get("pump-1:level_shift").state is AlarmState.NORMAL
    assert manager.alarms(open_only=True) == []
    assert len(manager.alarms(open_only=False)) == 1
    kinds = [e.kind for e in reversed(store.events(subject="pump-1:level_shift"))]
    assert kinds == ["alarm.unacknowledged", "alarm.acknowledged", "alarm.normal"]
    ack = store.events(kind="alarm.acknowledged")[0]
    assert ack.actor == "alice"
    assert ack.data["note"] == "looking at it"


def test_returned_unacknowledged_closes_on_acknowledge(manager: AlarmManager) -> None:
    manager.on_findings([_finding("pump-1.pressure", 10)])
    manager.on_recoveries([recovery("pump-1.pressure", 11)])
    assert manager.acknowledge("pump-1:level_shift", "alice").state is AlarmState.NORMAL


def test_refires_while_returned_and_after_closing(manager: AlarmManager) -> None:
    manager.on_findings([_finding("pump-1.pressure", 10)])
    manager.on_recoveries([recovery("pump-1.pressure", 11)])
    manager.on_findings([_finding("pump-1.pressure", 12)])
    a = manager.get("pump-1:level_shift")
    assert a.state is AlarmState.UNACKNOWLEDGED
    assert a.count == 2
    manager.acknowledge(a.id, "alice")
    manager.on_recoveries([recovery("pump-1.pressure", 13)])
    manager.on_findings([_finding("pump-1.pressure", 50)])
    again = manager.get(a.id)
    assert again.state is AlarmState.UNACKNOWLEDGED
    assert again.count == 1  # a new occurrence
    assert again.first_seen == 50
    assert again.acknowledged_by is None


def test_unknown_alarm_and_empty_user(manager: AlarmManager) -> None:
    with pytest.raises(NotFoundError):
        manager.acknowledge("nope:level_shift", "alice")
    manager.on_findings([_finding("pump-1.pressure", 10)])
    with pytest.raises(AlarmError, match="user"):
        manager.acknowledge("pump-1:level_shift", "  ")


def test_recovery_without_alarm_is_ignored(manager: AlarmManager) -> None:
    assert manager.on_recoveries([recovery("pump-1.pressure", 10)]) == []


def test_state_survives_a_restart(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "nexus.db")
    m = AlarmManager(_table(), store, ManualClock(0.0), config=NO_DELAY)
    m.on_findings([_finding("pump-1.pressure", 10), _finding("core-a1.cpu_temp", 10, LEVEL)])
    m.acknowledge("pump-1:level_shift", "alice")
    store.close()

    store = SqliteStore(tmp_path / "nexus.db")
    m2 = AlarmManager(
        _table(), store, ManualClock(0.0), config=NO_DELAY, restored=store.load_alarms().values()
    )
    assert {a.id for a in m2.alarms()} == {"pump-1:level_shift", "core-a1:level_shift"}
    assert m2.get("pump-1:level_shift").state is AlarmState.ACKNOWLEDGED
    # the restored alarm still clears when its signal recovers
    m2.on_recoveries([recovery("pump-1.pressure", 20)])
    assert m2.get("pump-1:level_shift").state is AlarmState.NORMAL
    store.close()


def test_listeners_see_every_change(manager: AlarmManager) -> None:
    seen: list[tuple[str, AlarmState]] = []
    manager.subscribe(lambda a: seen.append((a.id, a.state)))
    manager.on_findings([_finding("pump-1.pressure", 10)])
    manager.acknowledge("pump-1:level_shift", "alice")
    assert seen == [
        ("pump-1:level_shift", AlarmState.UNACKNOWLEDGED),
        ("pump-1:level_shift", AlarmState.ACKNOWLEDGED),
    ]


def test_open_count_follows_the_list(manager: AlarmManager) -> None:
    manager.on_findings([_finding("pump-1.pressure", 10), _finding("core-a1.cpu_temp", 10)])
    assert manager.open_count() == 2
    manager.acknowledge("pump-1:level_shift", "alice")
    manager.on_recoveries([recovery("pump-1.pressure", 2000)])
    assert manager.open_count() == len(manager.alarms(open_only=True)) == 1
