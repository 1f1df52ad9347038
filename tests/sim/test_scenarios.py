"""Each scenario labels what it does, the labelled signals really move, the others do not.

A scenario run is compared with a clean run of the same seed: both draw the same noise, so any
difference is the scenario's doing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from safety_nexus.core.errors import SimError
from safety_nexus.core.types import Frame
from safety_nexus.sim import SCENARIOS, Label, ScenarioRun, Simulator
from safety_nexus.site.schema import Site

ONSET = 30.0


@dataclass
class Outcome:
    sim: Simulator
    run: ScenarioRun
    faulty: Frame
    clean: Frame

    def col(self, signal: str) -> int:
        return self.sim.table.index[signal]

    def window(self, label: Label) -> np.ndarray:
        end = label.end if label.end is not None else np.inf
        return (self.faulty.times >= label.start) & (self.faulty.times < end)

    def diff(self, signal: str) -> np.ndarray:
        j = self.col(signal)
        return self.faulty.values[:, j] - self.clean.values[:, j]

    def threshold(self) -> np.ndarray:
        t = self.sim.table
        return np.maximum(self.sim.noise_sd, 0.002 * (t.normal_hi - t.normal_lo))


def _outcome(site: Site, scenario: str, ticks: int, **params: float | str) -> Outcome:
    sim = Simulator(site, seed=17)
    run = sim.inject(scenario, at=sim.start + ONSET, params=params)
    clean = Simulator(site, seed=17)
    return Outcome(sim, run, sim.step(ticks), clean.step(ticks))


def _labelled_signals_move(o: Outcome) -> None:
    thr = o.threshold()
    for label in o.run.labels:
        if label.signal not in o.sim.table.index:
            continue  # a foreign device's signal, checked by its test
        j = o.col(label.signal)
        rows = o.window(label)
        a = o.faulty.values[rows, j]
        b = o.clean.values[rows, j]
        dark = np.isnan(a) & ~np.isnan(b)
        moved = np.nanmax(np.abs(a - b), initial=0.0) > thr[j] or dark.any()
        assert moved, label


def _others_stay_put(o: Outcome) -> None:
    labelled = {label.signal for label in o.run.labels}
    thr = o.threshold()
    moved = []
    for j, signal in enumerate(o.sim.table.ids):
        if signal in labelled:
            continue
        d = np.abs(o.faulty.values[:, j] - o.clean.values[:, j])
        if np.nanmax(d, initial=0.0) > 2 * thr[j]:
            moved.append(signal)
    assert len(moved) <= 0.02 * len(o.sim.table), moved


def _common(o: Outcome, scenario: str) -> None:
    d = SCENARIOS[scenario]
    assert o.run.id == d.id
    assert o.run.labels, "no labels"
    assert all(lb.scenario == d.id and lb.run == o.run.run for lb in o.run.labels)
    assert all(lb.kind == d.kind for lb in o.run.labels)
    assert all(lb.start >= o.sim.start + ONSET for lb in o.run.labels)
    assert set(o.run.labels) <= set(o.sim.labels)
    _labelled_signals_move(o)
    _others_stay_put(o)


def test_catalogue_has_the_required_scenarios_by_id_and_name() -> None:
    for sid, name in [
        ("S1", "creeping-latency"),
        ("S2", "ripple"),
        ("S4", "alarm-storm"),
        ("S5", "distorted-data"),
        ("S7", "core-breach"),
    ]:
        assert SCENARIOS[sid] is SCENARIOS[name]
        assert SCENARIOS[sid].description


def test_s1_steps_up_the_core_job_latency(demo_city: Site) -> None:
    o = _outcome(demo_city, "S1", 400, duration=300)
    _common(o, "S1")
    (label,) = o.run.labels
    assert (label.signal, label.effect, label.root_cause) == (
        "core-a1.job_latency",
        "level_shift",
        "core-a1",
    )
    step = o.diff("core-a1.job_latency")[o.window(label)]
    assert np.allclose(step, 150.0, atol=0.11)
    assert o.faulty.times[o.window(label)][-1] < o.sim.start + ONSET + 300


def test_s2_ripples_from_the_substation_along_the_graph(demo_city: Site) -> None:
    o = _outcome(demo_city, "S2", 900, stagger=120, duration=840)
    _common(o, "S2")
    by = {lb.signal: lb for lb in o.run.labels}
    assert {lb.root_cause for lb in o.run.labels} == {"sub-1"}
    assert by["sub-1.load_forecast_a"].effect == "forecast"
    assert by["tunnel-1.pressure_a"].effect == by["tunnel-1.pressure_b"].effect == "variance"
    assert by["sprinkler-1.response_time"].effect == "drift"
    # one after another, in the order of the graph
    assert (
        by["sub-1.load_forecast_a"].start
        < by["tunnel-1.pressure_a"].start
        < by["sprinkler-1.response_time"].start
    )
    # the forecasts disagree with the load (and with each other) by about a tenth of it
    late = o.faulty.times > by["sub-1.load_forecast_a"].start + 120
    fa = o.diff("sub-1.load_forecast_a")[late]
    fb = o.diff("sub-1.load_forecast_b")[late]
    assert np.nanmean(fa) > 3.0
    assert np.nanmean(fb) < -2.0
    # the tunnel's pressure gets noisier; both redundant sensors see it
    rows = o.window(by["tunnel-1.pressure_a"])
    for signal in ("tunnel-1.pressure_a", "tunnel-1.pressure_b"):
        j = o.col(signal)
        ratio = np.nanstd(np.diff(o.faulty.values[rows, j])) / np.nanstd(
            np.diff(o.clean.values[rows, j])
        )
        assert 1.2 < ratio < 2.0
    # the response time creeps: a few ms after minutes, parts per million per second
    rt = o.diff("sprinkler-1.response_time")[o.window(by["sprinkler-1.response_time"])]
    assert 0.0 < np.nanmean(rt[:60]) < np.nanmean(rt[-60:]) < 0.05


def test_s4_one_trip_becomes_a_storm_rooted_in_it(demo_city: Site) -> None:
    o = _outcome(demo_city, "S4", 400, duration=300)
    _common(o, "S4")
    labels = o.run.labels
    assert len(labels) >= 100
    assert {lb.root_cause for lb in labels} == {"sub-1"}
    signals = {lb.signal for lb in labels}
    expected = {
        "sub-1.voltage",
        "feeder-3.current",
        "pump-1.pressure",
        "main-1.pressure",
        "sprinkler-2.response_time",
        "fan-4.airflow",
        "tunnel-2.co",
    }
    assert expected <= signals
    assets = {s.split(".")[0] for s in signals}
    assert not assets & {"sub-2", "feeder-9", "core-a1", "pump-9", "tunnel-8", "chiller-1"}
    # the first effects show within seconds of the trip
    early = [lb for lb in labels if lb.start <= o.sim.start + ONSET + 20]
    assert len(early) >= 30
    # the further down the graph, the later: feeder, pump (+1 s), main (+5 s), sprinkler (+10 s)
    start = {lb.signal: lb.start for lb in labels}
    assert (
        start["feeder-1.current"]
        < start["pump-1.pressure"]
        < start["main-1.pressure"]
        < start["sprinkler-1.pressure"]
        < start["tunnel-1.co"]
    )


def test_s5_distorts_data_sensor_by_sensor(demo_city: Site) -> None:
    o = _outcome(demo_city, "S5", 400, stagger=30, duration=300)
    _common(o, "S5")
    by = {lb.signal: lb for lb in o.run.labels}
    assert {s: lb.effect for s, lb in by.items()} == {
        "pump-7.pressure": "stale",
        "tunnel-6.co": "flatline",
        "feeder-3.current": "spike",
        "tunnel-3.pressure_a": "clock",
        "pump-11.pressure": "foreign",
    }
    assert by["pump-7.pressure"].root_cause == "pump-7"
    assert by["pump-11.pressure"].root_cause == "rogue-gw-7"
    j = o.col("pump-7.pressure")
    assert np.isnan(o.faulty.values[o.window(by["pump-7.pressure"]), j]).all()
    j = o.col("tunnel-6.co")
    flat = o.faulty.values[o.window(by["tunnel-6.co"]), j]
    assert np.nanmax(flat) == np.nanmin(flat)
    spikes = np.abs(o.diff("feeder-3.current")) > 100
    assert spikes.sum() == 5
    # the delayed sensor trails the clean one: it now shows what was measured earlier
    clock = by["tunnel-3.pressure_a"]
    lag = o.faulty.times[o.window(clock)][-1] - clock.start
    assert lag > 100
    msgs = o.sim.foreign_messages()
    assert msgs
    assert {(m.source, m.signal) for m in msgs} == {("rogue-gw-7", "pump-11.pressure")}
    assert min(m.time for m in msgs) == by["pump-11.pressure"].start
    assert o.sim.foreign_messages() == []  # drained


def test_s7_the_core_heats_toward_its_limit_and_its_jobs_suffer(demo_city: Site) -> None:
    o = _outcome(demo_city, "S7", 420, duration=600)
    _common(o, "S7")
    by = {lb.signal: lb for lb in o.run.labels}
    assert by["core-a1.cpu_temp"].effect == "time_to_threshold"
    assert {"core-a1.job_latency", "core-a1.utilisation"} <= set(by)
    assert by["core-a1.cpu_temp"].start < by["core-a1.job_latency"].start
    cpu = o.faulty.values[:, o.col("core-a1.cpu_temp")]
    assert np.nanmax(cpu) > 85.0  # near the 90 °C limit within minutes
    assert np.nanmax(o.faulty.values[:, o.col("core-a1.job_latency")]) > 250.0


def test_s7_by_chiller_loss_heats_every_node_it_cools(demo_city: Site) -> None:
    o = _outcome(demo_city, "S7", 300, cause="chiller", duration=600)
    assert o.run.root_cause == "chiller-1"
    signals = {lb.signal for lb in o.run.labels}
    assert {f"core-a{i}.inlet_temp" for i in range(1, 5)} <= signals


@pytest.mark.parametrize("mode", ["drift", "bias", "stuck"])
def test_r1_one_redundant_sensor_leaves_the_other(demo_city: Site, mode: str) -> None:
    o = _outcome(demo_city, "R1", 400, mode=mode, duration=300)
    _common(o, "R1")
    (label,) = o.run.labels
    assert (label.signal, label.effect, label.root_cause) == (
        "tunnel-2.pressure_b",
        "disagreement",
        "tunnel-2",
    )
    assert label.end == label.start + 300
    rows = o.window(label)
    # Only the sensor's reading changes: its partner, measuring the same pressure, does not.
    assert np.nanmax(np.abs(o.diff("tunnel-2.pressure_a"))) == 0.0
    b = o.diff("tunnel-2.pressure_b")[rows]
    sd = float(o.sim.noise_sd[o.col("tunnel-2.pressure_b")])
    step = 0.1  # the sensor's resolution: readings are quantised
    if mode == "drift":  # one noise sigma per minute
        assert b[-1] == pytest.approx(sd * 300 / 60, abs=step)
        assert np.all(np.diff(b) > -step - 1e-9)
    elif mode == "bias":
        assert np.allclose(b, 4.0 * sd, atol=step)
    else:
        stuck = o.faulty.values[rows, o.col("tunnel-2.pressure_b")]
        assert np.all(stuck == stuck[0])
    assert not o.diff("tunnel-2.pressure_b")[o.faulty.times >= label.end].any()


def test_r1_needs_a_redundant_sensor(demo_city: Site) -> None:
    sim = Simulator(demo_city, seed=1)
    with pytest.raises(SimError, match="is not a redundant sensor"):
        sim.inject("R1", signal="tunnel-2.co")
    with pytest.raises(SimError, match="parameter 'mode' must be"):
        sim.inject("R1", mode="melt")


def test_injections_are_checked() -> None:
    from safety_nexus.sim.examples import tiny_site

    sim = Simulator(tiny_site(), seed=1)
    with pytest.raises(SimError, match=r"unknown scenario 'S9' \(known: S1 creeping-latency"):
        sim.inject("S9")
    with pytest.raises(SimError, match="has no parameter 'size'"):
        sim.inject("S4", size=3.0)
    with pytest.raises(SimError, match="must be a number"):
        sim.inject("S4", asset="feeder-1", duration="long")
    with pytest.raises(SimError, match="unknown asset 'sub-9'"):
        sim.inject("S4", asset="sub-9")
    sim.step(5)
    with pytest.raises(SimError, match="already at"):
        sim.inject("S4", asset="feeder-1", at=sim.start)
    assert sim.runs == []
    assert sim.labels == []
    run = sim.inject("alarm-storm", asset="feeder-1", duration="20", params={"onset": 2})
    assert run.params["duration"] == 20.0
    assert run.params["onset"] == 2.0
    assert run.at == sim.now + 2.0
    assert run.end == run.at + 20.0
