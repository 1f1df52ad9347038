"""The simulator runs any valid site: unknown asset types and signal names get a plain model."""

from __future__ import annotations

import numpy as np

from safety_nexus.sim import Simulator
from safety_nexus.site.schema import Site


def _odd_site() -> Site:
    return Site.model_validate(
        {
            "site": {"name": "odd", "timezone": "Europe/Zurich"},
            "subsystems": [{"id": "misc", "name": "Misc"}],
            "assets": [
                {
                    "id": "wx-1",
                    "subsystem": "misc",
                    "type": "weather-station",
                    "signals": [
                        {"name": "wind", "normal": [0, 20]},
                        {"name": "rain", "normal": [0, 5], "period": "10s"},
                    ],
                },
                {
                    "id": "feeder-1",
                    "subsystem": "misc",
                    "type": "feeder",
                    "signals": [
                        {"name": "current", "normal": [100, 400]},
                        {"name": "harmonics", "normal": [1, 3]},
                    ],
                },
            ],
            # a cycle, and a dependency kind no model reads
            "dependencies": [
                {"provider": "wx-1", "dependant": "feeder-1", "kind": "control", "lag": "2s"},
                {"provider": "feeder-1", "dependant": "wx-1", "kind": "power", "lag": 0},
            ],
        }
    )


def test_unknown_types_and_names_sit_in_their_band_and_trip_to_zero() -> None:
    sim = Simulator(_odd_site(), seed=1)
    frame = sim.step(600)
    t = sim.table
    seen = ~np.isnan(frame.values)
    inside = (frame.values >= t.normal_lo) & (frame.values <= t.normal_hi)
    assert (inside | ~seen).mean() > 0.99
    run = sim.inject("S4", asset="wx-1", duration=10)
    assert {lb.signal for lb in run.labels} == {"wx-1.wind", "wx-1.rain"}
    frame = sim.step(5)
    assert np.nanmax(np.abs(frame.values[:, t.index["wx-1.wind"]])) < 5.0  # noise around zero
