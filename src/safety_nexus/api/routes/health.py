from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from safety_nexus.api.deps import RuntimeDep
from safety_nexus.api.schemas import Health

router = APIRouter(tags=["health"])
metrics_router = APIRouter(tags=["health"])


@router.get("/health")
def health(runtime: RuntimeDep) -> Health:
    return Health(
        status="ok",
        time=runtime.clock.now(),
        signals=len(runtime.table),
        queue_depth=runtime.queue_depth,
        subscribers=runtime.hub.subscribers,
    )


@metrics_router.get("/metrics", include_in_schema=False)
def metrics(runtime: RuntimeDep) -> Response:
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
