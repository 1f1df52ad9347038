"""Alarm management settings: operator positions, latching, delays, chatter, flood, grouping.

Strict like every configuration: unknown keys are refused and every value is range-checked, so a
typo in a site's alarm settings fails at start with the field named. Times are seconds.

The defaults follow ISA-18.2 and EEMUA 191 practice: a condition must hold 10 s before it
alarms (on-delay); a flood is more than 10 alarms in 10 minutes at one operator position; an
alarm that changes state 3 times in a minute is chattering; a shelf lasts at most a shift.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from safety_nexus.core.types import Priority

DEFAULT_POSITION = "control-room"


class AlarmConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    positions: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            "operator position -> the subsystems whose alarms it handles; subsystems in no"
            f" position (all, by default) go to '{DEFAULT_POSITION}'"
        ),
    )
    latching: list[str] = Field(
        default_factory=lambda: ["emergency"],
        description="priorities whose alarms latch: after they clear, an operator resets them",
    )
    max_shelve: float = Field(8 * 3600.0, gt=0, allow_inf_nan=False)
    on_delay: float = Field(
        10.0,
        ge=0,
        allow_inf_nan=False,
        description=(
            "a condition must hold this long to alarm; the default, 10 s, follows ISA-18.2"
            " practice (0: an alarm shows as soon as its finding arrives)"
        ),
    )
    off_delay: float = Field(
        0.0, ge=0, allow_inf_nan=False, description="a condition must be clear this long to clear"
    )
    chatter_transitions: int = Field(
        3, ge=2, description="condition changes within chatter_window that make an alarm chatter"
    )
    chatter_window: float = Field(60.0, gt=0, allow_inf_nan=False)
    chatter_hold: float = Field(
        300.0,
        ge=0,
        allow_inf_nan=False,
        description="a chattering alarm clears only after its condition is clear this long",
    )
    flood_alarms: int = Field(
        10, ge=1, description="more than this many alarms in flood_window at a position: flood"
    )
    flood_window: float = Field(600.0, gt=0, allow_inf_nan=False)
    cascade_window: float = Field(
        900.0,
        ge=0,
        allow_inf_nan=False,
        description=(
            "a downstream alarm can be a consequence of an upstream one when its onset is at"
            " most this long after the upstream one's plus the dependency lag"
        ),
    )
    root_window: float = Field(
        120.0,
        ge=0,
        allow_inf_nan=False,
        description=(
            "cause and first effect are seen within this long of each other: a root cause can"
            " be detected this long after its consequences, a provider feels a dependant's"
            " trip and a partner takes over a duty within it, and only what began within the"
            " lag plus this long of an asset's onset is evidence for it as the root"
        ),
    )

    @model_validator(mode="after")
    def _check(self) -> AlarmConfig:
        labels = {p.label for p in Priority}
        for name in self.latching:
            if name not in labels:
                raise ValueError(
                    f"latching: unknown priority '{name}' (one of {', '.join(sorted(labels))})"
                )
        seen: dict[str, str] = {}
        for position, subsystems in self.positions.items():
            if not position.strip():
                raise ValueError("positions: a position needs a name")
            for sub in subsystems:
                if sub in seen:
                    raise ValueError(
                        f"positions: subsystem '{sub}' is in both '{seen[sub]}' and '{position}'"
                    )
                seen[sub] = position
        return self

    def position_of(self, subsystem: str) -> str:
        for position, subsystems in self.positions.items():
            if subsystem in subsystems:
                return position
        return DEFAULT_POSITION

    def latches(self, priority: Priority) -> bool:
        return priority.label in self.latching
