"""Alarms: findings folded into few, prioritised, acknowledgeable alarms."""

from __future__ import annotations

from safety_nexus.alarms.manager import AlarmJournal, AlarmManager

__all__ = ["AlarmJournal", "AlarmManager"]
