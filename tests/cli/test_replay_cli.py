"""`nexus replay` through typer's test runner: the summary, the options, and bad input (exit 2,
a message naming what is wrong, never a traceback)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from safety_nexus.cli import app

runner = CliRunner()

SITE = """
version: 1
site: {name: Replay site, timezone: UTC}
subsystems: [{id: water, name: Water}]
assets:
  - id: pump-1
    subsystem: water
    type: pump
    signals:
      - {name: pressure, unit: bar, normal: [4, 6]}
      - {name: flow, unit: L/s, normal: [20, 60]}
"""


def nab_csv(
    path: Path, n: int = 1200, seed: int = 1, columns: tuple[str, ...] = ("value",)
) -> Path:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, len(columns)))
    values[n - 200 :, 0] += 5.0
    lines = ["timestamp," + ",".join(columns)]
    for i in range(n):
        stamp = f"2015-02-{1 + i // 1440:02d} {i // 60 % 24:02d}:{i % 60:02d}:00"
        lines.append(stamp + "," + ",".join(repr(v) for v in values[i].tolist()))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_replay_writes_out_and_prints_a_summary(tmp_path: Path) -> None:
    src = nab_csv(tmp_path / "in.csv")
    out, findings = tmp_path / "res" / "out.csv", tmp_path / "f.csv"
    result = runner.invoke(
        app, ["replay", str(src), "--out", str(out), "--findings", str(findings)]
    )
    assert result.exit_code == 0, result.output
    assert "note: no --site: inferred 1 signal(s)" in result.output
    assert "note: no --warmup" in result.output
    summary = result.output.strip().splitlines()[-1]
    assert summary.startswith(f"scored 1200 rows × 1 signal(s) into {out}:")
    assert "rows/s)" in summary
    assert "scoring in.csv" not in result.output  # no progress bar when not on a terminal
    table = pacsv.read_csv(out)
    assert table.num_rows == 1200
    assert table.column_names == ["timestamp", "score.value", "score", "alarm", "top", "findings"]
    assert findings.read_text().startswith("timestamp,signal,kind,detector,score,explanation")


def test_quiet_site_and_warmup(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(SITE, encoding="utf-8")
    cols = ("pump-1.pressure",)
    ref, src = (
        nab_csv(tmp_path / "ref.csv", 600, 2, cols),
        nab_csv(tmp_path / "in.csv", 600, 3, cols),
    )
    out = tmp_path / "out.csv"
    argv = ["replay", str(src), "-o", str(out), "--site", str(site), "--warmup", str(ref), "-q"]
    result = runner.invoke(app, [*argv, "--threshold", "0.9", "--alarm-on", "score"])
    assert result.exit_code == 0, result.output
    assert "note:" not in result.output
    assert result.output.startswith("scored 600 rows × 1 signal(s)")
    assert pacsv.read_csv(out).column_names[1] == "score.pump-1.pressure"


@pytest.mark.parametrize(
    ("header", "body", "extra", "message"),
    [
        ("when,value", "1,2\n", [], "no timestamp column (looked for timestamp, time, ts, date"),
        ("timestamp,value,state", "1,2,on\n", [], "column 'state' is not numeric"),
        ("timestamp,value", "1,2\n3,2\n2,2\n", [], "row 3: timestamp 2 is earlier than"),
        ("timestamp,value", "", [], "no data rows"),
        ("timestamp,value", "1,2\n", ["--threshold", "1.5"], "--threshold must be within [0, 1]"),
        ("timestamp,Value", "1,2\n", ["--site", "SITE"], "name no signal of the site: Value"),
        ("timestamp,value", "1,2\n", ["--warmup", "nope.csv"], "nope.csv: no such file"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    tmp_path: Path, header: str, body: str, extra: list[str], message: str
) -> None:
    src = tmp_path / "in.csv"
    src.write_text(f"{header}\n{body}", encoding="utf-8")
    site = tmp_path / "site.yaml"
    site.write_text(SITE, encoding="utf-8")
    extra = [
        str(site) if a == "SITE" else str(tmp_path / a) if a.endswith(".csv") else a for a in extra
    ]
    result = runner.invoke(app, ["replay", str(src), "-o", str(tmp_path / "out.csv"), *extra])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["missing.csv", "-o", "out.csv"], "missing.csv: no such file"),
        (["in.txt", "-o", "out.csv"], "expected a .csv, .csv.gz or .parquet file"),
        (["in.csv", "-o", "out.parquet"], "the output must end in .csv"),
        (["in.csv", "-o", "in.csv"], "in.csv: would overwrite an input file"),
        (["in.csv", "-o", "out.csv", "--site", "nosite.yaml"], "cannot read"),
    ],
)
def test_bad_files_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    nab_csv(tmp_path / "in.csv", 50)
    (tmp_path / "in.txt").write_text("timestamp,value\n1,2\n", encoding="utf-8")
    result = runner.invoke(app, ["replay", *argv])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
