"""Loading: the demo city, files that cannot be read, YAML features, the collected issues."""

from __future__ import annotations

import runpy
import time
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from safety_nexus.core.errors import ConfigError, NexusError
from safety_nexus.core.types import Criticality
from safety_nexus.site.load import load, load_file
from safety_nexus.site.schema import Authority, Site
from safety_nexus.site.table import signal_table

ROOT = Path(__file__).resolve().parents[2]
TINY = Path(__file__).resolve().parent / "fixtures" / "tiny.good.yaml"


def _issues(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(text)
    return [str(issue) for issue in caught.value.issues]


def test_demo_city_is_the_documented_catalogue(demo_city: Site) -> None:
    assert [s.id for s in demo_city.subsystems] == ["power", "water", "tunnels", "compute"]
    assert len(demo_city.assets) == 76
    assert sum(len(a.signals) for a in demo_city.assets) == 342
    assert len(demo_city.redundancy_groups) >= 3
    assert len(demo_city.failsafes) >= 3
    assert {s.id for s in demo_city.sources} == {"sim", "field-gateway"}


def test_demo_city_details_match_the_document(demo_city: Site) -> None:
    assets = {a.id: a for a in demo_city.assets}
    pump = assets["pump-7"]
    assert (pump.type, pump.subsystem, pump.criticality) == ("pump", "water", Criticality.HIGH)
    pressure = next(s for s in pump.signals if s.name == "pressure")
    assert (pressure.unit, pressure.normal.low, pressure.normal.high) == ("bar", 4, 6)
    assert pressure.limits is not None
    assert (pressure.limits.low, pressure.limits.high, pressure.period) == (2, 8, 1.0)
    forecast = next(s for s in assets["sub-2"].signals if s.name == "load_forecast_b")
    assert forecast.period == 60
    standby = next(s for s in assets["core-b3"].signals if s.name == "utilisation")
    assert (standby.normal.low, standby.normal.high) == (0, 30)
    assert assets["core-a1"].criticality is Criticality.CRITICAL
    assert assets["ups-1"].criticality is Criticality.MEDIUM
    failover = next(f for f in demo_city.failsafes if f.id == "core-failover")
    assert failover.when.signal == "core-a1.job_latency"
    assert (failover.when.above, failover.when.for_) == (250, 30)
    assert (failover.action.do, failover.action.target) == ("failover", "core-b1")
    assert failover.authority is Authority.CONFIRM
    table = signal_table(demo_city)
    assert len(table.ids) == 342
    assert table.ids[0] == "sub-1.voltage"


def test_demo_city_file_is_what_the_generator_writes(demo_city_path: Path) -> None:
    generator = runpy.run_path(str(ROOT / "scripts" / "gen_demo_city.py"), run_name="gen")
    assert demo_city_path.read_text(encoding="utf-8") == generator["render"](), (
        "sites/demo-city.yaml is stale: run python scripts/gen_demo_city.py"
    )


def test_demo_city_validates_with_the_schema_alone(demo_city_path: Path) -> None:
    site = Site.model_validate(yaml.safe_load(demo_city_path.read_text(encoding="utf-8")))
    assert len(site.assets) == 76


def test_missing_file_is_a_config_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    assert caught.value.source == str(path)
    [issue] = caught.value.issues
    assert str(path) in issue.message
    assert "no such file" in issue.message


def test_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_file(tmp_path)


def test_binary_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_bytes(b"version: 1\n\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not utf-8"):
        load_file(path)


def test_config_error_is_a_nexus_error() -> None:
    with pytest.raises(NexusError):
        load("")


def test_all_issues_are_reported_in_line_order() -> None:
    text = TINY.read_text(encoding="utf-8")
    text = text.replace("type: feeder", "type: feeder\n    colour: red")
    text = text.replace("lag: 1s}", "lag: 1 fortnight}")
    text = text.replace("name: Tiny site", "name: Tiny site\n  owner: nobody")
    issues = _issues(text)
    assert len(issues) == 4
    assert [int(i.split(":")[0].removeprefix("line ")) for i in issues] == [5, 14, 30, 31]
    assert issues[1] == "line 14: assets[0]: unknown field 'colour'"


def test_cross_reference_errors_are_all_reported() -> None:
    text = TINY.read_text(encoding="utf-8")
    text = text.replace("subsystem: power", "subsystem: grid")
    text = text.replace("target: pump-2", "target: pump-3")
    issues = _issues(text)
    assert issues == [
        "line 7: subsystems[0]: subsystem 'power' has no assets",
        "line 11: assets[0].subsystem: asset 'feeder-1' refers to unknown subsystem 'grid'",
        "line 35: failsafes[0].action.target: failsafe 'pump-low-pressure' acts on unknown "
        "asset 'pump-3'",
    ]


def test_site_objects_never_hold_dangling_references() -> None:
    data = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    data["dependencies"][0]["provider"] = "feeder-2"
    with pytest.raises(ValidationError, match="unknown provider asset 'feeder-2'"):
        Site.model_validate(data)


def test_lines_follow_anchors_and_merge_keys() -> None:
    text = """\
version: 1
site: {name: Anchors}
subsystems: [{id: water, name: Water}]
assets:
  - &pump
    id: pump-1
    subsystem: water
    type: pump
    signals:
      - {name: pressure, normal: [4, 6]}
  - <<: *pump
    id: pump-2
    colour: red
"""
    assert _issues(text) == ["line 13: assets[1]: unknown field 'colour'"]


def test_merged_keys_report_where_they_were_written() -> None:
    text = """\
version: 1
site: {name: Anchors}
subsystems: [{id: water, name: Water}]
defaults: &defaults
  subsystem: water
assets:
  - <<: *defaults
    id: pump-1
    type: pump
"""
    assert _issues(text) == ["line 4: unknown field 'defaults'"]


def test_aliases_cannot_blow_up_the_loader() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = "\n".join(levels) + "\nversion: 1\n"
    started = time.perf_counter()
    issues = _issues(text)
    assert time.perf_counter() - started < 5
    assert "line 1: unknown field 'a0'" in issues


def test_a_recursive_alias_is_an_error_not_a_crash() -> None:
    issues = _issues("site: &s {name: x, self: *s}\n")
    assert any("unknown field 'self'" in issue for issue in issues)


def test_impossible_date_is_a_config_error() -> None:
    assert _issues("site: {name: 2024-13-45}\n") == [
        "yaml: cannot read a value: month must be in 1..12"
    ]


def test_integer_and_float_formats_are_accepted() -> None:
    text = TINY.read_text(encoding="utf-8").replace("limits: [0, 600]", "limits: [-1e3, 6.0e2]")
    site = load(text)
    limits = site.assets[0].signals[0].limits
    assert limits is not None
    assert (limits.low, limits.high) == (-1000.0, 600.0)
