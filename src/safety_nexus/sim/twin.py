"""The plant together with the faults acting on it: one object that advances a tick at a time.

Sensors are not part of it. That split is what lets the labeller (`truth.py`) copy the twin and
replay the physics with and without a scenario's faults, at a fraction of a full step's cost.
"""

from __future__ import annotations

from safety_nexus.sim.events import END, START, Timeline
from safety_nexus.sim.faults import Fault
from safety_nexus.sim.model.base import Modifiers, Plant


class Twin:
    def __init__(self, plant: Plant, start: float, tick: float) -> None:
        self.plant = plant
        self.mods = Modifiers(plant.n_assets, len(plant.table))
        self.start = start
        self.tick = tick
        self.k = 0  # last tick advanced
        self.timeline: Timeline[tuple[bool, Fault]] = Timeline()
        self.active: list[Fault] = []

    def time(self, k: int) -> float:
        return self.start + k * self.tick

    def add(self, fault: Fault) -> None:
        if fault.end is not None and fault.end <= fault.start:
            return  # acts on no tick at all
        self.timeline.schedule(fault.start, (True, fault), priority=START)
        if fault.end is not None:
            self.timeline.schedule(fault.end, (False, fault), priority=END)

    def advance(self, k: int) -> None:
        """Advance the plant to tick `k` (the next one)."""
        for starting, fault in self.timeline.pop_due(k):
            if starting:
                self.active.append(fault)
            else:
                self.active.remove(fault)
        m = self.mods
        if self.active:
            if m.dirty:
                m.reset()
            for fault in self.active:
                fault.apply(m, k, self.tick)
            m.dirty = True
        elif m.dirty:
            m.reset()
        self.plant.step(self.time(k), m)
        self.k = k
