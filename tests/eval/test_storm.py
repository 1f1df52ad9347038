"""The storm evaluation: its counting helpers, and one S4 storm end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from safety_nexus.cli import app
from safety_nexus.eval.storm import _peak, _time_over, random_plans
from safety_nexus.site.graph import DependencyGraph
from safety_nexus.site.load import load_file


def test_peak_counts_the_busiest_ten_minutes() -> None:
    assert _peak([]) == 0
    assert _peak([0.0, 100.0, 599.0, 600.0, 1300.0]) == 3  # [0, 600) holds three
    assert _peak([float(t) for t in range(0, 6000, 60)]) == 10


def test_time_over_the_limit() -> None:
    times = [float(t) for t in range(11)]  # eleven events in eleven seconds
    # from the 11th event (t=10) until the first leaves the window (t=600)
    assert _time_over(times, 10, 5000.0) == 590.0
    assert _time_over(times, 11, 5000.0) == 0.0


def test_random_plans_are_reproducible_and_independent(demo_city: Path) -> None:
    site = load_file(demo_city)
    a = random_plans(site, 12, seed=5, second_root=1.0)
    assert a == random_plans(site, 12, seed=5, second_root=1.0)
    assert any(len(p.cascades) == 2 for p in a)
    graph = DependencyGraph(site)
    for plan in a:
        assert len(graph.downstream(plan.cascades[0].asset)) >= 3
        if len(plan.cascades) == 2:
            x, y = (c.asset for c in plan.cascades)
            assert y not in graph.downstream(x)
            assert y not in graph.upstream(x)


def test_s4_through_the_cli_shows_the_root_and_few_alarms(tmp_path: Path) -> None:
    out = tmp_path / "storm.json"
    result = CliRunner().invoke(
        app, ["eval", "storm", "--s4-seeds", "101", "--runs", "0", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    [run] = doc["per_run"]
    assert run["roots"][0]["asset"] == "sub-1"
    assert run["roots"][0]["labelled"] > 0
    assert run["roots"][0]["shown"]
    assert run["findings_peak_10min"] > 100  # a storm of raw findings ...
    assert 0 < run["shown_peak_10min"] <= 10  # ... shown as a handful of alarms
    assert doc["passed"]


def test_bad_seeds_are_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["eval", "storm", "--s4-seeds", "x", "--runs", "0"])
    assert result.exit_code == 2
    assert "--s4-seeds" in result.output
