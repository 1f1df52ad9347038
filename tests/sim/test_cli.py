from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from safety_nexus.cli import app
from safety_nexus.ingest.wide import read_frame
from safety_nexus.sim.output import read_labels, read_telemetry
from safety_nexus.site.load import load_file
from safety_nexus.site.table import signal_table

from .conftest import DEMO_CITY

runner = CliRunner()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_run_writes_telemetry_and_labels(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / "runs" / f"storm{suffix}"
    result = runner.invoke(
        app,
        [
            "sim", "run", "--scenario", "S4", "--seed", "3", "--speed", "0",
            "--duration", "60", "--at", "20", "--site", str(DEMO_CITY), "--out", str(out),
            "-p", "asset=feeder-2",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote 60 rows" in result.output
    ids, frame = read_telemetry(out)
    table = signal_table(load_file(DEMO_CITY))
    assert ids == list(table.ids)
    assert frame.n_rows == 60
    assert np.diff(frame.times).tolist() == [1.0] * 59
    assert frame.times[0] == pytest.approx(1780272001.0)
    replayed = read_frame(out, table)  # what `nexus serve --replay` reads
    assert np.array_equal(replayed.values, frame.values, equal_nan=True)
    labels = read_labels(tmp_path / "runs" / "storm.labels.csv")
    assert labels
    assert {lb.root_cause for lb in labels} == {"feeder-2"}
    assert all(frame.times[0] + 19 <= lb.start <= frame.times[-1] for lb in labels)


def test_site_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXUS_SITE", str(DEMO_CITY))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["sim", "run", "--speed", "0", "--duration", "5", "--out", "a.csv"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.csv").exists()
    assert read_labels(tmp_path / "a.labels.csv") == []


def test_paced_run_takes_its_time(tmp_path: Path) -> None:
    import time

    began = time.monotonic()
    result = runner.invoke(
        app,
        ["sim", "run", "--speed", "50", "--duration", "10", "--site", str(DEMO_CITY),
         "--out", str(tmp_path / "a.parquet")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert time.monotonic() - began >= 0.18  # 10 simulated seconds at ×50


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "S9"], "unknown scenario 'S9' (known: S1 creeping-latency"),
        (["--scenario", "S4", "-p", "size=3"], "has no parameter 'size'"),
        (["--scenario", "S4", "-p", "asset"], "is not KEY=VALUE"),
        (["--speed", "-1"], "--speed must be 0"),
        (["--out", "x.txt"], "must end in .csv or .parquet"),
    ],
)
def test_bad_command_lines_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    argv = ["sim", "run", "--site", str(DEMO_CITY), "--out", str(tmp_path / "x.csv"), *args]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_scenarios_are_listed() -> None:
    result = runner.invoke(app, ["sim", "scenarios"])
    assert result.exit_code == 0, result.output
    for text in ("S1", "creeping-latency", "S4", "alarm-storm", "S7", "core-breach", "step_ms"):
        assert text in result.output
