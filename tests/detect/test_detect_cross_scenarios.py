"""The cross-signal families on the simulated demo city: each finds the scenario made for it.

Only the cross-signal detectors run (the single-signal ones have their own benchmark), from
twenty minutes before the injection: by then every residual is past its warm-up and calibrated.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from safety_nexus.core.types import Finding, FindingKind
from safety_nexus.detect import DetectorBank
from safety_nexus.sim import DEFAULT_START, ScenarioRun, Simulator
from safety_nexus.site.load import load_file
from safety_nexus.site.schema import Site

LEAD = 2400.0


def _watch(
    site: Site, scenario: str, seed: int, hour: float, **params: float | str
) -> tuple[ScenarioRun, list[Finding]]:
    sim = Simulator(site, seed=seed, start=DEFAULT_START + hour * 3600.0 - LEAD)
    bank = DetectorBank(sim.table, detectors=["forecast", "redundancy"])
    for _ in range(int(LEAD // 60)):
        bank.process(sim.step(60))
    run = sim.inject(scenario, params=params)
    assert run.end is not None
    findings: list[Finding] = []
    while sim.now < run.end + 120.0:
        findings += bank.process(sim.step(60)).findings
    return run, findings


@pytest.fixture(scope="module")
def demo_city() -> Site:
    return load_file(Path(__file__).resolve().parents[2] / "sites" / "demo-city.yaml")


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "hour"), [(101, 2.0), (102, 8.0), (103, 17.0)])
def test_s2_forecasts_are_found_by_the_forecast_family(
    demo_city: Site, seed: int, hour: float
) -> None:
    run, findings = _watch(demo_city, "S2", seed, hour)
    forecasts = [lb for lb in run.labels if lb.effect == "forecast"]
    assert {lb.signal for lb in forecasts} == {"sub-1.load_forecast_a", "sub-1.load_forecast_b"}
    for label in forecasts:
        hits = [f for f in findings if f.signal == label.signal and f.time >= label.start]
        assert hits, f"{label.signal} not found"
        first = hits[0]
        assert (first.kind, first.detector) == (FindingKind.FORECAST, "forecast")
        assert first.time - label.start <= 180.0
        assert first.context == "error against sub-1.load"
        assert first.unit == "MW"
    # The tunnel's extra turbulence (shared by both sensors) is no disagreement between them.
    assert not [
        f for f in findings if f.kind is FindingKind.DISAGREEMENT and "tunnel-1" in f.signal
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "seed", "hour"), [("drift", 101, 2.0), ("bias", 102, 17.0), ("stuck", 103, 8.0)]
)
def test_r1_a_redundant_sensor_is_found_by_the_redundancy_family(
    demo_city: Site, mode: str, seed: int, hour: float
) -> None:
    run, findings = _watch(demo_city, "R1", seed, hour, mode=mode, duration=600.0)
    (label,) = run.labels
    hits = [
        f
        for f in findings
        if f.signal == label.signal and label.start <= f.time <= (label.end or f.time)
    ]
    assert hits, f"{mode}: {label.signal} not found"
    first = hits[0]
    assert (first.kind, first.detector) == (FindingKind.DISAGREEMENT, "redundancy")
    assert first.context == "against tunnel-2.pressure_a"
    assert first.time - label.start <= 300.0
    # A pair cannot tell which of the two is wrong: its partner is reported with it.
    assert any(f.signal == "tunnel-2.pressure_a" and f.time == first.time for f in findings)
