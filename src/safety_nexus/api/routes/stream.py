"""`/api/v1/stream`: live alarms, findings and a status heartbeat over a WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from safety_nexus.api.deps import WsRuntimeDep
from safety_nexus.api.schemas import AlarmPublic, FindingPublic, StatusPublic
from safety_nexus.core.types import Alarm, Finding
from safety_nexus.pipeline.hub import Event

router = APIRouter(tags=["stream"])

STATUS_EVERY = 1.0


def _message(event: Event) -> dict[str, Any] | None:
    if event.type == "alarm" and isinstance(event.payload, Alarm):
        return {"type": "alarm", "alarm": AlarmPublic.of(event.payload).model_dump()}
    if event.type == "finding" and isinstance(event.payload, tuple):
        fid, finding = event.payload
        if isinstance(finding, Finding):
            return {"type": "finding", "finding": FindingPublic.of(fid, finding).model_dump()}
    return None


@router.websocket("/stream")
async def stream(websocket: WebSocket, runtime: WsRuntimeDep) -> None:
    await websocket.accept()
    sub = runtime.hub.subscribe()
    loop = asyncio.get_running_loop()
    next_status = loop.time()
    try:
        while True:
            now = loop.time()
            if now >= next_status:
                status = StatusPublic.of(runtime.status()).model_dump()
                await websocket.send_json({"type": "status", "status": status})
                next_status = now + STATUS_EVERY
            try:
                event = await asyncio.wait_for(sub.get(), timeout=max(0.0, next_status - now))
            except TimeoutError:
                continue
            message = _message(event)
            if message is not None:
                await websocket.send_json(message)
    except WebSocketDisconnect:
        pass
    finally:
        runtime.hub.unsubscribe(sub)
        with contextlib.suppress(RuntimeError):
            await websocket.close()
