"""The scenarios of the single-signal detector families (O1 loop-oscillation, Q1 coarse-sensor,
N1 odd-night; S7's time-to-threshold label): what they label, and that the labelled signal
really does what the label says, against a clean run of the same seed (same noise)."""

from __future__ import annotations

import numpy as np
import pytest

from safety_nexus.core.errors import SimError
from safety_nexus.sim import SCENARIOS, Simulator
from safety_nexus.site.schema import Site

ONSET = 30.0


def _pair(
    site: Site, scenario: str, ticks: int, **params: float | str
) -> tuple[Simulator, np.ndarray, np.ndarray, np.ndarray]:
    sim = Simulator(site, seed=23)
    run = sim.inject(scenario, at=sim.start + ONSET, params=params)
    clean = Simulator(site, seed=23)
    faulty = sim.step(ticks)
    assert run.labels
    return sim, faulty.times, faulty.values, clean.step(ticks).values


def test_the_new_scenarios_are_in_the_catalogue_by_id_and_name() -> None:
    for sid, name, kind in [
        ("O1", "loop-oscillation", "cascade"),
        ("Q1", "coarse-sensor", "sensor-fault"),
        ("N1", "odd-night", "benign"),
    ]:
        assert SCENARIOS[sid] is SCENARIOS[name]
        assert SCENARIOS[sid].kind == kind
        assert set(SCENARIOS[sid].help) == set(SCENARIOS[sid].params)


def test_o1_swings_the_pump_pressure_with_its_period_and_amplitude(demo_city: Site) -> None:
    sim, times, faulty, clean = _pair(demo_city, "O1", 300, period=20.0, amplitude_sd=6.0)
    (label,) = sim.runs[0].labels
    assert (label.signal, label.effect, label.root_cause, label.kind) == (
        "pump-3.pressure",
        "oscillation",
        "pump-3",
        "cascade",
    )
    assert label.start == sim.start + ONSET
    j = sim.table.index[label.signal]
    diff = faulty[:, j] - clean[:, j]
    after = times >= label.start
    amplitude = 6.0 * sim.noise_sd[j]
    quantum = 0.01  # the sensor's resolution: the swing is rounded with it
    assert np.abs(diff[~after]).max() == 0.0
    assert np.abs(diff[after]).max() == pytest.approx(amplitude, abs=quantum)
    # The period: the swing's spectrum peaks at 1/20 Hz.
    spectrum = np.abs(np.fft.rfft(diff[after] - diff[after].mean()))
    freqs = np.fft.rfftfreq(int(after.sum()), d=1.0)
    assert freqs[np.argmax(spectrum)] == pytest.approx(1.0 / 20.0, rel=0.05)
    others = np.delete(np.arange(faulty.shape[1]), j)
    assert np.nanmax(np.abs(faulty[:, others] - clean[:, others])) == 0.0


def test_q1_rounds_the_sensor_to_its_noise(demo_city: Site) -> None:
    sim, times, faulty, clean = _pair(demo_city, "Q1", 200, resolution_sd=1.0)
    (label,) = sim.runs[0].labels
    assert (label.signal, label.effect, label.kind) == (
        "feeder-2.current",
        "quantisation",
        "sensor-fault",
    )
    j = sim.table.index[label.signal]
    res = sim.noise_sd[j]
    after = times >= label.start
    reported = faulty[after, j]
    reported = reported[~np.isnan(reported)]
    assert np.allclose(reported / res, np.round(reported / res))
    assert np.abs(faulty[after, j] - clean[after, j]).max() <= 0.5 * res + 1e-9
    assert np.array_equal(faulty[~after], clean[~after], equal_nan=True)


def test_n1_moves_the_load_within_its_normal_band(demo_city: Site) -> None:
    sim, times, faulty, clean = _pair(demo_city, "N1", 2400, shift=0.25, ramp=600.0)
    (label,) = sim.runs[0].labels
    assert (label.signal, label.effect, label.kind) == ("sub-1.load", "seasonal", "benign")
    j = sim.table.index[label.signal]
    width = sim.table.normal_hi[j] - sim.table.normal_lo[j]
    diff = faulty[:, j] - clean[:, j]
    settled = times >= label.start + 600.0
    assert np.allclose(diff[settled], 0.25 * width, atol=0.02)
    assert np.nanmax(faulty[:, j]) <= sim.table.normal_hi[j]  # normal in value (at midnight)


def test_s7_labels_the_cpu_temperature_for_a_time_to_threshold_forecast(
    demo_city: Site,
) -> None:
    sim = Simulator(demo_city, seed=23)
    run = sim.inject("S7", at=sim.start + ONSET)
    by = {lb.signal: lb for lb in run.labels}
    assert by["core-a1.cpu_temp"].effect == "time_to_threshold"
    j = sim.table.index["core-a1.cpu_temp"]
    frame = sim.step(600)
    assert np.nanmax(frame.values[:, j]) > sim.table.limit_hi[j]  # it does get there


@pytest.mark.parametrize(
    ("scenario", "params", "message"),
    [
        ("O1", {"period": 0.0}, "period"),
        ("O1", {"signal": "nope.x"}, "unknown signal"),
        ("Q1", {"resolution_sd": 0.0}, "resolution_sd"),
        ("N1", {"ramp": -1.0}, "ramp"),
    ],
)
def test_bad_parameters_are_refused(
    demo_city: Site, scenario: str, params: dict[str, float | str], message: str
) -> None:
    sim = Simulator(demo_city, seed=1)
    with pytest.raises(SimError, match=message):
        sim.inject(scenario, params=params)
