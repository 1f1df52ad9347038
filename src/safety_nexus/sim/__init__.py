"""The digital twin of the demo city: coupled physics, sensors, faults and scenarios.

    plant (model/) → twin (+ faults) → sensors → Frame          one tick at a time
    scenarios → faults (+ ground-truth labels, truth.py)        on `Simulator.inject`
    paced()                                                     against the wall clock

`Simulator` is the one entry point; `SCENARIOS` lists the named scenarios by id and by name.
"""

from __future__ import annotations

from safety_nexus.sim.faults import Effect, ForeignMessage
from safety_nexus.sim.pacing import paced
from safety_nexus.sim.scenarios import SCENARIOS, ScenarioDef, ScenarioRun, lookup
from safety_nexus.sim.simulator import DEFAULT_START, Simulator
from safety_nexus.sim.truth import Kind, Label

__all__ = [
    "DEFAULT_START",
    "SCENARIOS",
    "Effect",
    "ForeignMessage",
    "Kind",
    "Label",
    "ScenarioDef",
    "ScenarioRun",
    "Simulator",
    "lookup",
    "paced",
]
