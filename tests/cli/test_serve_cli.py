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


def test_tolerance_and_parse_workers_reach_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, demo_city: Path
) -> None:
    seen: list[RuntimeSettings] = []

    def build(settings: RuntimeSettings) -> None:
        seen.append(settings)
        raise _Stop("settings taken")

    monkeypatch.setattr("safety_nexus.cli.serve.build_runtime", build)
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
