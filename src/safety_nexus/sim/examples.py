"""Small sites for examples and tests: enough of each family to show the coupling, fast to run."""

from __future__ import annotations

from typing import Any

from safety_nexus.site.schema import Site


def _signal(name: str, normal: tuple[float, float], period: float = 1.0) -> dict[str, Any]:
    return {"name": name, "normal": list(normal), "period": period}


def tiny_site() -> Site:
    """A substation, two feeders, a pump and the main it pressurises: 7 signals."""
    return Site.model_validate(
        {
            "site": {"name": "tiny"},
            "subsystems": [{"id": "power", "name": "Power"}, {"id": "water", "name": "Water"}],
            "assets": [
                {
                    "id": "sub-1",
                    "subsystem": "power",
                    "type": "substation",
                    "signals": [_signal("voltage", (10.8, 11.2)), _signal("load", (20, 60))],
                },
                {
                    "id": "feeder-1",
                    "subsystem": "power",
                    "type": "feeder",
                    "signals": [_signal("current", (100, 400))],
                },
                {
                    "id": "feeder-2",
                    "subsystem": "power",
                    "type": "feeder",
                    "signals": [_signal("current", (100, 400))],
                },
                {
                    "id": "pump-1",
                    "subsystem": "water",
                    "type": "pump",
                    "signals": [_signal("pressure", (4, 6)), _signal("flow", (20, 60))],
                },
                {
                    "id": "main-1",
                    "subsystem": "water",
                    "type": "main",
                    "signals": [_signal("pressure", (3.5, 5.5))],
                },
            ],
            "dependencies": [
                {"provider": "sub-1", "dependant": "feeder-1", "kind": "power", "lag": 0.5},
                {"provider": "sub-1", "dependant": "feeder-2", "kind": "power", "lag": 0.5},
                {"provider": "feeder-1", "dependant": "pump-1", "kind": "power", "lag": 1},
                {"provider": "pump-1", "dependant": "main-1", "kind": "water", "lag": 5},
            ],
        }
    )


def small_city() -> Site:
    """One asset of every modelled type, with every signal the type's model knows (bands as in
    docs/demo-city.md), wired like the demo city: 15 assets, fast to simulate.

    sub-1 → feeder-1 → pump-1 → main-1 → sprinkler-1;  tank-1 → pump-1;  main-1 → chiller-1
    sub-1 → feeder-1 → fan-1 → tunnel-1;  sub-1 → feeder-2 → ups-1 (← gen-1) → pdu-1 (← feeder-2)
    pdu-1 → chiller-1, core-1, switch-1;  chiller-1 → core-1;  switch-1 → core-1
    """
    from safety_nexus.sim.model import MODELS  # the models' own tables: one source of truth

    subsystem = {
        "substation": "power",
        "feeder": "power",
        "generator": "power",
        "ups": "power",
        "pdu": "compute",
        "switch": "compute",
        "tank": "water",
        "pump": "water",
        "main": "water",
        "sprinkler-zone": "water",
        "chiller": "compute",
        "compute-node": "compute",
        "fan": "tunnels",
        "tunnel-section": "tunnels",
    }
    ids = {
        "substation": ["sub-1"],
        "feeder": ["feeder-1", "feeder-2"],
        "generator": ["gen-1"],
        "ups": ["ups-1"],
        "pdu": ["pdu-1"],
        "switch": ["switch-1"],
        "tank": ["tank-1"],
        "pump": ["pump-1"],
        "main": ["main-1"],
        "sprinkler-zone": ["sprinkler-1"],
        "chiller": ["chiller-1"],
        "compute-node": ["core-1"],
        "fan": ["fan-1"],
        "tunnel-section": ["tunnel-1"],
    }
    # One pump per main here, where the demo city has two or three.
    bands = {("main", "flow"): (20.0, 60.0)}
    assets = [
        {
            "id": asset,
            "subsystem": subsystem[model.TYPE],
            "type": model.TYPE,
            "signals": [
                _signal(name, bands.get((model.TYPE, name), model.BANDS[name]))
                for name in model.NAMES
            ],
        }
        for model in MODELS
        for asset in ids[model.TYPE]
    ]
    wiring = [
        ("sub-1", "feeder-1", "power", 0.5),
        ("sub-1", "feeder-2", "power", 0.5),
        ("feeder-1", "pump-1", "power", 1),
        ("feeder-1", "fan-1", "power", 1),
        ("tank-1", "pump-1", "water", 0),
        ("pump-1", "main-1", "water", 5),
        ("main-1", "sprinkler-1", "water", 10),
        ("main-1", "chiller-1", "water", 30),
        ("fan-1", "tunnel-1", "air", 30),
        ("feeder-2", "ups-1", "power", 0),
        ("gen-1", "ups-1", "power", 0),
        ("feeder-2", "pdu-1", "power", 0),
        ("ups-1", "pdu-1", "power", 0),
        ("pdu-1", "chiller-1", "power", 1),
        ("pdu-1", "core-1", "power", 0),
        ("pdu-1", "switch-1", "power", 0),
        ("chiller-1", "core-1", "water", 60),
        ("switch-1", "core-1", "data", 0),
    ]
    return Site.model_validate(
        {
            "site": {"name": "small city"},
            "subsystems": [
                {"id": s, "name": s.title()} for s in ("power", "water", "tunnels", "compute")
            ],
            "assets": assets,
            "dependencies": [
                {"provider": p, "dependant": d, "kind": k, "lag": lag} for p, d, k, lag in wiring
            ],
        }
    )
