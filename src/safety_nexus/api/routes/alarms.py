"""The alarm list and what operators do with it. Every action names its user and is journalled;
an action the alarm's state does not allow is refused with 409 and the reason."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from safety_nexus.alarms.manager import MaintenanceWindow
from safety_nexus.api.deps import RuntimeDep
from safety_nexus.api.schemas import (
    AlarmEventPublic,
    AlarmPublic,
    FloodPublic,
    MaintenanceCreate,
    MaintenancePublic,
    OperatorActionCreate,
    ShelveCreate,
)
from safety_nexus.core.errors import AlarmError, NotFoundError

router = APIRouter(tags=["alarms"])


@router.get("/alarms")
def list_alarms(
    runtime: RuntimeDep,
    state: Literal["open", "shown", "removed", "live", "all"] = "open",
) -> list[AlarmPublic]:
    """`open`/`shown`: on the list; `removed`: shelved, suppressed or out of service; `live`:
    not closed; `all`: every alarm this run has seen."""
    view = "shown" if state == "open" else state
    return [AlarmPublic.of(a) for a in runtime.alarms.alarms(view=view)]


@router.get("/alarms/floods")
def floods(runtime: RuntimeDep) -> list[FloodPublic]:
    config = runtime.alarms.config
    return [
        FloodPublic(
            position=f.position,
            flood=f.flood,
            count=f.count,
            since=f.since,
            window=config.flood_window,
            limit=config.flood_alarms,
        )
        for f in runtime.alarms.floods()
    ]


@router.get("/alarms/{alarm_id}")
def get_alarm(runtime: RuntimeDep, alarm_id: str) -> AlarmPublic:
    return AlarmPublic.of(runtime.alarms.get(alarm_id))


@router.get("/alarms/{alarm_id}/history")
def alarm_history(runtime: RuntimeDep, alarm_id: str, limit: int = 200) -> list[AlarmEventPublic]:
    """The alarm's journal, newest first: every transition with its cause, actor and note."""
    runtime.alarms.get(alarm_id)  # 404 for an unknown alarm
    return [
        AlarmEventPublic(id=e.id, time=e.time, kind=e.kind, actor=e.actor, data=dict(e.data))
        for e in runtime.store.events(subject=alarm_id, limit=max(1, min(limit, 5000)))
    ]


@router.post("/alarms/{alarm_id}/acknowledge")
def acknowledge(runtime: RuntimeDep, alarm_id: str, body: OperatorActionCreate) -> AlarmPublic:
    return AlarmPublic.of(runtime.alarms.acknowledge(alarm_id, body.user, body.note))


@router.post("/alarms/{alarm_id}/reset")
def reset(runtime: RuntimeDep, alarm_id: str, body: OperatorActionCreate) -> AlarmPublic:
    return AlarmPublic.of(runtime.alarms.reset(alarm_id, body.user, body.note))


@router.post("/alarms/{alarm_id}/shelve")
def shelve(runtime: RuntimeDep, alarm_id: str, body: ShelveCreate) -> AlarmPublic:
    if body.duration is None and not body.one_shot:
        raise AlarmError("shelving needs a duration (seconds) or one_shot")
    return AlarmPublic.of(
        runtime.alarms.shelve(
            alarm_id, body.user, duration=body.duration, one_shot=body.one_shot, note=body.note
        )
    )


@router.post("/alarms/{alarm_id}/unshelve")
def unshelve(runtime: RuntimeDep, alarm_id: str, body: OperatorActionCreate) -> AlarmPublic:
    return AlarmPublic.of(runtime.alarms.unshelve(alarm_id, body.user, body.note))


@router.post("/alarms/{alarm_id}/out-of-service")
def remove_from_service(
    runtime: RuntimeDep, alarm_id: str, body: OperatorActionCreate
) -> AlarmPublic:
    return AlarmPublic.of(runtime.alarms.remove_from_service(alarm_id, body.user, body.note))


@router.post("/alarms/{alarm_id}/return-to-service")
def return_to_service(
    runtime: RuntimeDep, alarm_id: str, body: OperatorActionCreate
) -> AlarmPublic:
    return AlarmPublic.of(runtime.alarms.return_to_service(alarm_id, body.user, body.note))


@router.get("/maintenance")
def list_maintenance(runtime: RuntimeDep) -> list[MaintenancePublic]:
    return [_window(w) for w in runtime.alarms.maintenance()]


@router.post("/maintenance", status_code=201)
def add_maintenance(runtime: RuntimeDep, body: MaintenanceCreate) -> MaintenancePublic:
    known_assets = {a.id for a in runtime.site.assets}
    known_subsystems = {s.id for s in runtime.site.subsystems}
    for asset in body.assets:
        if asset not in known_assets:
            raise NotFoundError(f"no asset '{asset}'")
    for sub in body.subsystems:
        if sub not in known_subsystems:
            raise NotFoundError(f"no subsystem '{sub}'")
    window = MaintenanceWindow(
        id=body.id,
        start=body.start,
        end=body.end,
        actor=body.user,
        assets=tuple(body.assets),
        subsystems=tuple(body.subsystems),
        note=body.note,
    )
    return _window(runtime.alarms.add_maintenance(window))


@router.post("/maintenance/{window_id}/end")
def end_maintenance(
    runtime: RuntimeDep, window_id: str, body: OperatorActionCreate
) -> MaintenancePublic:
    return _window(runtime.alarms.end_maintenance(window_id, body.user))


def _window(w: MaintenanceWindow) -> MaintenancePublic:
    return MaintenancePublic(
        id=w.id,
        start=w.start,
        end=w.end,
        actor=w.actor,
        assets=list(w.assets),
        subsystems=list(w.subsystems),
        note=w.note,
    )
