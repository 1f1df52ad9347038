"""Shared types, errors and the clock: the vocabulary every stage speaks."""

from __future__ import annotations

from safety_nexus.core.clock import Clock, ManualClock, SystemClock
from safety_nexus.core.errors import (
    AlarmError,
    ConfigError,
    ConfigIssue,
    DetectError,
    IngestError,
    NexusError,
    NotFoundError,
    SimError,
    StoreError,
)
from safety_nexus.core.types import (
    Alarm,
    AlarmState,
    Criticality,
    Finding,
    FindingKind,
    Frame,
    Priority,
    Recovery,
    SignalTable,
)

__all__ = [
    "Alarm",
    "AlarmError",
    "AlarmState",
    "Clock",
    "ConfigError",
    "ConfigIssue",
    "Criticality",
    "DetectError",
    "Finding",
    "FindingKind",
    "Frame",
    "IngestError",
    "ManualClock",
    "NexusError",
    "NotFoundError",
    "Priority",
    "Recovery",
    "SignalTable",
    "SimError",
    "StoreError",
    "SystemClock",
]
