"""Water and fire suppression: tanks, pumps, mains and sprinkler zones.

Pumps draw from tanks and pressurise mains; mains supply the sprinkler zones (and make-up water
to the chillers). A pump needs power from its feeder and water above its suction; a main's
pressure is the mean head of the pumps feeding it, so losing one of three costs a third of it;
the surviving pumps are asked for more flow ("share"), which lowers their head along the pump
curve. A sprinkler zone's response time grows as its pressure falls.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from safety_nexus.sim.model.base import F64, Modifiers, Noise, Plant, TypeModel, clamp, cyc
from safety_nexus.site.schema import DependencyKind

POWER = DependencyKind.POWER
WATER = DependencyKind.WATER

PUMP_HEAD = 5.0  # bar, nominal discharge pressure of a pump (the doc band's centre)
MAIN_PRESSURE = 4.5  # bar, nominal pressure of a main
MAX_SHARE = 1.35  # how far a pump can run past its nominal flow to cover for lost ones


class Tank(TypeModel):
    """A reservoir whose inflow is controlled to follow a daily level setpoint."""

    TYPE = "tank"
    NAMES = ("level", "inflow", "outflow")
    BANDS: ClassVar[dict[str, tuple[float, float]]] = {
        "level": (3.0, 8.0),
        "inflow": (0.0, 200.0),
        "outflow": (0.0, 200.0),
    }
    NOISE: ClassVar[dict[str, Noise]] = {
        "level": Noise(0.01, 0.005, 120.0, 0.005, floor=0.0),
        "inflow": Noise(1.5, 0.5, 60.0, 0.1, floor=0.0),
        "outflow": Noise(1.5, 0.5, 60.0, 0.1, floor=0.0),
    }
    AREA = 300.0  # m²
    CONTROL = 3600.0  # s: the level controller's time constant

    def __init__(self, plant: Plant, assets: list[int]) -> None:
        super().__init__(plant, assets)
        self.pumps = self.links(WATER, reverse=True, types=("pump",))
        self.level = self.c["level"].copy()
        self.out_f = np.zeros(self.n)
        self.a_out = self.alpha(60.0)

    def step(self, t: float, hour: float, z: F64, mods: Modifiers, first: bool) -> None:
        outflow = self.pumps.sum(self.plant, "flow", 0.0)
        setpoint = self.c["level"] + 0.12 * self.w["level"] * cyc(hour, 5.0)
        if first:
            self.level = setpoint.copy()
            self.out_f = outflow.copy()
        self.out_f = self.out_f + (outflow - self.out_f) * self.a_out
        correction = (setpoint - self.level) * self.AREA * 1000.0 / self.CONTROL
        inflow = clamp(self.out_f + correction, 0.0, 300.0)
        self.level = np.maximum(
            self.level + (inflow - outflow) * self.dt / (self.AREA * 1000.0), 0.0
        )
        self.put("level", self.level)
        self.put("inflow", inflow)
        self.put("outflow", outflow)
        self.publish("head", self.level)
        self.emit()


class Pump(TypeModel):
    """A centrifugal pump: speed needs power, flow follows the city's water demand, head falls
    along the pump curve as flow rises and with wear (`health`). Its drive holds a discharge
    pressure setpoint (nominal: the pressure band's centre) by its speed, which scales with the
    square root of the setpoint's ratio to nominal (head goes with speed squared); the drive
    reports the setpoint in effect as `pressure_setpoint`."""

    TYPE = "pump"
    NAMES = ("pressure", "flow", "current", "vibration", "speed", "pressure_setpoint")
    BANDS: ClassVar[dict[str, tuple[float, float]]] = {
        "pressure": (4.0, 6.0),
        "flow": (20.0, 60.0),
        "current": (30.0, 60.0),
        "vibration": (0.5, 3.0),
        "speed": (1400.0, 1500.0),
        "pressure_setpoint": (4.5, 5.5),
    }
    NOISE: ClassVar[dict[str, Noise]] = {
        "pressure": Noise(0.03, 0.02, 30.0, 0.01, floor=0.0),
        "flow": Noise(0.8, 0.4, 30.0, 0.1, floor=0.0),
        "current": Noise(0.5, 0.3, 30.0, 0.1, floor=0.0),
        "vibration": Noise(0.1, 0.1, 120.0, 0.01, floor=0.0),
        "speed": Noise(3.0, 2.0, 30.0, 1.0, floor=0.0),
        "pressure_setpoint": Noise(0.0, digital=True),
    }

    def __init__(self, plant: Plant, assets: list[int]) -> None:
        super().__init__(plant, assets)
        self.draws += 1  # the city's water demand: one number for everyone
        self.supply = self.links(POWER)
        self.tank = self.links(WATER, types=("tank",))
        self.mains = self.links(WATER, reverse=True, types=("main",))
        self.demand_wander = 0.0
        self.speed = self.c["speed"].copy()
        self.a_speed = self.alpha(3.0)
        self.setpoint = self.control_point("pressure_setpoint", self.c["pressure"])

    def step(self, t: float, hour: float, z: F64, mods: Modifiers, first: bool) -> None:
        p = self.plant
        a = self.assets
        powered = ((self.supply.max(p, "power", 1.0) > 0.5) & ~mods.trip[a]).astype(np.float64)
        setpoint = self.setpoint.value(mods)
        health = mods.health[a]
        level = self.tank.mean(p, "head", 5.5)
        suction = clamp(level, 0.0, 1.0)  # loses suction below a metre of water
        share = clamp(self.mains.max(p, "share", 1.0), 1.0, MAX_SHARE)
        self.demand_wander = float(self.ar(np.asarray(self.demand_wander), z[:1], 1800.0, 0.025)[0])
        demand = 1.0 + 0.12 * cyc(hour, 19.0) + 0.04 * cyc(hour, 8.0, 12.0) + self.demand_wander
        target = self.c["speed"] * powered * np.sqrt(setpoint / self.c["pressure"])
        self.speed = target if first else self.speed + (target - self.speed) * self.a_speed
        rel = self.speed / self.c["speed"]
        moving = clamp((rel - 0.3) / 0.7, 0.0, 1.0)  # below ~30 % speed it cannot lift
        q = demand * share * moving * suction * health
        flow = 0.9 * self.c["flow"] * q
        static = 0.098 * level  # what the gauge shows through a stopped pump
        head = PUMP_HEAD * health * suction * (1.1 * rel * rel - 0.1 * q * q)
        pressure = np.maximum(head, static) * self.c["pressure"] / PUMP_HEAD
        current = self.c["current"] * (0.3 * rel + 0.7 * q * rel * rel) * powered
        vib = self.c["vibration"] * (0.35 + 0.65 * rel) + 25.0 * (1.0 - health)
        self.put("pressure", pressure)
        self.put("flow", flow)
        self.put("current", current)
        self.put("vibration", vib)
        self.put("speed", self.speed)
        self.put("pressure_setpoint", setpoint)
        self.publish("head", pressure * PUMP_HEAD / self.c["pressure"])
        self.publish("flow", flow)
        self.publish("draw", current / self.c["current"])
        self.emit()


class Main(TypeModel):
    """A distribution main: pressure is the mean head of its pumps, flow their sum."""

    TYPE = "main"
    NAMES = ("pressure", "flow")
    BANDS: ClassVar[dict[str, tuple[float, float]]] = {
        "pressure": (3.5, 5.5),
        "flow": (50.0, 200.0),
    }
    NOISE: ClassVar[dict[str, Noise]] = {
        "pressure": Noise(0.03, 0.02, 30.0, 0.01, floor=0.0),
        "flow": Noise(1.5, 1.0, 30.0, 0.1, floor=0.0),
    }

    def __init__(self, plant: Plant, assets: list[int]) -> None:
        super().__init__(plant, assets)
        self.pumps = self.links(WATER, types=("pump",))
        self.pressure = self.c["pressure"].copy()
        self.a_p = self.alpha(3.0)

    def step(self, t: float, hour: float, z: F64, mods: Modifiers, first: bool) -> None:
        p = self.plant
        head = self.pumps.mean(p, "head", PUMP_HEAD)
        running = self.pumps.sum(p, "head", 0.0) / PUMP_HEAD  # ~ pumps at full head
        flow = self.pumps.sum(p, "flow", 0.9 * self.c["flow"][0])
        target = self.c["pressure"] * head / PUMP_HEAD * (~mods.trip[self.assets])
        self.pressure = target if first else self.pressure + (target - self.pressure) * self.a_p
        count = np.maximum(self.pumps.count, 1.0)
        self.put("pressure", self.pressure)
        self.put("flow", flow)
        self.publish("head", self.pressure * MAIN_PRESSURE / self.c["pressure"])
        self.publish("flow", flow)
        self.publish("share", count / np.maximum(running, 0.5))
        self.emit()


class SprinklerZone(TypeModel):
    """A zone on a main: a little below the main's pressure (elevation); the time from a head
    opening to full water flow grows as the pressure falls."""

    TYPE = "sprinkler-zone"
    NAMES = ("pressure", "response_time", "valve")
    BANDS: ClassVar[dict[str, tuple[float, float]]] = {
        "pressure": (3.0, 5.0),
        "response_time": (2.0, 4.0),
        "valve": (0.0, 5.0),
    }
    NOISE: ClassVar[dict[str, Noise]] = {
        # The response time is timed electronically (valve signal to flow switch): precise.
        "pressure": Noise(0.03, 0.015, 30.0, 0.01, floor=0.0),
        "response_time": Noise(0.002, 0.001, 600.0, 0.001, floor=0.0),
        "valve": Noise(0.25, 0.1, 300.0, 0.1, floor=0.0),
    }

    def __init__(self, plant: Plant, assets: list[int]) -> None:
        super().__init__(plant, assets)
        self.mains = self.links(WATER, types=("main",))
        self.pressure = self.c["pressure"].copy()
        self.a_p = self.alpha(5.0)

    def step(self, t: float, hour: float, z: F64, mods: Modifiers, first: bool) -> None:
        main = self.mains.mean(self.plant, "head", MAIN_PRESSURE)
        target = np.maximum(main - (MAIN_PRESSURE - self.c["pressure"]), 0.0)
        self.pressure = target if first else self.pressure + (target - self.pressure) * self.a_p
        rt = self.c["response_time"] * np.sqrt(self.c["pressure"] / np.maximum(self.pressure, 0.3))
        self.put("pressure", self.pressure)
        self.put("response_time", rt)
        self.put("valve", self.lo["valve"] + 0.3 * self.w["valve"])
        self.emit()
