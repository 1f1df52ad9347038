"""What the operators control: setpoints and directives, their authorised values and history."""

from __future__ import annotations

from safety_nexus.control.config_integrity import (
    APPLY_GRACE,
    ConfigurationRegistry,
    ControlKind,
    ControlState,
    Targets,
    WatchList,
)

__all__ = [
    "APPLY_GRACE",
    "ConfigurationRegistry",
    "ControlKind",
    "ControlState",
    "Targets",
    "WatchList",
]
