"""Embedded storage: durable state in SQLite, recent telemetry in memory, history in Parquet.

On one machine these need no server (SPEC capability 10); the shared PostgreSQL and NATS
backends for scale-out will offer the same methods.
"""

from __future__ import annotations

from safety_nexus.store.history import HistoryStore, HistoryWindow
from safety_nexus.store.live import LiveTelemetry
from safety_nexus.store.sqlite import (
    CONFIG_CHANGED,
    SCHEMA_VERSION,
    ConfigVersion,
    Event,
    SqliteStore,
    StoredFinding,
)

__all__ = [
    "CONFIG_CHANGED",
    "SCHEMA_VERSION",
    "ConfigVersion",
    "Event",
    "HistoryStore",
    "HistoryWindow",
    "LiveTelemetry",
    "SqliteStore",
    "StoredFinding",
]
