"""The site's cross-signal declarations reach the SignalTable as index arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from safety_nexus.site.load import load, load_file
from safety_nexus.site.schema import Site
from safety_nexus.site.table import signal_table

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_demo_city_declares_its_forecasts_and_redundant_sensors(demo_city: Site) -> None:
    table = signal_table(demo_city)
    fc, act, horizon = table.forecast_pairs()
    pairs = sorted((table.ids[f], table.ids[a]) for f, a in zip(fc, act, strict=True))
    assert pairs == [
        (f"sub-{k}.load_forecast_{x}", f"sub-{k}.load") for k in (1, 2) for x in ("a", "b")
    ]
    assert np.all(horizon == 0.0)
    groups = [[table.ids[c] for c in g] for g in table.sensor_groups()]
    assert groups == [[f"tunnel-{j}.pressure_a", f"tunnel-{j}.pressure_b"] for j in range(1, 9)]
    assert table.quantities == tuple(f"tunnel-{j}-pressure" for j in range(1, 9))
    # Everything else declares nothing.
    assert int(np.count_nonzero(table.forecast_of >= 0)) == 4
    assert int(np.count_nonzero(table.measures >= 0)) == 16


def test_horizon_and_measures_from_a_site_file() -> None:
    text = (FIXTURES / "tiny.good.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "      - {name: flow, unit: L/s, normal: [20, 60], period: 5s}\n",
        "      - {name: flow, unit: L/s, normal: [20, 60], period: 5s}\n"
        "      - {name: flow_plan, unit: L/s, normal: [20, 60], period: 5s,"
        " forecast_of: pump-1.flow, horizon: 2m}\n",
    )
    text = text.replace(
        "limits: [2, 8]}\n      - {name: flow,",
        "limits: [2, 8], measures: line}\n      - {name: flow,",
    ).replace(
        "      - {name: pressure, unit: bar, normal: [4, 6], limits: [2, 8]}\ndependencies",
        "      - {name: pressure, unit: bar, normal: [4, 6], limits: [2, 8], measures: line}\n"
        "dependencies",
    )
    table = signal_table(load(text, "inline"))
    fc, act, horizon = table.forecast_pairs()
    assert [(table.ids[f], table.ids[a], h) for f, a, h in zip(fc, act, horizon, strict=True)] == [
        ("pump-1.flow_plan", "pump-1.flow", 120.0)
    ]
    assert table.quantities == ("line",)
    assert [[table.ids[c] for c in g] for g in table.sensor_groups()] == [
        ["pump-1.pressure", "pump-2.pressure"]
    ]


def test_a_site_without_declarations_has_empty_ones() -> None:
    table = signal_table(load_file(FIXTURES / "tiny.good.yaml"))
    assert table.forecast_pairs()[0].shape == (0,)
    assert table.sensor_groups() == []
    assert np.all(table.forecast_of == -1)
    assert np.all(table.measures == -1)
