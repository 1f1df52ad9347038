"""Dependency aliases shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, WebSocket

from safety_nexus.pipeline.runtime import Runtime


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _ws_runtime(websocket: WebSocket) -> Runtime:
    runtime: Runtime = websocket.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
WsRuntimeDep = Annotated[Runtime, Depends(_ws_runtime)]
