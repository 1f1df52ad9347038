"""Normal operation stays inside the declared normal bands, and signals keep their periods."""

from __future__ import annotations

import numpy as np
import pytest

from safety_nexus.sim import DEFAULT_START, Simulator
from safety_nexus.site.schema import Site


def _outside(sim: Simulator, values: np.ndarray) -> tuple[float, np.ndarray]:
    t = sim.table
    seen = ~np.isnan(values)
    out = seen & ((values < t.normal_lo) | (values > t.normal_hi))
    per_signal = out.sum(axis=0) / np.maximum(seen.sum(axis=0), 1)
    return float(out.sum() / seen.sum()), per_signal


def test_an_evening_peak_hour_stays_in_band(demo_city: Site) -> None:
    # 17:00-18:00 UTC: the grid's load peak, the evening rush hour in the tunnels.
    sim = Simulator(demo_city, seed=21, start=DEFAULT_START + 17 * 3600)
    values = sim.step(3600).values
    overall, per_signal = _outside(sim, values)
    assert overall < 0.001
    assert per_signal.max() < 0.01, sim.table.ids[int(per_signal.argmax())]


@pytest.mark.slow
def test_a_whole_day_stays_in_band(demo_city: Site) -> None:
    sim = Simulator(demo_city, seed=5)
    values = np.concatenate([sim.step(3600).values for _ in range(24)])
    overall, per_signal = _outside(sim, values)
    assert overall < 0.005
    assert per_signal.max() < 0.02, sim.table.ids[int(per_signal.argmax())]


def test_each_signal_is_reported_on_its_period(demo_city: Site) -> None:
    sim = Simulator(demo_city, seed=3)
    values = sim.step(120).values
    reported = (~np.isnan(values)).sum(axis=0)
    expected = 120 / np.maximum(1.0, np.round(sim.table.period))
    assert np.array_equal(reported, expected.astype(int))
    # the 60-second forecasts are reported on the same tick every minute
    j = sim.table.index["sub-1.load_forecast_a"]
    rows = np.flatnonzero(~np.isnan(values[:, j]))
    assert np.diff(rows).tolist() == [60]


def test_quantised_sensors_report_at_their_resolution(demo_city: Site) -> None:
    sim = Simulator(demo_city, seed=3)
    values = sim.step(30).values
    volts = values[:, sim.table.index["sub-1.voltage"]]
    assert np.allclose(volts * 1000, np.round(volts * 1000))
    assert all(len(repr(float(v)).split(".")[1]) <= 3 for v in volts)
