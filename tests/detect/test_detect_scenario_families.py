"""The single-signal families on the simulated demo city: each finds the scenario made for it
(O1 loop-oscillation, Q1 coarse-sensor, S7 core-breach's climb, N1 odd-night), and stays quiet
in normal operation.

Only the four families run. The bank starts twenty minutes before the injection (every signal
is then past its warm-up); the seasonal one needs days of history, so N1 runs on a 30-second
tick (the simulator's physics and the detector's looks do not need a finer one for a daily
profile).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from safety_nexus.core.types import Finding, FindingKind
from safety_nexus.detect import DetectorBank
from safety_nexus.sim import DEFAULT_START, ScenarioRun, Simulator
from safety_nexus.site.load import load_file
from safety_nexus.site.schema import Site

FAMILIES = ["seasonal", "quantisation", "time_to_threshold", "oscillation"]
LEAD = 1200.0


@pytest.fixture(scope="module")
def demo_city() -> Site:
    return load_file(Path(__file__).resolve().parents[2] / "sites" / "demo-city.yaml")


def _watch(
    site: Site, scenario: str, seed: int, hour: float, tick: float = 1.0, lead: float = LEAD
) -> tuple[ScenarioRun, list[Finding], list[Finding]]:
    """(the run, findings before the injection, findings from it until it ends + 2 min)."""
    sim = Simulator(site, seed=seed, start=DEFAULT_START + hour * 3600.0 - lead, tick=tick)
    bank = DetectorBank(sim.table, detectors=FAMILIES)
    chunk = max(1, round(600.0 / tick))
    before: list[Finding] = []
    while sim.now < sim.start + lead - 1e-6:
        before += bank.process(
            sim.step(min(chunk, round((sim.start + lead - sim.now) / tick)))
        ).findings
    run = sim.inject(scenario)
    stop = (run.end if run.end is not None else run.at + 1800.0) + 120.0
    after: list[Finding] = []
    while sim.now < stop:
        after += bank.process(sim.step(chunk)).findings
    return run, before, after


def _found(run: ScenarioRun, findings: list[Finding], kind: FindingKind) -> dict[str, float]:
    """Per label of `kind`'s effect: delay from its start to the first finding of that kind."""
    out: dict[str, float] = {}
    for label in run.labels:
        if label.effect != kind.value:
            continue
        end = label.end if label.end is not None else float("inf")
        hits = [
            f.time - label.start
            for f in findings
            if f.signal == label.signal and f.kind is kind and label.start <= f.time <= end
        ]
        if hits:
            out[label.signal] = min(hits)
    return out


@pytest.mark.parametrize(("seed", "hour"), [(101, 2.0), (102, 8.0), (103, 17.0)])
def test_o1_loop_oscillation_is_found_within_three_periods(
    demo_city: Site, seed: int, hour: float
) -> None:
    run, before, after = _watch(demo_city, "O1", seed, hour)
    assert before == []
    period = float(run.params["period"])
    found = _found(run, after, FindingKind.OSCILLATION)
    assert set(found) == {"pump-3.pressure"}
    assert found["pump-3.pressure"] <= 3 * period
    first = next(f for f in after if f.kind is FindingKind.OSCILLATION)
    assert first.period == pytest.approx(period, rel=0.15)
    assert [f.signal for f in after if f.kind is FindingKind.OSCILLATION] == ["pump-3.pressure"]


@pytest.mark.parametrize(("seed", "hour"), [(101, 2.0), (102, 8.0)])
def test_q1_coarse_sensor_is_found_as_quantisation(demo_city: Site, seed: int, hour: float) -> None:
    run, before, after = _watch(demo_city, "Q1", seed, hour)
    assert before == []
    found = _found(run, after, FindingKind.QUANTISATION)
    assert set(found) == {"feeder-2.current"}
    assert found["feeder-2.current"] <= 300.0
    assert {f.signal for f in after} == {"feeder-2.current"}


@pytest.mark.parametrize(("seed", "hour"), [(101, 2.0), (102, 8.0), (103, 17.0)])
def test_s7_climb_gets_a_forecast_before_the_limit_is_crossed(
    demo_city: Site, seed: int, hour: float
) -> None:
    run, before, after = _watch(demo_city, "S7", seed, hour)
    assert before == []
    found = _found(run, after, FindingKind.TIME_TO_THRESHOLD)
    assert set(found) == {"core-a1.cpu_temp"}
    f = next(f for f in after if f.kind is FindingKind.TIME_TO_THRESHOLD)
    assert f.eta is not None
    assert f.eta_high is not None
    assert f.eta_low is not None
    assert 0.0 < f.eta_low <= f.eta <= f.eta_high
    # Before the temperature gets there (the limit detector of the full bank would fire then).
    sim = Simulator(demo_city, seed=seed, start=DEFAULT_START + hour * 3600.0 - LEAD)
    sim.step(round(LEAD))
    sim.inject("S7")
    frame = sim.step(900)
    j = sim.table.index["core-a1.cpu_temp"]
    over = frame.times[frame.values[:, j] > sim.table.limit_hi[j]]
    assert over.size
    assert f.time < over[0]


@pytest.mark.slow
def test_n1_odd_night_is_found_by_the_seasonal_baseline(demo_city: Site) -> None:
    days = 3.5
    run, before, after = _watch(demo_city, "N1", 104, 2.0, tick=30.0, lead=days * 86400.0)
    assert before == []  # three and a half normal days: no seasonal finding
    found = _found(run, after, FindingKind.SEASONAL)
    assert set(found) == {"sub-1.load"}
    assert found["sub-1.load"] <= 3 * 3600.0
    assert {f.signal for f in after if f.kind is FindingKind.SEASONAL} == {"sub-1.load"}
