"""Dependency aliases shared by the routers.

The dependencies are `async def` although they never await: FastAPI runs a plain `def`
dependency in its thread pool, two thread hops per request for what is an attribute lookup
(a quarter of the event loop's time under ingest load)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, WebSocket

from safety_nexus.control.config_integrity import ConfigurationRegistry
from safety_nexus.core.errors import NotFoundError
from safety_nexus.ingest.auth import Verifier
from safety_nexus.pipeline.runtime import Runtime


async def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _ws_runtime(websocket: WebSocket) -> Runtime:
    runtime: Runtime = websocket.app.state.runtime
    return runtime


def build_verifier(runtime: Runtime) -> Verifier:
    """The signature checker of a runtime's site; reads the sources' keys (see ingest.auth)."""
    return Verifier(runtime.site.sources, clock=runtime.clock, store=runtime.store)


async def _verifier(request: Request) -> Verifier:
    verifier: Verifier | None = getattr(request.app.state, "verifier", None)
    if verifier is None:  # an app not built by create_app
        verifier = request.app.state.verifier = build_verifier(request.app.state.runtime)
    return verifier


async def _configuration(request: Request) -> ConfigurationRegistry:
    registry: ConfigurationRegistry | None = request.app.state.runtime.configuration
    if registry is None:  # a runtime assembled without one (build_runtime always adds it)
        raise NotFoundError("this runtime does not track setpoints and directives")
    return registry


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
ConfigurationDep = Annotated[ConfigurationRegistry, Depends(_configuration)]
VerifierDep = Annotated[Verifier, Depends(_verifier)]
WsRuntimeDep = Annotated[Runtime, Depends(_ws_runtime)]
