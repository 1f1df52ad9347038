from __future__ import annotations

import dataclasses
import math
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from safety_nexus.core.errors import StoreError
from safety_nexus.core.types import Alarm, AlarmState, Finding, FindingKind, Priority
from safety_nexus.store import CONFIG_CHANGED, SCHEMA_VERSION, SqliteStore
from safety_nexus.store.sqlite import _MIGRATIONS


def finding(
    t: float, signal: str = "pump-1.flow", kind: FindingKind = FindingKind.SPIKE
) -> Finding:
    return Finding(
        time=t,
        signal=signal,
        asset=signal.split(".")[0],
        kind=kind,
        score=1.5,
        observed=42.0,
        baseline=40.0,
        sigma=0.5,
        unit="L/s",
        detector="spike",
    )


def alarm(
    alarm_id: str = "pump-1:spike",
    state: AlarmState = AlarmState.UNACKNOWLEDGED,
    priority: Priority = Priority.HIGH,
    last_seen: float = 20.0,
) -> Alarm:
    asset, kind = alarm_id.split(":")
    return Alarm(
        id=alarm_id,
        asset=asset,
        subsystem="water",
        kind=FindingKind(kind),
        priority=priority,
        state=state,
        first_seen=10.0,
        last_seen=last_seen,
        count=3,
        signals=["pump-1.flow", "pump-1.pressure"],
        message="pump-1.flow: spike",
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "nexus.db")
    yield s
    s.close()


def test_opens_in_wal_mode_with_the_current_schema(store: SqliteStore) -> None:
    assert store.journal_mode() == "wal"
    assert store.schema_version() == SCHEMA_VERSION


def test_findings_round_trip_newest_first(store: SqliteStore) -> None:
    batch = [finding(float(t)) for t in range(5)]
    ids = store.add_findings(batch)
    assert len(ids) == 5
    assert len(set(ids)) == 5
    got = store.findings()
    assert [g.finding for g in got] == batch[::-1]
    assert [g.id for g in got] == ids[::-1]
    assert store.count_findings() == 5
    assert store.add_findings([]) == []


def test_findings_keep_context_forecasts_and_periods(store: SqliteStore) -> None:
    base = finding(1.0)
    batch = [
        dataclasses.replace(base, kind=FindingKind.FORECAST, context="error against sub-1.load"),
        dataclasses.replace(
            base, kind=FindingKind.TIME_TO_THRESHOLD, eta=300.0, eta_low=200.0, eta_high=math.inf
        ),
        dataclasses.replace(base, kind=FindingKind.OSCILLATION, period=20.0),
    ]
    store.add_findings(batch)
    assert [g.finding for g in store.findings()] == batch[::-1]


def test_a_version_1_database_is_migrated_and_keeps_its_findings(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(_MIGRATIONS[0])
    conn.execute(
        "INSERT INTO findings (time, signal, asset, kind, score, observed, baseline, sigma,"
        " unit, detector) VALUES (1.0, 'pump-1.flow', 'pump-1', 'spike', 1.5, 42.0, 40.0, 0.5,"
        " 'L/s', 'spike')"
    )
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    with SqliteStore(path) as s:
        assert s.schema_version() == SCHEMA_VERSION
        (got,) = s.findings()
        assert got.finding == finding(1.0)


def test_a_version_4_database_keeps_its_alarms_conditions(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for script in _MIGRATIONS[:4]:
        conn.executescript(script)
    for aid, state in (("a:spike", "unacknowledged"), ("b:spike", "returned_unacknowledged")):
        conn.execute(
            "INSERT INTO alarms (id, asset, subsystem, kind, priority, state, first_seen,"
            " last_seen, count, signals, message) VALUES (?, ?, 'water', 'spike', 2, ?, 1.0,"
            " 2.0, 1, '[]', '')",
            (aid, aid.split(":")[0], state),
        )
    conn.execute("PRAGMA user_version=4")
    conn.commit()
    conn.close()
    with SqliteStore(path) as s:
        alarms = s.load_alarms()
    assert alarms["a:spike"].condition  # active before: its condition is kept
    assert not alarms["b:spike"].condition
    assert alarms["a:spike"].suppressed_by == []
    assert alarms["a:spike"].shelved_until is None


def test_findings_keep_nan_and_infinity(store: SqliteStore) -> None:
    f = Finding(
        time=1.0,
        signal="a.b",
        asset="a",
        kind=FindingKind.STALE,
        score=math.inf,
        observed=math.nan,
        baseline=1.0,
        sigma=0.0,
    )
    store.add_findings([f])
    (got,) = store.findings()
    assert math.isnan(got.finding.observed)
    assert got.finding.score == math.inf
    assert got.finding.sigma == 0.0


def test_findings_filters_and_limit(store: SqliteStore) -> None:
    store.add_findings(
        [
            finding(1.0, "pump-1.flow", FindingKind.SPIKE),
            finding(2.0, "pump-2.flow", FindingKind.SPIKE),
            finding(3.0, "pump-1.pressure", FindingKind.LEVEL_SHIFT),
            finding(4.0, "pump-1.flow", FindingKind.LEVEL_SHIFT),
        ]
    )

    def times(**kw: object) -> list[float]:
        return [s.finding.time for s in store.findings(**kw)]  # type: ignore[arg-type]

    assert times(since=2.0) == [4.0, 3.0, 2.0]
    assert times(until=3.0) == [2.0, 1.0]
    assert times(asset="pump-1") == [4.0, 3.0, 1.0]
    assert times(signal="pump-1.flow") == [4.0, 1.0]
    assert times(kind=FindingKind.LEVEL_SHIFT) == [4.0, 3.0]
    assert times(asset="pump-1", kind=FindingKind.SPIKE) == [1.0]
    assert times(limit=2) == [4.0, 3.0]
    assert times(limit=0) == []


def test_alarms_upsert_by_id_and_open_only(store: SqliteStore) -> None:
    store.save_alarm(alarm("pump-1:spike", priority=Priority.MEDIUM))
    store.save_alarm(alarm("fan-1:variance", priority=Priority.EMERGENCY))
    store.save_alarm(alarm("core-a1:rate", state=AlarmState.NORMAL))
    acked = alarm("pump-1:spike", state=AlarmState.ACKNOWLEDGED, priority=Priority.MEDIUM)
    acked.acknowledged_by = "olga"
    acked.acknowledged_at = 30.0
    store.save_alarm(acked)

    assert [a.id for a in store.alarms()] == ["fan-1:variance", "pump-1:spike"]
    assert {a.id for a in store.alarms(open_only=False)} == {
        "fan-1:variance",
        "pump-1:spike",
        "core-a1:rate",
    }
    assert store.get_alarm("pump-1:spike") == acked
    assert store.get_alarm("nope:spike") is None
    assert set(store.load_alarms()) == {"fan-1:variance", "pump-1:spike"}


def test_events_journal_and_filters(store: SqliteStore) -> None:
    a = store.add_event(1.0, "alarm.raised", "pipeline", "pump-1:spike", {"priority": "high"})
    b = store.add_event(
        2.0, "alarm.acknowledged", "olga", "pump-1:spike", {"note": "checking", "n": np.int64(3)}
    )
    store.add_event(3.0, "scenario.injected", "sim", "S1", {"seed": 7, "targets": ["core-a1"]})
    assert b > a
    got = store.events()
    assert [e.kind for e in got] == ["scenario.injected", "alarm.acknowledged", "alarm.raised"]
    assert got[1].actor == "olga"
    assert got[1].data == {"note": "checking", "n": 3}
    assert got[0].data == {"seed": 7, "targets": ["core-a1"]}
    assert [e.time for e in store.events(subject="pump-1:spike")] == [2.0, 1.0]
    assert [e.time for e in store.events(kind="alarm.raised")] == [1.0]
    assert [e.time for e in store.events(since=2.0, until=3.0)] == [2.0]
    assert [e.time for e in store.events(limit=1)] == [3.0]
    assert store.count_events() == 3


def test_event_data_must_be_json(store: SqliteStore) -> None:
    with pytest.raises(StoreError, match="event data"):
        store.add_event(1.0, "x", "y", "z", {"bad": object()})
    with pytest.raises(StoreError, match="event data"):
        store.add_event(1.0, "x", "y", "z", {"nan": math.nan})
    assert store.count_events() == 0


def test_config_keeps_history_and_journals_changes(store: SqliteStore) -> None:
    assert store.get_config("site") is None
    assert store.put_config("site", "a: 1\n", time=1.0, actor="eng") is True
    assert store.put_config("site", "a: 1\n", time=2.0, actor="eng") is False
    assert store.put_config("site", "a: 2\n", time=3.0, actor="mallory") is True
    assert store.get_config("site") == "a: 2\n"
    history = store.config_history("site")
    assert [(v.time, v.actor, v.text) for v in history] == [
        (1.0, "eng", "a: 1\n"),
        (3.0, "mallory", "a: 2\n"),
    ]
    assert len(history[0].sha256) == 64
    events = store.events(kind=CONFIG_CHANGED)
    assert [e.actor for e in events] == ["mallory", "eng"]
    assert events[0].data["previous_sha256"] == history[0].sha256
    assert events[0].data["sha256"] == history[1].sha256
    assert events[1].data["previous_sha256"] is None


def test_everything_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "nexus.db"
    with SqliteStore(path) as s:
        ids = s.add_findings([finding(1.0), finding(2.0)])
        s.save_alarm(alarm())
        s.add_event(5.0, "system.startup", "system", "nexus", {"version": "0.1.0"})
        s.put_config("site", "name: demo\n", time=5.0, actor="eng")

    with SqliteStore(path) as s:
        assert [f.id for f in s.findings()] == ids[::-1]
        assert s.load_alarms() == {"pump-1:spike": alarm()}
        assert [e.kind for e in s.events()] == [CONFIG_CHANGED, "system.startup"]
        assert s.get_config("site") == "name: demo\n"
        assert s.schema_version() == SCHEMA_VERSION


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nexus.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="schema version"):
        SqliteStore(path)


def test_a_file_that_is_not_a_database_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "nexus.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError) as info:
        SqliteStore(path)
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_unknown_stored_state_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "nexus.db"
    with SqliteStore(path) as s:
        s.save_alarm(alarm())
    conn = sqlite3.connect(path)
    conn.execute("UPDATE alarms SET state = 'teleported'")
    conn.commit()
    conn.close()
    with SqliteStore(path) as s, pytest.raises(StoreError, match="cannot read"):
        s.alarms()


def test_a_closed_store_refuses_calls(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "nexus.db")
    s.count_findings()
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.count_findings()
    with pytest.raises(StoreError, match="closed"):
        s.add_findings([finding(1.0)])


def test_in_memory_store_works() -> None:
    with SqliteStore(":memory:") as s:
        s.add_findings([finding(1.0)])
        s.save_alarm(alarm())
        assert s.count_findings() == 1
        assert len(s.alarms()) == 1


def test_a_writer_thread_and_reader_threads(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "nexus.db")
    batches, per_batch = 60, 10
    done = threading.Event()
    start = threading.Barrier(4)  # writer and readers overlap

    def write() -> None:
        start.wait(timeout=10)
        try:
            for b in range(batches):
                store.add_findings([finding(b * per_batch + i) for i in range(per_batch)])
                store.save_alarm(alarm(last_seen=float(b)))
                store.add_event(float(b), "alarm.updated", "pipeline", "pump-1:spike", {"b": b})
        finally:
            done.set()

    def read() -> int:
        reads = seen = 0
        start.wait(timeout=10)
        while True:  # at least one read, however the threads are scheduled
            finished = done.is_set()  # read once more after the last write
            n = store.count_findings()
            # Batches commit whole: a reader never sees part of one, nor counts go back.
            assert n % per_batch == 0
            assert n >= seen
            seen = n
            newest = store.findings(limit=per_batch)
            if newest:
                assert newest[0].finding.time >= newest[-1].finding.time
            store.alarms()
            store.events(limit=5)
            reads += 1
            if finished:
                assert n == batches * per_batch
                return reads

    with ThreadPoolExecutor(max_workers=4) as pool:
        readers = [pool.submit(read) for _ in range(3)]
        writer = pool.submit(write)
        writer.result(timeout=30)  # re-raises anything the thread raised
        assert all(r.result(timeout=30) >= 1 for r in readers)
    assert store.count_findings() == batches * per_batch
    assert store.count_events() == batches
    alarms = store.alarms()
    assert len(alarms) == 1
    assert alarms[0].last_seen == batches - 1
    store.close()
