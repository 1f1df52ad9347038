"""A small site for alarm tests: a power chain down to a critical sprinkler zone, and a core.

sub-1 (medium) ─1 s─▶ feeder-1 (medium) ─2 s─▶ pump-1 (high) ─10 s─▶ zone-1 (critical)
core-1 (high, compute; depends on nothing)
With `tank=True`, also tank-1 (medium) ─water, 0 s─▶ pump-1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from safety_nexus.alarms.config import AlarmConfig
from safety_nexus.alarms.manager import AlarmManager
from safety_nexus.core.clock import ManualClock
from safety_nexus.core.types import Criticality, SignalTable
from safety_nexus.site.graph import DependencyGraph
from safety_nexus.site.schema import Site
from safety_nexus.store.sqlite import SqliteStore

ASSETS = {
    "sub-1": ("power", "medium"),
    "feeder-1": ("power", "medium"),
    "pump-1": ("water", "high"),
    "zone-1": ("fire", "critical"),
    "core-1": ("compute", "high"),
}
CHAIN = [("sub-1", "feeder-1", 1.0), ("feeder-1", "pump-1", 2.0), ("pump-1", "zone-1", 10.0)]
TANK = {"tank-1": ("water", "medium")}


def _assets(tank: bool) -> dict[str, tuple[str, str]]:
    return {**ASSETS, **TANK} if tank else ASSETS


def chain_site(*, tank: bool = False) -> Site:
    deps = [{"provider": p, "dependant": d, "kind": "power", "lag": lag} for p, d, lag in CHAIN]
    if tank:
        deps.append({"provider": "tank-1", "dependant": "pump-1", "kind": "water", "lag": 0.0})
    data: dict[str, Any] = {
        "site": {"name": "test"},
        "subsystems": [{"id": s, "name": s.title()} for s in ("power", "water", "fire", "compute")],
        "assets": [
            {"id": a, "subsystem": sub, "type": "thing", "criticality": crit}
            for a, (sub, crit) in _assets(tank).items()
        ],
        "dependencies": deps,
    }
    return Site.model_validate(data)


def chain_table(*, tank: bool = False) -> SignalTable:
    assets = _assets(tank)
    ids = [f"{a}.{s}" for a in assets for s in ("x", "y")]
    n = len(ids)
    return SignalTable(
        ids=tuple(ids),
        assets=tuple(i.split(".")[0] for i in ids),
        subsystems=tuple(assets[i.split(".")[0]][0] for i in ids),
        units=("u",) * n,
        period=np.ones(n),
        normal_lo=np.zeros(n),
        normal_hi=np.ones(n),
        limit_lo=np.full(n, -np.inf),
        limit_hi=np.full(n, np.inf),
        criticality=tuple(Criticality(assets[i.split(".")[0]][1]) for i in ids),
    )


def chain_manager(
    store: SqliteStore, clock: ManualClock, config: AlarmConfig | None = None, *, tank: bool = False
) -> AlarmManager:
    """The chain's alarm manager. Without a config, `on_delay` is 0 (an alarm shows when its
    finding arrives): most alarm tests are about something else; a test that passes its own
    config gets the product's defaults for what it does not set, the 10 s on-delay included."""
    return AlarmManager(
        chain_table(tank=tank),
        store,
        clock,
        graph=DependencyGraph(chain_site(tank=tank)),
        config=config if config is not None else AlarmConfig(on_delay=0.0),
        restored=store.load_alarms().values(),
    )
