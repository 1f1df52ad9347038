"""Power grid: substations, feeders, standby generators, UPS units and PDUs.

Power flows down the site's `power` dependencies as availability (0 or 1) through the "power"
port; where an asset has several power providers (a PDU fed by a feeder and a UPS) any one live
feed keeps it up. Load flows back up: a feeder's current follows the draw of what it powers, a
substation's load the number of its feeders still live, so a trip shows both downstream (loss of
supply) and upstream (loss of load).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from safety_nexus.sim.model.base import F64, Modifiers, Noise, Plant, TypeModel, cyc
from safety_nexus.site.schema import DependencyKind

POWER = DependencyKind.POWER


class Substation(TypeModel):
    """Load follows the city's daily demand; two forecasting models track it with their own error.

    The forecasts predict demand, not supply: when the substation trips, the forecasts carry on
    and the load does not, which is exactly what a forecast-consistency detector should notice.
    """

    TYPE = "substation"
    NAMES = (
        "voltage",
        "frequency",
        "load",
        "load_forecast_a",
        "load_forecast_b",
        "transformer_temp",
    )
    BANDS: ClassVar[dict[str, tuple[float, float]]] = {
        "voltage": (10.8, 11.2),
        "frequency": (49.9, 50.1),
        "load": (20.0, 60.0),
        "load_forecast_a": (20.0, 60.0),
        "load_forecast_b": (20.0, 60.0),
        "transformer_temp": (40.0, 75.0),
    }
    NOISE: ClassVar[dict[str, Noise]] = {
        "voltage": Noise(0.012, 0.008, 60.0, 0.001),
        "frequency": Noise(0.003, 0.0, 1.0, 0.001),
        "load": Noise(0.25, 0.0, 1.0, 0.01),
        "load_forecast_a": Noise(0.0, 0.0, 1.0, 0.01),
        "load_forecast_b": Noise(0.0, 0.0, 1.0, 0.01),
        "transformer_temp": Noise(0.1, 0.05, 300.0, 0.1, floor=0.0),
    }
    DRAWS = 3

    def __init__(self, plant: Plant, assets: list[int]) -> None:
        super().__init__(plant, assets)
        self.draws += 1  # the grid frequency is one number for the whole grid
        self.feeders = self.links(POWER, reverse=True)
        self.wander = np.zeros(self.n)
        self.err_a = np.zeros(self.n)
        self.err_b = np.zeros(self.n)
        self.freq = 0.0
        self.temp = np.zeros(self.n)
        self.a_temp = self.alpha(1800.0)

    def step(self, t: float, hour: float, z: F64, mods: Modifiers, first: bool) -> None:
        n = self.n
        powered = (~mods.trip[self.assets]).astype(np.float64)
        live = self.feeders.mean(self.plant, "power", 1.0)
        self.wander = self.ar(self.wander, z[:n], 1200.0, 0.04)
        self.err_a = self.ar(self.err_a, z[n : 2 * n], 1800.0, 0.02)
        self.err_b = self.ar(self.err_b, z[2 * n : 3 * n], 1800.0, 0.025)
        self.freq = float(self.ar(np.asarray(self.freq), z[3 * n : 3 * n + 1], 30.0, 0.012)[0])
        demand = 1.0 + 0.2 * cyc(hour, 18.0) + 0.05 * cyc(hour, 9.0, 12.0) + self.wander
        c_load = self.c["load"]
        load = c_load * demand * (0.4 + 0.6 * live) * powered
        target = self.lo["transformer_temp"] + self.w["transformer_temp"] * (
            0.15 + 0.5 * load / c_load
        )
        self.temp = target if first else self.temp + (target - self.temp) * self.a_temp
        volt = (self.c["voltage"] - 0.1 * self.w["voltage"] * (demand - 1.0)) * powered
        self.put("voltage", volt)
        self.put("frequency", (self.c["frequency"] + self.freq) * powered)
        self.put("load", load)
        self.put("load_forecast_a", self.c["load_forecast_a"] * (demand + self.err_a))
        self.put("load_forecast_b", self.c["load_forecast_b"] * (demand + self.err_b))
        self.put("transformer_temp", self.temp)
        self.publish("power", powered)
        self.publish("volt", volt / self.c["voltage"])
        self.publish("demand", demand)
        self.emit()


class Feeder(TypeModel):
    """Current follows the substation's demand and the draw of the pumps and fans it powers."""

    TYPE = "feeder"
    NAMES = ("voltage", "current", "power_factor", "temperature")
    BANDS: ClassVar[dict[str, tuple[float, float]]] = {
        "voltage": (10.7, 11.2),
        "current": (100.0, 400.0),
        "power_factor": (0.9, 1.0),
        "temperature": (20.0, 60.0),
    }
    NOISE: ClassVar[dict[str, Noise]] = {
        "voltage": Noise(0.01, 0.006, 60.0, 0.001),
        "current": Noise(2.0, 1.5, 30.0, 0.1, floor=0.0),
        "power_factor": Noise(0.002, 0.0, 1.0, 0.001, floor=0.0),
        "temperature": Noise(0.1, 0.05, 300.0, 0.1),
    }
    DRAWS = 1

    def __init__(self, plant: Plant, assets: list[int]) -> None:
        super().__init__(plant, assets)
        self.supply = self.links(POWER)
        self.loads = self.links(POWER, reverse=True)
        # Feeders differ in how much of the substation's demand they carry; fixed per feeder.
        self.share = 0.92 + 0.16 * ((np.arange(self.n) * 0.618034) % 1.0)
        self.pf = np.zeros(self.n)
        self.temp = np.zeros(self.n)
        self.a_temp = self.alpha(600.0)

    def step(self, t: float, hour: float, z: F64, mods: Modifiers, first: bool) -> None:
        p = self.plant
        up = self.supply.max(p, "power", 1.0)
        vrel = self.supply.max(p, "volt", 1.0)
        demand = self.supply.max(p, "demand", 1.0)
        powered = up * (~mods.trip[self.assets])
        draw = self.loads.mean(p, "draw", 1.0)
        c_i = self.c["current"]
        current = c_i * demand * self.share * (0.6 + 0.4 * draw) * powered
        self.pf = self.ar(self.pf, z, 600.0, 0.006)
        rel = current / c_i
        target = self.lo["temperature"] + self.w["temperature"] * (0.15 + 0.2 * rel * rel)
        self.temp = target if first else self.temp + (target - self.temp) * self.a_temp
        volt = (self.c["voltage"] * vrel - 0.02 * self.w["voltage"] * (rel - 1.0)) * powered
        self.put("voltage", volt)
        self.put("current", current)
        self.put("power_factor", (self.c["power_factor"] + self.pf) * powered)
        self.put("temperature", self.temp)
        self.publish("power", powered)
        self.publish("volt", vrel * powered)
        self.publish("demand", demand)
        self.emit()


class Generator(TypeModel):
    """A standby diesel: starts when a UPS it backs loses its grid feed, stops a minute after.
    It starts on its own only while its control mode is the first of its directive's states
    (auto; index 0, also when the site declares no directive); the controller reports the mode
    in effect as `mode`."""

    TYPE = "generator"
    NAMES = ("fuel", "battery", "coolant_temp", "mode")
    BANDS: ClassVar[dict[str, tuple[float, float]]] = {
        "fuel": (60.0, 100.0),
        "battery": (12.4, 13.2),
        "coolant_temp": (20.0, 45.0),
        "mode": (0.0, 0.5),
    }
    NOISE: ClassVar[dict[str, Noise]] = {
        "fuel": Noise(0.2, 0.0, 1.0, 0.1, floor=0.0),
        "battery": Noise(0.02, 0.01, 300.0, 0.01),
        "coolant_temp": Noise(0.2, 0.1, 300.0, 0.1),
        "mode": Noise(0.0, digital=True),
    }
    START_DELAY = 10.0  # seconds of cranking before the set carries load
    COOLDOWN = 60.0  # seconds it keeps running after the grid returns

    def __init__(self, plant: Plant, assets: list[int]) -> None:
        super().__init__(plant, assets)
        self.backed = self.links(POWER, reverse=True)
        self.running = np.zeros(self.n, dtype=np.bool_)
        self.t_on = np.zeros(self.n)
        self.t_off = np.zeros(self.n)
        self.fuel = self.c["fuel"].copy()
        self.coolant = self.c["coolant_temp"].copy()
        self.a_cool = self.alpha(240.0)
        self.mode = self.control_point("mode", np.zeros(self.n))

    def step(self, t: float, hour: float, z: F64, mods: Modifiers, first: bool) -> None:
        tripped = mods.trip[self.assets]
        mode = self.mode.value(mods)
        auto = np.rint(mode) == 0.0
        calling = (self.backed.max(self.plant, "call", 0.0) > 0.5) & ~tripped & auto
        self.t_on = np.where(calling, self.t_on + self.dt, 0.0)
        self.t_off = np.where(calling, 0.0, self.t_off + self.dt)
        self.running = (
            (self.running | (self.t_on >= self.START_DELAY))
            & (self.t_off < self.COOLDOWN)
            & ~tripped
        )
        cranking = calling & ~self.running
        run = self.running.astype(np.float64)
        self.fuel = np.maximum(self.fuel - run * 0.01 * self.dt, 0.0)
        hot = self.c["coolant_temp"] + run * (85.0 - self.c["coolant_temp"])
        self.coolant = self.coolant + (hot - self.coolant) * self.a_cool
        self.put("fuel", self.fuel)
        self.put("battery", self.c["battery"] + 0.9 * run - 1.0 * cranking)
        self.put("coolant_temp", self.coolant)
        self.put("mode", mode)
        self.publish("power", run)
        self.emit()


class Ups(TypeModel):
    """Carries its PDU from the grid; on battery when the grid feed drops, until a generator
    takes over or the charge runs out."""

    TYPE = "ups"
    NAMES = ("charge", "output_voltage", "load")
    BANDS: ClassVar[dict[str, tuple[float, float]]] = {
        "charge": (90.0, 100.0),
        "output_voltage": (225.0, 235.0),
        "load": (10.0, 80.0),
    }
    NOISE: ClassVar[dict[str, Noise]] = {
        "charge": Noise(0.1, 0.05, 600.0, 0.1, floor=0.0),
        "output_voltage": Noise(0.6, 0.3, 60.0, 0.1, floor=0.0),
        "load": Noise(1.0, 1.0, 120.0, 0.1, floor=0.0),
    }
    AUTONOMY = 900.0  # seconds on battery from full at nominal load

    def __init__(self, plant: Plant, assets: list[int]) -> None:
        super().__init__(plant, assets)
        self.grid = self.links(POWER, exclude=("generator",))
        self.gens = self.links(POWER, types=("generator",))
        self.loads = self.links(POWER, reverse=True)
        self.full = self.lo["charge"] + 0.8 * self.w["charge"]  # float charge
        self.charge = self.full.copy()

    def step(self, t: float, hour: float, z: F64, mods: Modifiers, first: bool) -> None:
        p = self.plant
        grid = self.grid.max(p, "power", 1.0) > 0.5
        gen = self.gens.max(p, "power", 0.0) > 0.5
        fed = grid | gen
        draw = self.loads.mean(p, "draw", 1.0)
        drain = 100.0 / self.AUTONOMY * draw * self.dt
        self.charge = np.where(
            fed,
            np.minimum(self.charge + 0.05 * self.dt, self.full),
            np.maximum(self.charge - drain, 0.0),
        )
        up = ((fed | (self.charge > 2.0)) & ~mods.trip[self.assets]).astype(np.float64)
        self.put("charge", self.charge)
        self.put("output_voltage", self.c["output_voltage"] * up)
        self.put("load", self.c["load"] * draw * up)
        self.publish("power", up)
        self.publish("call", (~grid).astype(np.float64))
        self.emit()


class Pdu(TypeModel):
    """Distributes power to the compute core; live while any of its feeds is."""

    TYPE = "pdu"
    NAMES = ("voltage", "current")
    BANDS: ClassVar[dict[str, tuple[float, float]]] = {
        "voltage": (225.0, 235.0),
        "current": (100.0, 300.0),
    }
    NOISE: ClassVar[dict[str, Noise]] = {
        "voltage": Noise(0.6, 0.3, 60.0, 0.1, floor=0.0),
        "current": Noise(2.0, 2.0, 60.0, 0.1, floor=0.0),
    }

    def __init__(self, plant: Plant, assets: list[int]) -> None:
        super().__init__(plant, assets)
        self.supply = self.links(POWER)
        self.nodes = self.links(POWER, reverse=True, types=("compute-node",))

    def step(self, t: float, hour: float, z: F64, mods: Modifiers, first: bool) -> None:
        p = self.plant
        up = (self.supply.max(p, "power", 1.0) > 0.5) & ~mods.trip[self.assets]
        powered = up.astype(np.float64)
        draw = self.nodes.mean(p, "draw", 1.0)
        current = self.c["current"] * (0.3 + 0.7 * draw) * powered
        self.put("voltage", self.c["voltage"] * powered)
        self.put("current", current)
        self.publish("power", powered)
        self.publish("draw", current / self.c["current"])
        self.emit()
