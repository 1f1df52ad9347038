"""`nexus replay FILE --out OUT.csv`: score any wide CSV/Parquet file row by row.

The work is `eval.replay.replay_file`; this module parses the command line, shows progress and
prints the summary. Bad input exits with 2, an unwritable output with 1.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from safety_nexus.cli._common import err_console, fail
from safety_nexus.core.errors import ConfigError, EvalError, IngestError, NexusError
from safety_nexus.core.types import SignalTable
from safety_nexus.eval.replay import DEFAULT_THRESHOLD, AlarmOn, replay_file
from safety_nexus.site.load import load_file
from safety_nexus.site.table import signal_table

USAGE = 2  # exit code for bad input: a bad option, an unreadable or malformed file


def replay(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV (.csv, .csv.gz) or Parquet: a timestamp column, one column per signal.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Output CSV, one row per input row.", show_default=False),
    ],
    site: Annotated[
        Path | None,
        typer.Option(
            help="Site file: columns are its signal ids (asset.signal). Default: inferred from"
            " the columns."
        ),
    ] = None,
    warmup: Annotated[
        Path | None,
        typer.Option(
            help="Reference file with the same columns to learn normal behaviour from first."
            " Without it the start of FILE is the warm-up, where scores stay low."
        ),
    ] = None,
    time_column: Annotated[
        str | None,
        typer.Option(help="The timestamp column (default: timestamp, time, ts, date, datetime)."),
    ] = None,
    ignore_column: Annotated[
        list[str] | None,
        typer.Option(help="A column to leave out, e.g. a text column (repeatable)."),
    ] = None,
    threshold: Annotated[
        float,
        typer.Option(help="Alarm when the row score reaches this (0..1)."),
    ] = DEFAULT_THRESHOLD,
    alarm_on: Annotated[
        AlarmOn,
        typer.Option(
            help="What raises `alarm`: the row score, a detector finding's onset, or either.",
        ),
    ] = "either",
    findings: Annotated[
        Path | None,
        typer.Option(help="Also write the detector bank's findings to this CSV."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar and no notes.")
    ] = False,
) -> None:
    """Score FILE row by row into OUT: per signal a score in [0, 1] (`score.<signal>`), the
    combined row score (`score`, Simes' combination over the signals), `alarm` (0/1), the `top`
    contributing signals and the detector bank's `findings` starting at that row.

    Timestamps: ISO-8601 (no zone offset: UTC) or epoch seconds/ms, strictly increasing.
    Empty cells and NaN are gaps; every column but the timestamp must be numeric."""
    err = err_console
    try:
        if out.suffix.lower() != ".csv":
            raise EvalError(f"{out}: the output must end in .csv")
        if findings is not None and findings.suffix.lower() != ".csv":
            raise EvalError(f"{findings}: the findings file must end in .csv")
        if not (0.0 <= threshold <= 1.0) or math.isnan(threshold):
            raise EvalError(f"--threshold must be within [0, 1], not {threshold}")
        inputs = {file.resolve(), *([warmup.resolve()] if warmup is not None else [])}
        for target in (out, findings):
            if target is not None and target.resolve() in inputs:
                raise EvalError(f"{target}: would overwrite an input file")
        table: SignalTable | None = signal_table(load_file(site)) if site is not None else None
    except (EvalError, ConfigError) as e:
        raise fail(e, USAGE) from e

    def note(text: str) -> None:
        if not quiet:
            err.print(Text.assemble(("note:", "dim"), f" {text}"))

    bar = Progress(
        TextColumn(f"scoring {escape(file.name)}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%  {task.fields[rows]} rows"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=quiet or not err.is_terminal,
    )
    try:
        with bar:
            task = bar.add_task("replay", total=1.0, rows=0)
            summary = replay_file(
                file,
                out,
                site=table,
                warmup=warmup,
                time_column=time_column,
                ignore=ignore_column or (),
                threshold=threshold,
                alarm_on=alarm_on,
                findings=findings,
                note=note,
                progress=lambda rows, done: bar.update(task, completed=done, rows=rows),
            )
    except IngestError as e:
        raise fail(e, USAGE) from e
    except NexusError as e:  # an unwritable output; anything else Nexus refuses
        raise fail(e, 1) from e
    top = ", ".join(f"{sid} ({n})" for sid, n in summary.top) or "none"
    Console(highlight=False, soft_wrap=True).print(
        f"scored {summary.rows} rows × {summary.signals} signal(s) into {out}:"
        f" {summary.alarm_rows} alarm row(s) in {summary.episodes} episode(s),"
        f" {summary.findings} finding(s)"
        + (f", {summary.gaps} empty cell(s)" if summary.gaps else "")
        + f"; top signals: {top};"
        f" {summary.elapsed:.2f} s ({summary.rows_per_second:,.0f} rows/s)"
    )
