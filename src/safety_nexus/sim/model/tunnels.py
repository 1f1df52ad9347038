"""Tunnel ventilation and atmosphere: fans and tunnel sections.

A fan needs power; its airflow is shared among the sections it ventilates (a standby fan that
serves four sections gives each a quarter). A section's pollutants come from traffic, which has
rush hours, and are cleared by airflow: concentration settles at emission / airflow, and settles
more slowly when the air barely moves. The longitudinal pressure the two redundant sensors
measure is set by the fans (≈ airflow²) plus the piston effect of traffic.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from safety_nexus.sim.model.base import F64, Modifiers, Noise, Plant, TypeModel, bump, cyc
from safety_nexus.site.schema import DependencyKind

POWER = DependencyKind.POWER
AIR = DependencyKind.AIR

FAN_AIRFLOW = 100.0  # m³/s, a fan's nominal airflow when the site does not say


class Fan(TypeModel):
    TYPE = "fan"
    NAMES = ("speed", "current", "vibration", "airflow")
    BANDS: ClassVar[dict[str, tuple[float, float]]] = {
        "speed": (900.0, 1100.0),
        "current": (40.0, 80.0),
        "vibration": (0.5, 3.0),
        "airflow": (80.0, 120.0),
    }
    NOISE: ClassVar[dict[str, Noise]] = {
        "speed": Noise(5.0, 3.0, 30.0, 1.0, floor=0.0),
        "current": Noise(0.8, 0.5, 30.0, 0.1, floor=0.0),
        "vibration": Noise(0.1, 0.1, 120.0, 0.01, floor=0.0),
        "airflow": Noise(1.5, 1.0, 30.0, 0.1, floor=0.0),
    }

    def __init__(self, plant: Plant, assets: list[int]) -> None:
        super().__init__(plant, assets)
        self.supply = self.links(POWER)
        self.speed = self.c["speed"].copy()
        self.a_speed = self.alpha(8.0)  # a big rotor spins down over seconds

    def step(self, t: float, hour: float, z: F64, mods: Modifiers, first: bool) -> None:
        a = self.assets
        powered = ((self.supply.max(self.plant, "power", 1.0) > 0.5) & ~mods.trip[a]).astype(
            np.float64
        )
        health = mods.health[a]
        target = self.c["speed"] * powered
        self.speed = target if first else self.speed + (target - self.speed) * self.a_speed
        rel = self.speed / self.c["speed"]
        airflow = self.c["airflow"] * rel * health
        self.put("speed", self.speed)
        self.put("current", self.c["current"] * (0.3 * rel + 0.7 * rel**3) * powered)
        self.put("vibration", self.c["vibration"] * (0.35 + 0.65 * rel) + 25.0 * (1.0 - health))
        self.put("airflow", airflow)
        self.publish("air", airflow)
        self.publish("draw", rel * powered)
        self.emit()


class TunnelSection(TypeModel):
    TYPE = "tunnel-section"
    NAMES = ("pressure_a", "pressure_b", "co", "no2", "opacity", "temperature", "air_velocity")
    BANDS: ClassVar[dict[str, tuple[float, float]]] = {
        "pressure_a": (20.0, 60.0),
        "pressure_b": (20.0, 60.0),
        "co": (2.0, 25.0),
        "no2": (0.02, 0.3),
        "opacity": (0.5, 3.0),
        "temperature": (10.0, 30.0),
        "air_velocity": (1.0, 4.0),
    }
    NOISE: ClassVar[dict[str, Noise]] = {
        "pressure_a": Noise(1.0, 0.6, 20.0, 0.1),
        "pressure_b": Noise(1.0, 0.6, 20.0, 0.1),
        "co": Noise(0.4, 0.3, 120.0, 0.1, floor=0.0),
        "no2": Noise(0.006, 0.004, 120.0, 0.001, floor=0.0),
        "opacity": Noise(0.05, 0.04, 120.0, 0.01, floor=0.0),
        "temperature": Noise(0.15, 0.1, 300.0, 0.1),
        "air_velocity": Noise(0.08, 0.05, 30.0, 0.01, floor=0.0),
    }
    DRAWS = 2

    def __init__(self, plant: Plant, assets: list[int]) -> None:
        super().__init__(plant, assets)
        self.fans = self.links(AIR, types=("fan",), weight_by_fanout=True)
        # The airflow each section gets when every fan runs: what "normal" ventilation means.
        nominal = np.zeros(self.n)
        for src, dst, w in zip(self.fans.src, self.fans.dst, self.fans.weight, strict=True):
            col = plant.columns_of[int(src)].get("airflow")
            flow = (
                FAN_AIRFLOW
                if col is None
                else 0.5 * (plant.table.normal_lo[col] + plant.table.normal_hi[col])
            )
            nominal[dst] += w * flow
        self.nominal = np.where(nominal > 0, nominal, 1.0)
        self.traffic_wander = np.zeros(self.n)
        self.gust = np.zeros(self.n)
        self.gas = np.ones(self.n)  # pollutant level relative to the traffic/airflow balance
        self.temp = self.c["temperature"].copy()
        self.a_temp = self.alpha(600.0)

    def step(self, t: float, hour: float, z: F64, mods: Modifiers, first: bool) -> None:
        air = np.where(self.fans.has, self.fans.sum(self.plant, "air") / self.nominal, 1.0)
        # Traffic: a night floor, two rush hours, a daytime swell; its wander is relative, so a
        # quiet night never turns into negative traffic.
        n = self.n
        self.traffic_wander = self.ar(self.traffic_wander, z[:n], 900.0, 0.08)
        # Wind at the portals and passing lorries: fast pressure swings both sensors see, which is
        # what lets their agreement be checked at all.
        self.gust = self.ar(self.gust, z[n:], 15.0, 2.5)
        traffic = (
            0.3
            + 0.45 * bump(hour, 8.0, 1.5)
            + 0.5 * bump(hour, 17.5, 2.0)
            + 0.3 * (0.5 + 0.5 * cyc(hour, 13.0))
        ) * np.exp(self.traffic_wander)
        ventilation = np.maximum(air, 0.05)
        target = traffic / ventilation
        # Clearing takes a couple of minutes with the fans running, far longer without.
        rate = 1.0 - np.exp(-self.dt * np.maximum(air, 0.1) / 120.0)
        self.gas = target if first else self.gas + (target - self.gas) * rate
        warm = self.c["temperature"] + 4.0 * cyc(hour, 15.0) + 2.0 * (traffic - 0.5)
        warm = warm + 3.0 * (1.0 - np.minimum(air, 1.0))
        self.temp = warm if first else self.temp + (warm - self.temp) * self.a_temp
        pressure = self.c["pressure_a"] * air * air + 6.0 * (traffic - 0.55) + self.gust
        self.put("pressure_a", pressure)
        self.put("pressure_b", pressure + (self.c["pressure_b"] - self.c["pressure_a"]))
        self.put("co", self.lo["co"] - 0.5 + 16.0 * self.gas)
        self.put("no2", self.lo["no2"] + 0.01 + 0.16 * self.gas)
        self.put("opacity", self.lo["opacity"] - 0.1 + 1.6 * self.gas)
        self.put("temperature", self.temp)
        self.put("air_velocity", self.c["air_velocity"] * air)
        self.emit()
