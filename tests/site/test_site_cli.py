"""`nexus site check` and `nexus site graph`, through typer's test runner."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from safety_nexus.cli.site import app

FIXTURES = Path(__file__).resolve().parent / "fixtures"
runner = CliRunner()


def test_check_ok_prints_a_one_line_summary(demo_city_path: Path) -> None:
    result = runner.invoke(app, ["check", str(demo_city_path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "ok: demo-city.yaml — 4 subsystems, 76 assets, 342 signals, 124 dependencies, "
        "5 redundancy groups, 4 failsafes"
    )


def test_check_prints_every_error_as_file_line_path_message() -> None:
    path = FIXTURES / "several-errors.bad.yaml"
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines == [
        f"{path}:9: site.timezone: duplicate key 'timezone'",
        f"{path}:23: assets[1]: unknown field 'colour'",
        f"{path}:26: assets[1].signals[1].period: 'soon' is not a duration "
        "(use e.g. 500ms, 5s, 2m, 1h)",
        f"{path}:36: redundancy_groups[0]: required (3) exceeds the number of members (2)",
        f"4 errors in {path}",
    ]


def test_check_long_messages_stay_on_one_line() -> None:
    path = FIXTURES / "unknown-source-kind.bad.yaml"
    result = runner.invoke(app, ["check", str(path)], terminal_width=40)
    assert result.exit_code == 1
    assert re.match(
        rf"^{re.escape(str(path))}:39: sources\[1\]\.kind: .+'carrier-pigeon'$",
        result.output.splitlines()[0],
    )


def test_check_a_yaml_error_has_no_field_path() -> None:
    path = FIXTURES / "yaml-tab-indent.bad.yaml"
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith(f"{path}:18: yaml: found a tab character")


def test_check_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 1
    assert f"{path}: cannot read {path}: no such file or directory" in result.output


def test_graph_prints_tables(demo_city_path: Path) -> None:
    result = runner.invoke(app, ["graph", str(demo_city_path)], terminal_width=160)
    assert result.exit_code == 0, result.output
    for heading in (
        "dependency graph",
        "assets by subsystem",
        "dependencies by kind",
        "redundancy groups",
        "single points of failure",
    ):
        assert heading in result.output
    assert "compute-core" in result.output
    assert "4/8" in result.output
    assert "96 s: feeder-8 -> pump-8 -> main-3" in result.output


def test_graph_json(demo_city_path: Path) -> None:
    result = runner.invoke(app, ["graph", str(demo_city_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["assets"] == 76
    assert data["dependencies_by_kind"]["air"] == 16
    assert {g["id"] for g in data["redundancy_groups"]} >= {"ups", "chillers"}
    assert "sub-1" in data["single_points_of_failure"]


def test_graph_of_a_bad_file_fails_like_check() -> None:
    path = FIXTURES / "unknown-provider.bad.yaml"
    result = runner.invoke(app, ["graph", str(path), "--json"])
    assert result.exit_code == 1
    assert (
        f"{path}:29: dependencies[1].provider: unknown provider asset 'feeder-9'" in result.output
    )


def test_no_arguments_shows_help() -> None:
    result = runner.invoke(app, [])
    assert "check" in result.output
    assert "graph" in result.output
