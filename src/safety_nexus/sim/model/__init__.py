"""The physics of the demo city, one module per asset family.

`MODELS` is the order in which the asset types advance within a tick: providers before their
dependants wherever the site's dependencies allow a lag of zero (see `base.Plant`).
"""

from __future__ import annotations

from safety_nexus.sim.model.base import Modifiers, Noise, Plant, TypeModel
from safety_nexus.sim.model.compute import Chiller, ComputeNode, Switch
from safety_nexus.sim.model.generic import Generic
from safety_nexus.sim.model.power import Feeder, Generator, Pdu, Substation, Ups
from safety_nexus.sim.model.tunnels import Fan, TunnelSection
from safety_nexus.sim.model.water import Main, Pump, SprinklerZone, Tank

MODELS: list[type[TypeModel]] = [
    Substation,
    Feeder,
    Generator,
    Ups,
    Pdu,
    Switch,
    Tank,
    Pump,
    Main,
    SprinklerZone,
    Chiller,
    ComputeNode,
    Fan,
    TunnelSection,
]

__all__ = ["MODELS", "Generic", "Modifiers", "Noise", "Plant", "TypeModel"]
