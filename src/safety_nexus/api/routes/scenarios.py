"""Demo control: list and inject simulator scenarios (only when the simulator is the source)."""

from __future__ import annotations

from fastapi import APIRouter, status

from safety_nexus.api.deps import RuntimeDep
from safety_nexus.api.schemas import InjectCreate, ScenarioPublic
from safety_nexus.core.errors import NotFoundError
from safety_nexus.sim import SCENARIOS

router = APIRouter(tags=["scenarios"])


@router.get("/scenarios")
def list_scenarios() -> list[ScenarioPublic]:
    seen: dict[str, ScenarioPublic] = {}
    for d in SCENARIOS.values():
        seen.setdefault(
            d.id, ScenarioPublic(id=d.id, name=d.name, kind=d.kind, description=d.description)
        )
    return list(seen.values())


@router.post("/scenarios/{name}/inject", status_code=status.HTTP_202_ACCEPTED)
def inject(runtime: RuntimeDep, name: str, body: InjectCreate | None = None) -> ScenarioPublic:
    sim = runtime.simulator
    if sim is None:
        raise NotFoundError("no simulator is running: scenarios can only be injected in the demo")
    sim.request(name, **(body.params if body else {}))
    d = SCENARIOS[name]
    return ScenarioPublic(id=d.id, name=d.name, kind=d.kind, description=d.description)
