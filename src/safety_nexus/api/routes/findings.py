from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from safety_nexus.api.deps import RuntimeDep
from safety_nexus.api.schemas import FindingPublic
from safety_nexus.core.types import FindingKind

router = APIRouter(tags=["findings"])


@router.get("/findings")
def list_findings(
    runtime: RuntimeDep,
    since: float | None = None,
    until: float | None = None,
    asset: str | None = None,
    signal: str | None = None,
    kind: FindingKind | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[FindingPublic]:
    rows = runtime.store.findings(
        since=since, until=until, asset=asset, signal=signal, kind=kind, limit=limit
    )
    return [FindingPublic.of(r.id, r.finding) for r in rows]
