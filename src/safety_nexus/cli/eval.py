"""`nexus eval ...`: score Nexus (or anyone's published scores) on public benchmarks."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from safety_nexus.cli._common import console, fail
from safety_nexus.core.errors import NexusError
from safety_nexus.eval.nab import (
    NabResult,
    detect_corpus,
    find_data,
    load_corpus,
    read_scores,
    score_corpus,
)

app = typer.Typer(no_args_is_help=True)

USAGE = 2


def _table(result: NabResult, title: str) -> Table:
    """Profiles across, the overall score and each category's down (a category without
    windows shows the raw cost of its false positives, marked "raw")."""
    table = Table(title=title)
    table.add_column("")
    for p in result.profiles:
        table.add_column(p.profile, justify="right")
    table.add_row("score", *(f"[bold]{p.normalized:.2f}[/]" for p in result.profiles))
    table.add_row("threshold", *(f"{p.threshold:.6g}" for p in result.profiles))
    per_cat = [p.by_category() for p in result.profiles]
    windows = dict.fromkeys(per_cat[0], 0)
    for f in result.profiles[0].files:
        windows[f.name.split("/", 1)[0]] += f.tp + f.fn
    for cat in per_cat[0]:
        suffix = "" if windows[cat] else " raw"
        table.add_row(f"  {cat}", *(f"{c[cat]:.1f}{suffix}" for c in per_cat))
    return table


def _as_json(result: NabResult, **extra: object) -> dict[str, object]:
    return {
        **extra,
        "profiles": {
            p.profile: {
                "score": p.normalized,
                "raw": p.raw,
                "threshold": p.threshold,
                "by_category": p.by_category(),
                "files": {
                    f.name: {"raw": f.raw, "tp": f.tp, "fp": f.fp, "fn": f.fn} for f in p.files
                },
            }
            for p in result.profiles
        },
    }


@app.command("nab")
def nab(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="NAB directory (data/ and labels/), or a dataset root holding nab/."
            " Default: $NEXUS_DATA.",
            show_default=False,
        ),
    ] = None,
    scores: Annotated[
        Path | None,
        typer.Option(
            "--scores",
            help="Score a published result file (file,timestamp,anomaly_score; .csv or .csv.gz)"
            " instead of running Nexus.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the full result (per file too) as JSON."),
    ] = None,
) -> None:
    """Score on the Numenta Anomaly Benchmark: windows, probation, profiles, optimal
    threshold per profile, normalised against the null and perfect detectors."""
    try:
        root = find_data(data)
        corpus = load_corpus(root)
        started = time.perf_counter()
        if scores is not None:
            per_row = read_scores(scores, corpus)
            source = str(scores)
        else:
            with Progress(
                TextColumn("scoring"),
                BarColumn(),
                TextColumn("{task.completed:,.0f}/{task.total:,.0f} samples"),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            ) as progress:
                task = progress.add_task("nab", total=corpus.n_rows)
                per_row = detect_corpus(corpus, on_progress=lambda n: progress.advance(task, n))
            source = "nexus"
        elapsed = time.perf_counter() - started
        result = score_corpus(corpus, per_row)
    except NexusError as exc:
        raise fail(exc, USAGE) from exc
    console.print(
        _table(result, f"NAB: {source} on {len(corpus)} files, {corpus.n_windows} windows")
    )
    if scores is None:
        console.print(
            f"{corpus.n_rows:,} samples in {elapsed:.2f} s ({corpus.n_rows / elapsed:,.0f}/s)"
        )
    if out is not None:
        doc = _as_json(result, source=source, data=str(root), seconds=elapsed)
        out.write_text(json.dumps(doc, indent=2) + "\n")
