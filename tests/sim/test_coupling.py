"""Trouble travels along the site's dependencies, after their lags.

Each test runs two simulators with the same seed, one with a fault: every difference between
their reports is the fault's doing, and before a dependency's lag there is none at all.
"""

from __future__ import annotations

import numpy as np
import pytest

from safety_nexus.core.types import Frame
from safety_nexus.sim import Simulator
from safety_nexus.sim.examples import small_city

ONSET = 60.0


def _pair(scenario: str, ticks: int, **params: float | str) -> tuple[Simulator, Frame, Frame]:
    site = small_city()
    faulty = Simulator(site, seed=8)
    faulty.inject(scenario, at=faulty.start + ONSET, params=params)
    clean = Simulator(site, seed=8)
    return faulty, faulty.step(ticks), clean.step(ticks)


def _first_change(sim: Simulator, a: Frame, b: Frame, signal: str) -> float:
    """Seconds after the onset at which `signal` first differs between the two runs."""
    j = sim.table.index[signal]
    differs = ~((a.values[:, j] == b.values[:, j]) | np.isnan(a.values[:, j]))
    return float(a.times[np.flatnonzero(differs)[0]] - (sim.start + ONSET))


def _mean(sim: Simulator, f: Frame, signal: str, since: float, until: float) -> float:
    rows = (f.times >= sim.start + ONSET + since) & (f.times < sim.start + ONSET + until)
    return float(np.nanmean(f.values[rows, sim.table.index[signal]]))


def test_a_feeder_trip_reaches_pump_main_and_sprinkler_after_their_lags() -> None:
    sim, a, b = _pair("S4", 300, asset="feeder-1", duration=600)
    # feeder → pump 1 s, pump → main 5 s, main → sprinkler 10 s
    assert _first_change(sim, a, b, "feeder-1.current") == pytest.approx(0.0)
    assert _first_change(sim, a, b, "pump-1.pressure") == pytest.approx(1.0)
    assert _first_change(sim, a, b, "main-1.pressure") == pytest.approx(6.0, abs=1.0)
    assert _first_change(sim, a, b, "sprinkler-1.pressure") == pytest.approx(16.0, abs=1.0)
    assert (
        _mean(sim, a, "pump-1.pressure", 20, 200)
        < 1.0
        < 4.0
        < _mean(sim, b, "pump-1.pressure", 20, 200)
    )
    assert _mean(sim, a, "main-1.pressure", 30, 200) < 1.0
    # the sprinkler zone loses pressure and its response time climbs out of its band
    assert _mean(sim, a, "sprinkler-1.pressure", 60, 200) < 1.0
    assert _mean(sim, a, "sprinkler-1.response_time", 60, 200) > 4.0
    assert 2.0 < _mean(sim, b, "sprinkler-1.response_time", 60, 200) < 4.0


def test_losing_the_fan_raises_co_and_drops_pressure_in_the_tunnel() -> None:
    sim, a, b = _pair("S4", 700, asset="fan-1", duration=1200)
    assert _first_change(sim, a, b, "tunnel-1.pressure_a") == pytest.approx(31.0, abs=1.0)
    assert _first_change(sim, a, b, "tunnel-1.co") >= 30.0
    assert _mean(sim, a, "tunnel-1.co", 400, 600) > _mean(sim, b, "tunnel-1.co", 400, 600) + 10
    assert _mean(sim, a, "tunnel-1.co", 400, 600) > 25.0  # out of its band
    assert _mean(sim, a, "tunnel-1.pressure_a", 100, 600) < 10.0
    assert _mean(sim, a, "tunnel-1.air_velocity", 100, 600) < 1.0


def test_losing_cooling_heats_the_core_then_slows_its_jobs() -> None:
    sim, a, b = _pair("S7", 900, asset="core-1", cause="chiller", duration=1200)
    assert _first_change(sim, a, b, "chiller-1.flow") == pytest.approx(0.0)
    # chiller → node is a 60 s cooling loop: the node notices nothing before
    assert _first_change(sim, a, b, "core-1.inlet_temp") >= 60.0
    cpu = a.values[:, sim.table.index["core-1.cpu_temp"]]
    latency = a.values[:, sim.table.index["core-1.job_latency"]]
    hot = a.times[np.flatnonzero(cpu > 75.0)[0]]
    slow = a.times[np.flatnonzero(latency > 200.0)[0]]
    assert sim.start + ONSET + 60 < hot < slow
    assert _mean(sim, a, "core-1.cpu_temp", 600, 840) > 80.0
    assert _mean(sim, b, "core-1.cpu_temp", 600, 840) < 70.0


def test_a_dead_compute_node_stops_reporting() -> None:
    sim, a, _ = _pair("S4", 120, asset="pdu-1", duration=600)
    j = sim.table.index["core-1.cpu_temp"]
    after = a.times >= sim.start + ONSET
    assert np.isnan(a.values[after, j]).all()
    assert not np.isnan(a.values[~after, j]).any()
