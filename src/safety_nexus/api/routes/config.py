"""Setpoints and directives: what is authorised, and the one way to change it (PUT).

Every PUT that changes a value is journalled with its user, time, diff and reason (see
`control.config_integrity`); an unknown id is 404, a value outside the setpoint's range or not
one of the directive's states 422. A change made any other way shows up in the controller's
readback and raises an `unauthorised_change` finding instead.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from safety_nexus.api.deps import ConfigurationDep
from safety_nexus.api.schemas import (
    ControlEventPublic,
    DirectivePublic,
    DirectiveUpdate,
    SetpointPublic,
    SetpointUpdate,
)
from safety_nexus.control.config_integrity import ControlKind
from safety_nexus.store.sqlite import Event

router = APIRouter(tags=["configuration"])

SETPOINT = ControlKind.SETPOINT
DIRECTIVE = ControlKind.DIRECTIVE
Limit = Annotated[int, Query(ge=1, le=5000)]


@router.get("/setpoints")
def list_setpoints(registry: ConfigurationDep) -> list[SetpointPublic]:
    return [SetpointPublic.of(s) for s in registry.states(SETPOINT)]


@router.get("/setpoints/{setpoint_id}")
def get_setpoint(registry: ConfigurationDep, setpoint_id: str) -> SetpointPublic:
    return SetpointPublic.of(registry.get(setpoint_id, SETPOINT))


@router.put("/setpoints/{setpoint_id}")
def change_setpoint(
    registry: ConfigurationDep, setpoint_id: str, body: SetpointUpdate
) -> SetpointPublic:
    state = registry.change(setpoint_id, body.value, body.user, body.reason, kind=SETPOINT)
    return SetpointPublic.of(state)


@router.get("/setpoints/{setpoint_id}/changes")
def setpoint_changes(
    registry: ConfigurationDep, setpoint_id: str, limit: Limit = 500
) -> list[ControlEventPublic]:
    return _events(registry.history(setpoint_id, SETPOINT, limit=limit))


@router.get("/directives")
def list_directives(registry: ConfigurationDep) -> list[DirectivePublic]:
    return [DirectivePublic.of(s) for s in registry.states(DIRECTIVE)]


@router.get("/directives/{directive_id}")
def get_directive(registry: ConfigurationDep, directive_id: str) -> DirectivePublic:
    return DirectivePublic.of(registry.get(directive_id, DIRECTIVE))


@router.put("/directives/{directive_id}")
def change_directive(
    registry: ConfigurationDep, directive_id: str, body: DirectiveUpdate
) -> DirectivePublic:
    state = registry.change(directive_id, body.value, body.user, body.reason, kind=DIRECTIVE)
    return DirectivePublic.of(state)


@router.get("/directives/{directive_id}/changes")
def directive_changes(
    registry: ConfigurationDep, directive_id: str, limit: Limit = 500
) -> list[ControlEventPublic]:
    return _events(registry.history(directive_id, DIRECTIVE, limit=limit))


def _events(events: list[Event]) -> list[ControlEventPublic]:
    return [
        ControlEventPublic(id=e.id, time=e.time, kind=e.kind, actor=e.actor, data=e.data)
        for e in events
    ]
