"""SqliteStore.iter_events: the journal by kind prefix in time order, page by page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from safety_nexus.core.errors import StoreError
from safety_nexus.store.sqlite import SqliteStore


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "nexus.db" if request.param == "file" else ":memory:")
    yield s
    s.close()


def fill(store: SqliteStore) -> list[tuple[float, str, str]]:
    """Kinds interleaved in time, several entries sharing a time, ids out of time order."""
    rows = [
        (5.0, "alarm.unacknowledged", "a"),
        (1.0, "alarm.acknowledged", "b"),
        (3.0, "config.changed", "c"),
        (3.0, "alarm.unacknowledged", "d"),
        (3.0, "alarm.normal", "e"),
        (3.0, "alarm.unacknowledged", "f"),
        (2.0, "alarms.other", "g"),  # "alarms." is not "alarm."
        (4.0, "alarm", "h"),
        (7.0, "alarm.flood", "i"),
        (3.0, "alarm.acknowledged", "j"),
    ]
    for t, kind, subject in rows:
        store.add_event(t, kind, "test", subject, {"subject": subject})
    return rows


@pytest.mark.parametrize("page", [1, 2, 3, 10_000])
def test_alarm_events_in_time_then_id_order(store: SqliteStore, page: int) -> None:
    fill(store)
    got = [(e.time, e.kind, e.subject) for e in store.iter_events(prefix="alarm.", page=page)]
    assert got == [
        (1.0, "alarm.acknowledged", "b"),
        (3.0, "alarm.unacknowledged", "d"),
        (3.0, "alarm.normal", "e"),
        (3.0, "alarm.unacknowledged", "f"),
        (3.0, "alarm.acknowledged", "j"),
        (5.0, "alarm.unacknowledged", "a"),
        (7.0, "alarm.flood", "i"),
    ]
    keys = [(e.time, e.id) for e in store.iter_events(prefix="alarm.", page=page)]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_the_range_is_half_open_and_data_is_read_back(store: SqliteStore) -> None:
    fill(store)
    got = list(store.iter_events(prefix="alarm.unack", since=3.0, until=5.0, page=1))
    assert [(e.time, e.subject) for e in got] == [(3.0, "d"), (3.0, "f")]
    assert got[0].data == {"subject": "d"}
    assert got[0].actor == "test"


def test_no_prefix_is_every_entry(store: SqliteStore) -> None:
    rows = fill(store)
    got = list(store.iter_events(page=4))
    assert len(got) == len(rows) == store.count_events()
    assert [e.time for e in got] == sorted(t for t, _, _ in rows)


def test_many_entries_at_one_time_across_pages(store: SqliteStore) -> None:
    for i in range(25):
        store.add_event(10.0, "alarm.unacknowledged" if i % 3 else "alarm.normal", "t", str(i), {})
    got = [int(e.subject) for e in store.iter_events(prefix="alarm.", page=4)]
    assert got == list(range(25))


def test_nothing_matches(store: SqliteStore) -> None:
    fill(store)
    assert list(store.iter_events(prefix="scenario.")) == []
    assert list(store.iter_events(prefix="alarm.", since=100.0)) == []


def test_a_page_must_hold_a_row(store: SqliteStore) -> None:
    with pytest.raises(StoreError, match="page"):
        store.iter_events(page=0)
