"""`nexus serve` options reach the runtime's settings; bad values are refused by the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from safety_nexus.cli import app
from safety_nexus.core.errors import NexusError
from safety_nexus.pipeline.builder import RuntimeSettings

runner = CliRunner()


class _Stop(NexusError):
    """Raised by the stand-in builder: the test needs the settings, not a server."""


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[RuntimeSettings]:
    """The settings `nexus serve` builds its runtime from, one per invocation (no server
    starts)."""
    taken: list[RuntimeSettings] = []

    def build(settings: RuntimeSettings) -> None:
        taken.append(settings)
        raise _Stop("settings taken")

    monkeypatch.setattr("safety_nexus.cli.serve.build_runtime", build)
    return taken


def test_tolerance_and_parse_workers_reach_the_settings(
    seen: list[RuntimeSettings], tmp_path: Path, demo_city: Path
) -> None:
    args = ["serve", "--site", str(demo_city), "--data-dir", str(tmp_path)]
    result = runner.invoke(app, [*args, "--reorder-tolerance", "0.1", "--parse-workers", "0"])
    assert result.exit_code == 1
    assert "settings taken" in result.output
    assert (seen[0].reorder_tolerance, seen[0].parse_workers) == (0.1, 0)
    runner.invoke(app, args)
    assert (seen[1].reorder_tolerance, seen[1].parse_workers) == (2.0, None)  # the defaults


@pytest.mark.parametrize(
    ("option", "value"), [("--reorder-tolerance", "-1"), ("--parse-workers", "65")]
)
def test_bad_values_are_refused_naming_the_option(option: str, value: str) -> None:
    result = runner.invoke(app, ["serve", option, value])
    assert result.exit_code == 2
    assert option in result.output


def test_notify_file_reaches_the_settings_and_a_bad_one_is_refused(
    seen: list[RuntimeSettings], tmp_path: Path, demo_city: Path
) -> None:
    notify = tmp_path / "notify.yaml"
    notify.write_text(
        "receivers: [{name: ops, webhook: {url: 'http://127.0.0.1:9/hook'}}]\n"
        "routes: [{receivers: [ops], min_priority: high}]\n",
        encoding="utf-8",
    )
    args = ["serve", "--site", str(demo_city), "--data-dir", str(tmp_path)]
    result = runner.invoke(app, [*args, "--notify", str(notify)])
    assert "settings taken" in result.output
    assert seen[0].notify.routes[0].min_priority == "high"
    notify.write_text("routes: [{receivers: [nobody]}]\n", encoding="utf-8")
    result = runner.invoke(app, [*args, "--notify", str(notify)])
    assert result.exit_code == 1
    assert "routes[0].receivers: unknown receiver 'nobody'" in result.output
    assert len(seen) == 1  # refused before the runtime is built
