"""Setpoint and directive readbacks in the simulator, and C1 setpoint-nudge: the plant runs on the
values in effect, the readbacks report them exactly, a change made at the controllers moves the
readback (labelled `config`, rooted in its own asset) and the physics; and declaring readbacks
leaves every other signal's telemetry bit-identical."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from safety_nexus.core.errors import SimError
from safety_nexus.sim import SCENARIOS, Simulator
from safety_nexus.site.schema import Site

ONSET = 30.0
READBACKS = {"pressure_setpoint", "supply_setpoint", "mode"}


def _without_readbacks(site: Site) -> Site:
    """The same site with no readback signals (and its setpoints and directives without them)."""
    data: dict[str, Any] = site.model_dump(by_alias=True)
    for asset in data["assets"]:
        asset["signals"] = [s for s in asset["signals"] if s["name"] not in READBACKS]
    for control in [*data["setpoints"], *data["directives"]]:
        control["signal"] = None
    return Site.model_validate(data)


def test_c1_is_in_the_catalogue() -> None:
    d = SCENARIOS["C1"]
    assert d is SCENARIOS["setpoint-nudge"]
    assert d.kind == "deliberate"
    assert set(d.help) == set(d.params)


def test_readbacks_change_no_other_signals_telemetry(demo_city: Site) -> None:
    plain = _without_readbacks(demo_city)
    assert len(plain.assets) == len(demo_city.assets)
    a, b = Simulator(demo_city, seed=9), Simulator(plain, seed=9)
    for sim in (a, b):
        sim.inject("S4", at=sim.start + 20, asset="feeder-8", duration=120)
        sim.inject("S5", at=sim.start + 10, stagger=10, duration=100)
    fa, fb = a.step(400), b.step(400)
    cols = [a.table.index[s] for s in b.table.ids]
    assert np.array_equal(fa.values[:, cols], fb.values, equal_nan=True)
    assert a.labels == b.labels


def test_readbacks_report_the_authorised_values_exactly(demo_city: Site) -> None:
    sim = Simulator(demo_city, seed=4)
    values = sim.step(300).values
    for signal, value in [
        ("pump-3.pressure_setpoint", 5.0),
        ("chiller-2.supply_setpoint", 7.5),
        ("gen-1.mode", 0.0),
    ]:
        seen = values[:, sim.table.index[signal]]
        assert np.unique(seen[~np.isnan(seen)]).tolist() == [value]
        assert sim.noise_sd[sim.table.index[signal]] == 0.0


@pytest.mark.slow
def test_c1_nudges_the_readbacks_one_asset_after_another(demo_city: Site) -> None:
    sim = Simulator(demo_city, seed=17)
    run = sim.inject("C1", at=sim.start + ONSET)
    clean = Simulator(demo_city, seed=17)
    faulty, plain = sim.step(1200), clean.step(1200)
    config = [lb for lb in run.labels if lb.effect == "config"]
    assert [(lb.signal, lb.root_cause, lb.start - sim.start) for lb in config] == [
        ("pump-2.pressure_setpoint", "pump-2", ONSET),
        ("chiller-1.supply_setpoint", "chiller-1", ONSET + 120),
        ("gen-2.mode", "gen-2", ONSET + 240),
    ]
    assert all(lb.kind == "deliberate" and lb.scenario == "C1" for lb in run.labels)
    for label, step in zip(config, (0.3, 1.0, 2.0), strict=True):
        j = sim.table.index[label.signal]
        assert label.end is not None
        during = (faulty.times >= label.start) & (faulty.times < label.end)
        diff = faulty.values[:, j] - plain.values[:, j]
        assert np.nanmax(np.abs(diff[~during]), initial=0.0) == 0.0
        assert np.allclose(diff[during][~np.isnan(diff[during])], step)
    # The physics runs on the change: the pump speeds up and its pressure rises, the chiller's
    # water is warmer; each blamed on the asset whose setpoint moved.
    roots = {lb.signal: lb.root_cause for lb in run.labels}
    assert roots["pump-2.pressure"] == roots["pump-2.speed"] == roots["main-1.pressure"] == "pump-2"
    assert roots["chiller-1.supply_temp"] == "chiller-1"
    assert not any(s.startswith("gen-2.") and s != "gen-2.mode" for s in roots)  # grid is fine
    j = sim.table.index["pump-2.pressure"]
    rows = (faulty.times > sim.start + ONSET + 60) & (faulty.times < sim.start + ONSET + 900)
    rise = np.nanmean(faulty.values[rows, j] - plain.values[rows, j])
    assert 0.2 < rise < 0.4  # about the nudge
    # and nothing else moves
    labelled = set(roots)
    thr = np.maximum(sim.noise_sd, 0.002 * (sim.table.normal_hi - sim.table.normal_lo))
    moved = [
        s
        for k, s in enumerate(sim.table.ids)
        if s not in labelled
        and np.nanmax(np.abs(faulty.values[:, k] - plain.values[:, k]), initial=0.0) > 2 * thr[k]
    ]
    assert len(moved) <= 0.02 * len(sim.table), moved


@pytest.mark.slow
def test_a_generator_out_of_auto_does_not_start_when_its_ups_loses_the_grid(
    demo_city: Site,
) -> None:
    def coolant(directive: bool) -> np.ndarray:
        sim = Simulator(demo_city, seed=5)
        if directive:
            sim.inject("C1", at=sim.start + 10, setpoint="", setpoint_2="", duration=0)
        sim.inject("S4", at=sim.start + 60, asset="feeder-8", duration=600)  # feeds ups-2
        values = sim.step(600).values[:, sim.table.index["gen-2.coolant_temp"]]
        return values[~np.isnan(values)]

    assert coolant(directive=False)[-1] > 40.0  # gen-2 started and warmed up
    assert coolant(directive=True)[-1] < 35.0  # switched off: it stays at standby (32.5)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"setpoint": "gen-2.mode"}, "reports a directive, not a setpoint"),
        ({"directive": "pump-2.pressure_setpoint"}, "reports a setpoint, not a directive"),
        ({"setpoint": "pump-2.pressure"}, "reports no setpoint or directive"),
        ({"nudge": 0.0}, "'nudge' must not be 0"),
        ({"state": 0.0}, "another state of 'gen-2-mode' (0 to 2, not 0)"),
        ({"state": 3.0}, "another state"),
        ({"state": 1.5}, "another state"),
        ({"setpoint": "", "setpoint_2": "", "directive": ""}, "at least one target"),
    ],
)
def test_c1_refuses_bad_parameters(
    demo_city: Site, params: dict[str, float | str], fragment: str
) -> None:
    sim = Simulator(demo_city, seed=1)
    with pytest.raises(SimError) as caught:
        sim.inject("C1", params=params)
    assert fragment in str(caught.value)


def test_an_authorised_value_is_taken_up_by_the_twin(demo_city: Site) -> None:
    sim, clean = Simulator(demo_city, seed=8), Simulator(demo_city, seed=8)
    sim.step(100)
    clean.step(100)
    sim.set_control("chiller-3.supply_setpoint", 8.0)
    sim.set_control("gen-1.mode", 1.0)
    a, b = sim.step(600), clean.step(600)
    readback = a.values[:, sim.table.index["chiller-3.supply_setpoint"]]
    assert np.unique(readback[~np.isnan(readback)]).tolist() == [8.0]
    mode = a.values[:, sim.table.index["gen-1.mode"]]
    assert np.unique(mode[~np.isnan(mode)]).tolist() == [1.0]
    j = sim.table.index["chiller-3.supply_temp"]
    assert np.nanmean(a.values[-120:, j] - b.values[-120:, j]) == pytest.approx(0.5, abs=0.1)


def test_only_readbacks_take_an_authorised_value(demo_city: Site) -> None:
    sim = Simulator(demo_city, seed=8)
    with pytest.raises(SimError, match="reports no setpoint or directive"):
        sim.set_control("pump-1.pressure", 5.0)
    with pytest.raises(SimError, match="reports no setpoint or directive"):
        sim.set_control("pump-99.pressure_setpoint", 5.0)
    with pytest.raises(SimError, match="cannot set"):
        sim.set_control("pump-1.pressure_setpoint", float("nan"))
