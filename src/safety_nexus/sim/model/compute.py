"""Compute core: chillers, compute nodes and switches.

Chillers need power (from a PDU) and make-up water (from a main); their cooling reaches the
nodes after the cooling loop's lag. A node's inlet air warms when its chillers cannot keep up,
its CPU runs at inlet + a share of utilisation, divided by how well the node itself sheds heat
(`Modifiers.cooling`, < 1 for a failed heatsink fan). Above 80 °C the CPU throttles: jobs take
longer (latency rises) and keep the CPU busier (utilisation rises). A node that loses power stops
reporting altogether, as a real one does: its signals become NaN (stale).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from safety_nexus.sim.model.base import F64, Modifiers, Noise, Plant, TypeModel, clamp, cyc
from safety_nexus.site.schema import DependencyKind

POWER = DependencyKind.POWER
WATER = DependencyKind.WATER
DATA = DependencyKind.DATA

THROTTLE_AT = 80.0  # °C: the CPU slows itself down from here...
THROTTLE_FULL = 90.0  # ...to its slowest here


class Chiller(TypeModel):
    """Holds a chilled-water supply temperature setpoint (nominal: the supply band's centre),
    reported as `supply_setpoint`; the return runs the load's temperature rise above it."""

    TYPE = "chiller"
    NAMES = ("supply_temp", "return_temp", "flow", "power", "supply_setpoint")
    BANDS: ClassVar[dict[str, tuple[float, float]]] = {
        "supply_temp": (6.0, 9.0),
        "return_temp": (11.0, 16.0),
        "flow": (20.0, 40.0),
        "power": (50.0, 150.0),
        "supply_setpoint": (6.0, 9.0),
    }
    NOISE: ClassVar[dict[str, Noise]] = {
        "supply_temp": Noise(0.08, 0.05, 120.0, 0.01),
        "return_temp": Noise(0.08, 0.05, 120.0, 0.01),
        "flow": Noise(0.5, 0.3, 30.0, 0.1, floor=0.0),
        "power": Noise(1.5, 1.0, 60.0, 0.1, floor=0.0),
        "supply_setpoint": Noise(0.0, digital=True),
    }

    def __init__(self, plant: Plant, assets: list[int]) -> None:
        super().__init__(plant, assets)
        self.supply = self.links(POWER)
        self.makeup = self.links(WATER, types=("main",))
        self.nodes = self.links(WATER, reverse=True, types=("compute-node",))
        self.water = np.ones(self.n)
        self.capacity = np.ones(self.n)
        self.sup = self.c["supply_temp"].copy()
        self.ret = self.c["return_temp"].copy()
        self.a_water = self.alpha(600.0)  # a loop without make-up water leaks down slowly
        self.a_cap = self.alpha(30.0)
        self.a_sup = self.alpha(120.0)
        self.a_ret = self.alpha(60.0)
        self.setpoint = self.control_point("supply_setpoint", self.c["supply_temp"])

    def step(self, t: float, hour: float, z: F64, mods: Modifiers, first: bool) -> None:
        p = self.plant
        a = self.assets
        powered = ((self.supply.max(p, "power", 1.0) > 0.5) & ~mods.trip[a]).astype(np.float64)
        has_water = clamp(self.makeup.mean(p, "head", 4.5) - 1.0, 0.0, 1.0)
        heat = self.nodes.mean(p, "heat", 1.0)
        target_cap = powered * self.water * mods.health[a]
        sp = self.setpoint.value(mods)
        if first:
            self.water = has_water
            self.capacity = target_cap
        self.water = self.water + (has_water - self.water) * self.a_water
        self.capacity = self.capacity + (target_cap - self.capacity) * self.a_cap
        sup = sp + (1.0 - self.capacity) * 10.5 + 0.4 * (heat - 1.0)
        rise = self.c["return_temp"] - self.c["supply_temp"]  # set by the load, not the setpoint
        ret = sup + rise * heat * powered + 4.0 * (1.0 - powered)
        if first:
            self.sup, self.ret = sup, ret
        self.sup = self.sup + (sup - self.sup) * self.a_sup
        self.ret = self.ret + (ret - self.ret) * self.a_ret
        self.put("supply_temp", self.sup)
        self.put("return_temp", self.ret)
        self.put("flow", self.c["flow"] * powered)
        self.put("power", self.c["power"] * (0.3 + 0.7 * heat) * self.capacity)
        self.put("supply_setpoint", sp)
        self.publish("cool", self.capacity)
        self.emit()


class ComputeNode(TypeModel):
    TYPE = "compute-node"
    NAMES = ("cpu_temp", "inlet_temp", "job_latency", "utilisation", "power", "fan_speed")
    BANDS: ClassVar[dict[str, tuple[float, float]]] = {
        "cpu_temp": (45.0, 70.0),
        "inlet_temp": (18.0, 27.0),
        "job_latency": (80.0, 150.0),
        "utilisation": (30.0, 80.0),
        "power": (5.0, 15.0),
        "fan_speed": (3000.0, 6000.0),
    }
    NOISE: ClassVar[dict[str, Noise]] = {
        "cpu_temp": Noise(0.3, 0.3, 60.0, 0.1),
        "inlet_temp": Noise(0.1, 0.1, 120.0, 0.1),
        "job_latency": Noise(3.0, 2.0, 20.0, 0.1, floor=0.0),
        "utilisation": Noise(1.0, 0.0, 1.0, 0.1, floor=0.0),
        "power": Noise(0.1, 0.05, 60.0, 0.01, floor=0.0),
        "fan_speed": Noise(30.0, 20.0, 30.0, 10.0, floor=0.0),
    }
    DRAWS = 1

    def __init__(self, plant: Plant, assets: list[int]) -> None:
        super().__init__(plant, assets)
        self.supply = self.links(POWER)
        self.network = self.links(DATA)
        self.chillers = self.links(WATER, types=("chiller",))
        # A standby node's utilisation band is lower: its nominal load is its band's centre.
        self.u_nom = self.c["utilisation"]
        self.wander = np.zeros(self.n)
        self.inlet = self.c["inlet_temp"].copy()
        self.cpu = self.c["cpu_temp"].copy()
        self.a_inlet = self.alpha(90.0)
        self.a_cpu = self.alpha(20.0)

    def step(self, t: float, hour: float, z: F64, mods: Modifiers, first: bool) -> None:
        p = self.plant
        a = self.assets
        up = (self.supply.max(p, "power", 1.0) > 0.5) & ~mods.trip[a]
        powered = up.astype(np.float64)
        data = self.network.max(p, "data", 1.0)
        # Two chillers per node with headroom: one of them alone still covers 80 %.
        cooled = np.minimum(1.0, 1.6 * self.chillers.mean(p, "cool", 1.0))
        self.wander = self.ar(self.wander, z, 300.0, 0.06 * self.w["utilisation"])
        u = clamp(
            self.u_nom + 0.25 * self.w["utilisation"] * cyc(hour, 14.0) + self.wander,
            0.0,
            100.0,
        )
        throttle = clamp((self.cpu - THROTTLE_AT) / (THROTTLE_FULL - THROTTLE_AT), 0.0, 1.0)
        util = np.minimum(u * (1.0 + 0.8 * throttle), 100.0) * powered
        inlet = self.c["inlet_temp"] + 0.8 * cyc(hour, 15.0) + 30.0 * (1.0 - cooled)
        shed = np.maximum(mods.cooling[a], 0.3)
        cpu = inlet + (self.c["cpu_temp"] - 33.5 + 0.25 * util) / shed * powered
        if first:
            self.inlet, self.cpu = inlet, cpu
        self.inlet = self.inlet + (inlet - self.inlet) * self.a_inlet
        self.cpu = self.cpu + (cpu - self.cpu) * self.a_cpu
        lat = (self.c["job_latency"] - 20.0 + 0.35 * util) * (1.0 + 2.0 * throttle)
        lat = lat + 400.0 * (1.0 - data) + 6.0 * np.maximum(util - 90.0, 0.0)
        fan_per_degree = self.w["fan_speed"] / self.w["cpu_temp"]
        fan = clamp(
            self.lo["fan_speed"] + (self.cpu - self.lo["cpu_temp"]) * fan_per_degree,
            self.lo["fan_speed"],
            2.0 * self.hi["fan_speed"],
        )
        power = self.lo["power"] + 0.5 + 0.1 * util + 1.5 * throttle
        self.put("cpu_temp", self.cpu)
        self.put("inlet_temp", self.inlet)
        self.put("job_latency", lat)
        self.put("utilisation", util)
        self.put("power", power)
        self.put("fan_speed", fan)
        self.out[:, ~up] = np.nan  # a dead node says nothing
        self.publish("util", util / 100.0)
        self.publish("heat", (0.75 + 0.25 * util / self.u_nom) * powered)
        self.publish("draw", power / self.c["power"] * powered)
        self.emit()


class Switch(TypeModel):
    TYPE = "switch"
    NAMES = ("throughput", "packet_loss", "latency")
    BANDS: ClassVar[dict[str, tuple[float, float]]] = {
        "throughput": (5.0, 40.0),
        "packet_loss": (0.0, 0.01),
        "latency": (0.1, 0.5),
    }
    NOISE: ClassVar[dict[str, Noise]] = {
        "throughput": Noise(0.5, 0.5, 60.0, 0.01, floor=0.0),
        "packet_loss": Noise(0.0, 0.0, 1.0, 0.0001, floor=0.0),
        "latency": Noise(0.02, 0.01, 30.0, 0.001, floor=0.0),
    }
    DRAWS = 1

    def __init__(self, plant: Plant, assets: list[int]) -> None:
        super().__init__(plant, assets)
        self.supply = self.links(POWER)
        self.nodes = self.links(DATA, reverse=True, types=("compute-node",))

    def step(self, t: float, hour: float, z: F64, mods: Modifiers, first: bool) -> None:
        up = (self.supply.max(self.plant, "power", 1.0) > 0.5) & ~mods.trip[self.assets]
        u = self.nodes.mean(self.plant, "util", 0.5)
        self.put("throughput", self.lo["throughput"] + self.w["throughput"] * (0.15 + 0.6 * u))
        # Packet loss is rare events: a log-normal around a small fraction of the band.
        self.put("packet_loss", 0.3 * self.w["packet_loss"] * np.exp(0.25 * z))
        self.put("latency", self.lo["latency"] + self.w["latency"] * (0.3 + 0.4 * u))
        self.out[:, ~up] = np.nan
        self.publish("data", up.astype(np.float64))
        self.emit()
