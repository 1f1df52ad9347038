"""`nexus alarms ...`: reports on the alarm system; `kpi` is the ISA-18.2 alarm load.

The figures are `alarms.kpi`'s and the page `alarms.kpi_html`'s; this module finds the store,
turns --since/--until into journal times, and prints the summary. A missing store, a bad time
or an empty period exits with 2 and one line naming what is wrong.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from safety_nexus.alarms.kpi import AlarmKpis, iso, kpis_from_store
from safety_nexus.alarms.kpi_html import render
from safety_nexus.cli._common import fail
from safety_nexus.core.errors import NexusError, NotFoundError, RequestError
from safety_nexus.store.sqlite import SqliteStore

app = typer.Typer(no_args_is_help=True)

USAGE = 2  # a missing store, a bad time, an empty period
DEFAULT_DATA_DIR = Path("var/nexus")  # `nexus serve`'s
STORE_FILE = "nexus.db"
UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)


def parse_time(text: str, *, end: float) -> float:
    """A duration back from `end` ("7d", "12h", "30m", "90s", "1w") or an ISO-8601 time (no
    offset: UTC) as epoch seconds."""
    raw = text.strip()
    match = DURATION.fullmatch(raw)
    if match:
        return end - float(match.group(1)) * UNITS[match.group(2).lower()]
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise RequestError(
            f"{text!r} is neither a duration (7d, 12h, 30m, 90s) nor an ISO-8601 time"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def open_store(data_dir: Path | None, db: Path | None) -> SqliteStore:
    """The store named by --db or --data-dir, which must exist: a report never creates one."""
    if data_dir is not None and db is not None:
        raise RequestError("give --data-dir or --db, not both")
    path = db if db is not None else (data_dir or DEFAULT_DATA_DIR) / STORE_FILE
    if not path.is_file():
        raise NotFoundError(f"no store at {path}")
    return SqliteStore(path)


def resolve_period(store: SqliteStore, since: str, until: str | None) -> tuple[float, float]:
    """[since, until) in journal time. Durations count back from the last journal entry (the
    simulator's clock is not the wall clock), --since's from --until when that is given."""
    newest = store.events(limit=1)
    if not newest:
        raise RequestError(f"the journal in {store.path} is empty")
    last = newest[0].time
    if until is None:
        # Just above the last entry, so that the half-open period includes it; durations
        # still count back from the entry itself.
        start, end = parse_time(since, end=last), math.nextafter(last, math.inf)
    else:
        end = parse_time(until, end=last)
        start = parse_time(since, end=end)
    if start >= end:
        raise RequestError(f"the period is empty: --since {iso(start)} is not before {iso(end)}")
    if not store.events(since=start, until=end, limit=1):
        raise RequestError(
            f"the period is empty: no journal entries from {iso(start)} to {iso(end)}"
        )
    return start, end


def summary_table(kpis: AlarmKpis, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("scope", "KPI", "value", "target", ""):
        table.add_column(name, overflow="fold")
    for c in kpis.checks():
        status = Text("met", "green") if c.met else Text("not met", "bold red")
        table.add_row(Text(c.scope), Text(c.name), Text(c.value), Text(c.target), status)
    return table


@app.command("kpi")
def kpi(
    since: Annotated[
        str,
        typer.Option(
            help="Start: a duration (7d, 12h, 30m, 90s) counted back from the last journal"
            " entry, not from now (the simulator's clock is not the wall clock), or from"
            " --until when given; or an ISO-8601 time (no offset: UTC).",
        ),
    ] = "7d",
    until: Annotated[
        str | None,
        typer.Option(
            help="End, exclusive: an ISO-8601 time, or a duration back from the last journal"
            " entry. Default: just after the last journal entry.",
            show_default=False,
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help=f"Data directory of `nexus serve`/`nexus demo`: the store is DIR/{STORE_FILE}."
            f" Default: {DEFAULT_DATA_DIR}.",
            show_default=False,
        ),
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option(help="The store file itself, instead of --data-dir.", show_default=False),
    ] = None,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Write every figure as JSON to this file.", show_default=False),
    ] = None,
    html_out: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Write a self-contained HTML page (inline SVG charts) to this file.",
            show_default=False,
        ),
    ] = None,
    position: Annotated[
        str | None,
        typer.Option(help="Only this operator position.", show_default=False),
    ] = None,
) -> None:
    """Alarm-load KPIs after ISA-18.2, each against its target.

    From the journal: annunciations per operator position per 10 minutes, hour and day (fixed
    10-minute periods from --since), time in flood, the top 10 alarms' share, chattering and
    stale alarms, the priority distribution."""
    try:
        store = open_store(data_dir, db)
    except NexusError as err:
        raise fail(err, USAGE) from err
    try:
        start, end = resolve_period(store, since, until)
        kpis = kpis_from_store(store, since=start, until=end, position=position)
    except NexusError as err:
        raise fail(err, USAGE) from err
    finally:
        store.close()
    out = Console(highlight=False, soft_wrap=False)
    scope = f"position {position}" if position else "all positions"
    title = f"Alarm load {iso(start)} to {iso(end)}, {scope}: {kpis.annunciations} annunciation(s)"
    out.print(summary_table(kpis, title))
    checks = kpis.checks()
    out.print(f"{sum(c.met for c in checks)} of {len(checks)} targets met")
    try:
        for target in (json_out, html_out):
            if target is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
        if json_out is not None:
            json_out.write_text(json.dumps(kpis.to_dict(), indent=2) + "\n", encoding="utf-8")
        if html_out is not None:
            html_out.write_text(render(kpis, source=store.path), encoding="utf-8")
    except OSError as err:
        raise fail(f"cannot write {err.filename}: {err.strerror}", 1) from err
