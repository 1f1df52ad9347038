from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from safety_nexus.api.deps import RuntimeDep
from safety_nexus.api.schemas import AcknowledgeCreate, AlarmPublic

router = APIRouter(tags=["alarms"])


@router.get("/alarms")
def list_alarms(runtime: RuntimeDep, state: Literal["open", "all"] = "open") -> list[AlarmPublic]:
    return [AlarmPublic.of(a) for a in runtime.alarms.alarms(open_only=state == "open")]


@router.get("/alarms/{alarm_id}")
def get_alarm(runtime: RuntimeDep, alarm_id: str) -> AlarmPublic:
    return AlarmPublic.of(runtime.alarms.get(alarm_id))


@router.post("/alarms/{alarm_id}/acknowledge")
def acknowledge(runtime: RuntimeDep, alarm_id: str, body: AcknowledgeCreate) -> AlarmPublic:
    return AlarmPublic.of(runtime.alarms.acknowledge(alarm_id, body.user, body.note))
