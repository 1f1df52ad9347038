"""`nexus alarms kpi` through typer's test runner: the summary, the JSON and HTML files, the
period options, and bad input (exit 2, one line naming what is wrong, never a traceback)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from safety_nexus.cli import app
from safety_nexus.store.sqlite import SqliteStore

runner = CliRunner()

T0 = 1_780_272_000.0  # 2026-06-01 00:00 UTC
VOID = {"meta", "br", "hr", "img", "input", "link"}


def make_store(path: Path) -> Path:
    """Two hours of journal: 11 annunciations in the first 10 minutes at 'north' (a flood),
    one an hour later at 'south', and the last entry at T0 + 7200."""
    store = SqliteStore(path)
    try:
        for i in range(11):
            store.add_event(
                T0 + 30.0 * i,
                "alarm.unacknowledged",
                "detector",
                f"pump-{i % 3}:spike",
                {"position": "north", "priority": "low" if i else "high"},
            )
        store.add_event(
            T0 + 3600.0,
            "alarm.unacknowledged",
            "detector",
            "fan-<1>:external:Hot&Loud",
            {"position": "south", "priority": "medium"},
        )
        store.add_event(T0 + 7200.0, "runtime.stopped", "system", "site", {})
    finally:
        store.close()
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    make_store(tmp_path / "data" / "nexus.db")
    return tmp_path / "data"


class Nesting(HTMLParser):
    """Checks that every element is closed, in order, and collects the tag names."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"</{tag}> closes nothing"
        assert self.stack.pop() == tag, f"</{tag}> closes the wrong element"


def one_line(output: str) -> str:
    return " ".join(output.split())


def test_summary_json_and_html(data_dir: Path, tmp_path: Path) -> None:
    out_json, out_html = tmp_path / "out" / "kpi.json", tmp_path / "out" / "kpi.html"
    result = runner.invoke(
        app,
        [
            "alarms",
            "kpi",
            "--since",
            "2h",
            "--data-dir",
            str(data_dir),
            "--json",
            str(out_json),
            "--html",
            str(out_html),
        ],
    )
    assert result.exit_code == 0, result.output
    text = one_line(result.output)
    assert "12 annunciation(s)" in text
    assert "time in flood" in text
    assert "not met" in text
    assert "targets met" in text

    doc = json.loads(out_json.read_text(encoding="utf-8"))
    assert doc["annunciations"] == 12
    assert doc["since_iso"] == "2026-06-01T00:00:00+00:00"
    positions = {p["position"]: p for p in doc["positions"]}
    assert positions["north"]["counts_10min"][0] == 11
    assert positions["north"]["flood_periods"] == 1
    assert sum(positions["south"]["counts_10min"]) == 1
    assert len(positions["south"]["counts_10min"]) == 12

    page = out_html.read_text(encoding="utf-8")
    parser = Nesting()
    parser.feed(page)
    parser.close()
    assert parser.stack == []
    assert parser.tags.count("svg") == 3  # two positions' periods, the priorities
    assert "script" not in parser.tags
    assert "fan-&lt;1&gt;:external:Hot&amp;Loud" in page
    assert "fan-<1>" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_durations_count_back_from_the_last_journal_entry(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "k.json"
    args = ["alarms", "kpi", "--data-dir", str(data_dir), "--json", str(out)]
    result = runner.invoke(app, [*args, "--since", "90m"])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["since"] == pytest.approx(T0 + 1800.0)
    assert doc["annunciations"] == 1  # the south one at T0 + 3600
    # --until 1h: an hour before the last entry, T0 + 3600, excluded; --since counts from it.
    result = runner.invoke(app, [*args, "--since", "1h", "--until", "1h"])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert (doc["since"], doc["until"]) == (T0, T0 + 3600.0)
    assert doc["annunciations"] == 11


def test_iso_times_a_db_file_and_one_position(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "k.json"
    result = runner.invoke(
        app,
        [
            "alarms",
            "kpi",
            "--db",
            str(data_dir / "nexus.db"),
            "--since",
            "2026-06-01T00:00:00",
            "--until",
            "2026-06-01T01:00:00Z",
            "--position",
            "north",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert (doc["since"], doc["until"]) == (T0, T0 + 3600.0)
    assert [p["position"] for p in doc["positions"]] == ["north"]
    assert doc["annunciations"] == 11
    assert "position north" in one_line(result.output)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--since", "yesterday"], "'yesterday' is neither a duration (7d, 12h, 30m, 90s) nor"),
        (["--since", "7x"], "'7x' is neither a duration"),
        (["--until", "soon"], "'soon' is neither a duration"),
        (["--since", "2026-06-02T00:00:00"], "the period is empty: --since"),
        (["--since", "2020-01-01", "--until", "2020-01-02"], "the period is empty: no journal"),
        (["--db", "DATA/nexus.db"], "give --data-dir or --db, not both"),
    ],
)
def test_bad_input_exits_2_with_one_line(data_dir: Path, extra: list[str], message: str) -> None:
    extra = [a.replace("DATA", str(data_dir)) for a in extra]
    result = runner.invoke(app, ["alarms", "kpi", "--data-dir", str(data_dir), *extra])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ")
    assert message in one_line(result.output)
    assert "Traceback" not in result.output


def test_no_store_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    result = runner.invoke(app, ["alarms", "kpi", "--data-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == 2, result.output
    assert f"error: no store at {tmp_path / 'nowhere' / 'nexus.db'}" in one_line(result.output)
    assert not (tmp_path / "nowhere").exists()


def test_an_empty_journal_exits_2(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "nexus.db").close()
    result = runner.invoke(app, ["alarms", "kpi", "--db", str(tmp_path / "nexus.db")])
    assert result.exit_code == 2, result.output
    assert "is empty" in result.output
