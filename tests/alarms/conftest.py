"""Fixtures of the alarm tests (the site and helpers are in alarm_site.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alarm_site import chain_manager

from safety_nexus.alarms.manager import AlarmManager
from safety_nexus.core.clock import ManualClock
from safety_nexus.store.sqlite import SqliteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "nexus.db")
    yield s
    s.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(0.0)


@pytest.fixture
def chain(store: SqliteStore, clock: ManualClock) -> AlarmManager:
    return chain_manager(store, clock)
