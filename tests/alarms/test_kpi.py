"""alarms.kpi: every figure from a journal built event by event, checked exactly; a property
test against a plain-Python count; the module's own example."""

from __future__ import annotations

import doctest
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safety_nexus.alarms import kpi
from safety_nexus.alarms.config import AlarmConfig
from safety_nexus.alarms.kpi import (
    ANNUNCIATED,
    CHATTERING,
    AlarmKpis,
    compute_kpis,
    kpis_from_store,
)
from safety_nexus.core.errors import RequestError
from safety_nexus.core.types import Alarm, AlarmState, FindingKind, Priority
from safety_nexus.store.sqlite import Event, SqliteStore

T0 = 1_780_272_000.0  # 2026-06-01 00:00 UTC, the simulator's default start
HOUR = 3600.0


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "kpi.db")
    yield s
    s.close()


def annunciate(
    store: SqliteStore,
    t: float,
    alarm: str,
    *,
    position: str = "north",
    priority: str = "low",
) -> None:
    asset, kind = alarm.split(":", 1)
    store.add_event(
        t,
        ANNUNCIATED,
        "detector",
        alarm,
        {
            "from": "normal",
            "to": "unacknowledged",
            "event": "activate",
            "priority": priority,
            "position": position,
            "subsystem": "water",
            "asset": asset,
            "kind": kind,
            "chattering": False,
        },
    )


def event(t: float, alarm: str, position: str = "north", priority: str = "low") -> Event:
    data = {"position": position, "priority": priority}
    return Event(id=0, time=t, kind=ANNUNCIATED, actor="detector", subject=alarm, data=data)


def alarm(alarm_id: str, first_seen: float, *, condition: bool = True, **kw: object) -> Alarm:
    fields: dict[str, object] = {
        "id": alarm_id,
        "asset": alarm_id.split(":")[0],
        "subsystem": "water",
        "kind": FindingKind.SPIKE,
        "priority": Priority.HIGH,
        "state": AlarmState.ACKNOWLEDGED if condition else AlarmState.NORMAL,
        "first_seen": first_seen,
        "last_seen": first_seen,
        "condition": condition,
        "position": "north",
        **kw,
    }
    return Alarm(**fields)  # type: ignore[arg-type]


def kpis_of(store: SqliteStore, span: float = HOUR, **kw: object) -> AlarmKpis:
    return kpis_from_store(store, since=T0, until=T0 + span, **kw)  # type: ignore[arg-type]


def check(kpis: AlarmKpis, scope: str, name: str) -> kpi.Check:
    (found,) = [c for c in kpis.checks() if c.scope == scope and c.name.startswith(name)]
    return found


# -- annunciation rates and floods ------------------------------------------------------------


def test_eleven_in_one_period_are_one_flood_period(journal: SqliteStore) -> None:
    for i in range(11):
        annunciate(journal, T0 + 50.0 * i, f"pump-{i}:spike")
    kpis = kpis_of(journal)
    (north,) = kpis.positions
    assert north.position == "north"
    assert north.counts == (11, 0, 0, 0, 0, 0)
    assert north.annunciations == kpis.annunciations == 11
    assert north.flood_periods == 1
    assert north.periods_over_max == 1
    assert north.flood_share == pytest.approx(1 / 6)
    assert north.per_10min.maximum == 11
    assert north.per_10min.average == pytest.approx(11 / 6)
    assert north.per_10min.level == "manageable"
    assert (north.per_hour.average, north.per_hour.maximum) == (11.0, 11)
    assert north.per_hour.level == "manageable"
    assert north.per_day.average == pytest.approx(11 * 24)
    assert north.per_day.maximum == 11
    assert north.peak_10min == 11
    assert not check(kpis, "north", "most in a 10-minute period").met
    assert not check(kpis, "north", "time in flood").met
    assert check(kpis, "north", "average per hour").met


def test_ten_in_one_period_are_not_a_flood(journal: SqliteStore) -> None:
    for i in range(10):
        annunciate(journal, T0 + 50.0 * i, f"pump-{i}:spike")
    (north,) = kpis_of(journal).positions
    assert (north.flood_periods, north.periods_over_max, north.flood_share) == (0, 0, 0.0)
    assert north.per_10min.maximum == 10


def test_flood_threshold_and_window_come_from_the_config(journal: SqliteStore) -> None:
    for i in range(6):
        annunciate(journal, T0 + 10.0 * i, f"pump-{i}:spike")
    config = AlarmConfig(flood_alarms=5, flood_window=300.0)
    (north,) = kpis_of(journal, config=config).positions
    assert north.flood_periods == 1
    assert north.flood_share == pytest.approx(300 / HOUR)
    assert north.periods_over_max == 0  # ISA-18.2's 10 per 10 minutes is fixed


def test_periods_are_fixed_and_anchored_at_since(journal: SqliteStore) -> None:
    annunciate(journal, T0, "a:spike")  # since itself counts
    annunciate(journal, T0 + 599.5, "b:spike")
    annunciate(journal, T0 + 600.0, "c:spike")  # the next period starts here
    annunciate(journal, T0 + HOUR - 0.001, "d:spike")
    annunciate(journal, T0 + HOUR, "e:spike")  # until is excluded
    annunciate(journal, T0 - 0.001, "f:spike")  # before since
    (north,) = kpis_of(journal).positions
    assert north.counts == (2, 1, 0, 0, 0, 1)
    assert north.annunciations == 4


def test_the_rolling_peak_sees_a_burst_across_two_periods(journal: SqliteStore) -> None:
    for i in range(6):
        annunciate(journal, T0 + 590.0 + i, f"x{i}:spike")
        annunciate(journal, T0 + 600.0 + i, f"y{i}:spike")
    kpis = kpis_of(journal)
    (north,) = kpis.positions
    assert north.counts[:2] == (6, 6)
    assert north.per_10min.maximum == 6
    assert north.peak_10min == 12
    assert north.flood_periods == 0
    assert "any 10 min: 12" in check(kpis, "north", "most in a 10-minute period").value


def test_a_short_last_period_counts_by_its_length(journal: SqliteStore) -> None:
    for i in range(11):
        annunciate(journal, T0 + 1200.0 + i, f"pump-{i}:spike")
    (north,) = kpis_of(journal, span=1500.0).positions
    assert north.counts == (0, 0, 11)
    assert north.flood_share == pytest.approx(300 / 1500)
    assert north.per_10min.average == pytest.approx(11 / 2.5)


def test_positions_are_counted_apart_and_one_can_be_chosen(journal: SqliteStore) -> None:
    annunciate(journal, T0 + 1, "a:spike", position="south")
    annunciate(journal, T0 + 2, "b:spike", position="north")
    annunciate(journal, T0 + 700, "c:spike", position="south")
    kpis = kpis_of(journal)
    assert [(p.position, p.annunciations) for p in kpis.positions] == [("north", 1), ("south", 2)]
    assert kpis.positions[1].counts == (1, 1, 0, 0, 0, 0)
    south = kpis_of(journal, position="south")
    assert south.annunciations == 2
    assert [p.position for p in south.positions] == ["south"]
    assert {t.alarm for t in south.top} == {"a:spike", "c:spike"}
    quiet = kpis_of(journal, position="east")
    assert [(p.position, p.annunciations, p.counts) for p in quiet.positions] == [
        ("east", 0, (0,) * 6)
    ]
    assert all(c.met for c in quiet.checks())


def test_an_event_without_a_position_goes_to_the_default_position(journal: SqliteStore) -> None:
    journal.add_event(T0, ANNUNCIATED, "detector", "a:spike", {"priority": "low"})
    assert [p.position for p in kpis_of(journal).positions] == ["control-room"]


# -- top 10, chattering, stale, priorities ----------------------------------------------------


def test_the_top_ten_and_their_share(journal: SqliteStore) -> None:
    # Alarm k annunciated k times (k = 1..12), spread so that nothing chatters.
    t = T0
    for k in range(1, 13):
        for _ in range(k):
            annunciate(journal, t, f"a{k:02d}:spike")
            t += 61.0
    kpis = kpis_of(journal, span=2 * HOUR)
    assert kpis.annunciations == 78
    assert [(a.alarm, a.count) for a in kpis.top] == [
        (f"a{k:02d}:spike", k) for k in range(12, 2, -1)
    ]
    assert kpis.top_share == pytest.approx(75 / 78)
    assert kpis.top[0].share == pytest.approx(12 / 78)
    assert not check(kpis, "all", "top 10 alarms").met
    assert kpis.chattering == ()


def test_top_ties_are_broken_by_alarm_id(journal: SqliteStore) -> None:
    for i, name in enumerate(["m:spike", "b:spike", "z:spike", "a:spike"] * 3):
        annunciate(journal, T0 + 100.0 * i, name)
    assert [a.alarm for a in kpis_of(journal).top] == ["a:spike", "b:spike", "m:spike", "z:spike"]


def test_chattering_by_bursts_and_by_the_managers_flag(journal: SqliteStore) -> None:
    for dt in (0.0, 20.0, 59.9):  # three within 60 s: chattering
        annunciate(journal, T0 + dt, "fast:spike")
    for dt in (0.0, 30.0, 60.0):  # the third 60 s after the first: not
        annunciate(journal, T0 + 1000 + dt, "edge:spike")
    annunciate(journal, T0 + 2000, "flagged:spike", priority="high")
    for t in (T0 + 2001, T0 + 2500):
        journal.add_event(
            t,
            CHATTERING,
            "detector",
            "flagged:spike",
            {"chattering": True, "position": "north", "priority": "high"},
        )
    journal.add_event(T0 + 2600, CHATTERING, "detector", "flagged:spike", {"chattering": False})
    journal.add_event(T0 + 2700, CHATTERING, "detector", "calm:spike", {"chattering": False})
    kpis = kpis_of(journal)
    assert [(c.alarm, c.annunciations, c.chattering_events, c.burst) for c in kpis.chattering] == [
        ("fast:spike", 3, 0, 3),
        ("flagged:spike", 1, 2, 1),
    ]
    assert kpis.chattering[1].priority == "high"
    assert check(kpis, "all", "chattering alarms").value == "2"
    assert not check(kpis, "all", "chattering alarms").met
    assert kpis_of(journal, position="south").chattering == ()


def test_stale_alarms_are_active_for_more_than_a_day_at_until() -> None:
    until = T0 + 2 * 86400.0
    alarms = [
        alarm("old:spike", until - 25 * HOUR),
        alarm("young:spike", until - 23 * HOUR),
        alarm("cleared:spike", until - 30 * HOUR, condition=False),
        alarm("elsewhere:spike", until - 48 * HOUR, position="south"),
    ]
    kpis = compute_kpis([], [], alarms, since=until - HOUR, until=until)
    assert [(s.alarm, s.age) for s in kpis.stale] == [
        ("elsewhere:spike", 48 * HOUR),
        ("old:spike", 25 * HOUR),
    ]
    assert check(kpis, "all", "stale alarms").met  # 2 < 5
    south = compute_kpis([], [], alarms, since=until - HOUR, until=until, position="south")
    assert [s.alarm for s in south.stale] == ["elsewhere:spike"]
    many = [alarm(f"s{i}:spike", T0) for i in range(5)]
    assert not check(compute_kpis([], [], many, since=until - 1, until=until), "all", "stale").met


def test_stale_alarms_come_from_the_stores_alarms_table(journal: SqliteStore) -> None:
    journal.add_event(T0 + 2 * 86400.0 - 1, "runtime.started", "system", "site", {})
    journal.save_alarms([alarm("old:spike", T0), alarm("cleared:spike", T0, condition=False)])
    kpis = kpis_from_store(journal, since=T0 + 86400.0, until=T0 + 2 * 86400.0)
    assert [(s.alarm, s.position, s.priority) for s in kpis.stale] == [
        ("old:spike", "north", "high")
    ]


def test_priority_distribution_against_80_15_5_1(journal: SqliteStore) -> None:
    labels = ["low"] * 8 + ["medium", "high"]
    for i, label in enumerate(labels):
        annunciate(journal, T0 + 100.0 * i, f"a{i}:spike", priority=label)
    kpis = kpis_of(journal)
    shares = {p.priority: (p.count, p.share, p.met) for p in kpis.priorities}
    assert shares == {
        "low": (8, 0.8, True),
        "medium": (1, 0.1, True),
        "high": (1, 0.1, False),
        "emergency": (0, 0.0, True),
    }
    assert not check(kpis, "all", "high priority share").met
    assert check(kpis, "all", "low priority share").met


def test_an_unknown_priority_is_shown_apart(journal: SqliteStore) -> None:
    annunciate(journal, T0, "a:spike", priority="urgent")
    annunciate(journal, T0 + 1, "b:spike", priority="low")
    kpis = kpis_of(journal)
    assert [(p.priority, p.count) for p in kpis.priorities] == [
        ("low", 1),
        ("medium", 0),
        ("high", 0),
        ("emergency", 0),
        ("other", 1),
    ]
    assert not check(kpis, "all", "low priority share").met  # 50 %


def test_a_quiet_period_meets_every_target(journal: SqliteStore) -> None:
    kpis = kpis_of(journal)
    assert kpis.annunciations == 0
    assert kpis.positions == ()
    assert kpis.top == ()
    assert kpis.top_share == 0.0
    assert all(c.met for c in kpis.checks())


# -- the result as data -----------------------------------------------------------------------


def test_to_dict_is_plain_json(journal: SqliteStore) -> None:
    for i in range(12):
        annunciate(journal, T0 + 30.0 * i, f"pump-{i % 4}:spike", priority="medium")
    doc = kpis_of(journal).to_dict()
    again = json.loads(json.dumps(doc, allow_nan=False))
    assert again == doc
    assert doc["since_iso"] == "2026-06-01T00:00:00+00:00"
    assert doc["annunciations"] == 12
    (north,) = doc["positions"]
    assert north["counts_10min"] == [12, 0, 0, 0, 0, 0]
    assert north["periods_over_10"] == 1
    assert north["per_hour"]["level"] == "manageable"
    assert doc["top"]["alarms"][0] == {
        "alarm": "pump-0:spike",
        "count": 3,
        "share": 0.25,
        "priority": "medium",
        "position": "north",
    }
    assert {c["name"] for c in doc["checks"]} >= {"time in flood", "chattering alarms"}


@pytest.mark.parametrize(("since", "until"), [(T0, T0), (T0 + 1, T0), (T0, float("inf"))])
def test_an_empty_period_is_refused(since: float, until: float) -> None:
    with pytest.raises(RequestError, match="period"):
        compute_kpis([], [], [], since=since, until=until)


# -- the counting against a plain-Python one --------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    offsets=st.lists(st.floats(0.0, 7199.999, allow_nan=False), max_size=80),
    which=st.lists(st.integers(0, 2), min_size=80, max_size=80),
    span=st.floats(601.0, 7200.0),
)
def test_counts_match_a_plain_count(offsets: list[float], which: list[int], span: float) -> None:
    names = ["north", "south", "tunnel"]
    events = [
        event(T0 + dt, f"a{i % 7}:spike", names[which[i]])
        for i, dt in enumerate(offsets)
        if dt < span
    ]
    kpis = compute_kpis(events, [], [], since=T0, until=T0 + span)
    assert kpis.annunciations == len(events)
    assert sum(p.annunciations for p in kpis.positions) == len(events)
    for p in kpis.positions:
        times = sorted(e.time - T0 for e in events if e.data["position"] == p.position)
        assert sum(p.counts) == p.annunciations == len(times)
        n = len(p.counts)
        assert (n - 1) * 600.0 < span <= n * 600.0 + 1e-6
        assert list(p.counts) == [
            sum(1 for t in times if k * 600 <= t < (k + 1) * 600) for k in range(n)
        ]
        peak = max(sum(1 for u in times if t <= u < t + 600) for t in times)
        assert p.peak_10min == peak
        assert max(p.counts) <= p.peak_10min <= 2 * max(p.counts)
        assert 0.0 <= p.flood_share <= 1.0
    per_alarm: dict[str, int] = {}
    for e in events:
        per_alarm[e.subject] = per_alarm.get(e.subject, 0) + 1
    assert sorted(a.count for a in kpis.top) == sorted(per_alarm.values(), reverse=True)[:10][::-1]


def test_the_module_example_runs() -> None:
    result = doctest.testmod(kpi)
    assert result.attempted > 0
    assert result.failed == 0
