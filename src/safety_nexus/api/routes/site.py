from __future__ import annotations

from fastapi import APIRouter

from safety_nexus.api.deps import RuntimeDep
from safety_nexus.api.schemas import (
    AssetPublic,
    DependencyPublic,
    SitePublic,
    StatusPublic,
    SubsystemPublic,
)

router = APIRouter(tags=["site"])


@router.get("/site")
def get_site(runtime: RuntimeDep) -> SitePublic:
    site = runtime.site
    return SitePublic(
        name=site.site.name,
        subsystems=[SubsystemPublic(id=s.id, name=s.name) for s in site.subsystems],
        assets=[
            AssetPublic(
                id=a.id,
                subsystem=a.subsystem,
                type=a.type,
                name=a.name or a.id,
                criticality=a.criticality.value,
                signals=[f"{a.id}.{s.name}" for s in a.signals],
            )
            for a in site.assets
        ],
        dependencies=[
            DependencyPublic(
                provider=d.provider, dependant=d.dependant, kind=d.kind.value, lag=d.lag
            )
            for d in site.dependencies
        ],
    )


@router.get("/status")
def get_status(runtime: RuntimeDep) -> StatusPublic:
    return StatusPublic.of(runtime.status())
