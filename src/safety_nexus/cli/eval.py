"""`nexus eval ...`: score Nexus (or anyone's published scores) on public benchmarks."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from safety_nexus.cli._common import console, default_site, fail
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


@app.command("storm")
def storm(
    site: Annotated[
        Path | None,
        typer.Option("--site", help="Site file (default: the demo city).", show_default=False),
    ] = None,
    s4_seeds: Annotated[
        str, typer.Option("--s4-seeds", help="Seeds of the S4 runs, comma-separated ('' none).")
    ] = "101,102,103",
    runs: Annotated[int, typer.Option("--runs", min=0, help="Randomised cascades.")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the randomised cascades.")] = 1,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Most alarms shown in any 10 minutes.")
    ] = 10,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes.")] = 1,
    on_delay: Annotated[
        float | None,
        typer.Option(
            "--on-delay",
            min=0,
            help="Alarm on-delay in seconds (default: the alarm settings' default).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the result (per run too) as JSON."),
    ] = None,
) -> None:
    """Alarm storms: raw findings against alarms shown per 10 minutes at each operator
    position, and whether every ground-truth root cause was shown (S4 and randomised
    cascades on the simulated site)."""
    from safety_nexus.alarms.config import AlarmConfig
    from safety_nexus.eval.storm import StormRun, random_plans, run_all, s4_plans
    from safety_nexus.site.load import load_file

    try:
        site_doc = load_file(site or default_site())
        try:
            seeds = [int(s) for s in s4_seeds.split(",") if s.strip()]
        except ValueError:
            raise fail(f"--s4-seeds: not a list of integers: {s4_seeds!r}", USAGE) from None
        plans = [*s4_plans(seeds), *random_plans(site_doc, runs, seed)]
        if not plans:
            raise fail("nothing to run: no S4 seeds and --runs 0", USAGE)
        started = time.perf_counter()
        with Progress(
            TextColumn("storms"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} runs"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("storm", total=len(plans))

            def done(r: StormRun) -> None:
                progress.advance(task)

            config = AlarmConfig() if on_delay is None else AlarmConfig(on_delay=on_delay)
            summary = run_all(
                site_doc, plans, limit=limit, on_done=done, workers=workers, alarm_config=config
            )
        elapsed = time.perf_counter() - started
    except NexusError as exc:
        raise fail(exc, USAGE) from exc
    table = Table(title=f"Alarm storms: {len(plans)} runs, limit {limit} per 10 min")
    for col in (
        "run",
        "roots",
        "findings",
        "peak raw/10 min",
        "shown",
        "peak shown/10 min",
        "roots shown",
        "root delay s",
    ):
        table.add_column(col, justify="right" if col != "run" else "left")
    for r in summary.runs:
        delays = [f"{x.delay:.0f}" for x in r.roots if x.delay is not None]
        judged = [x for x in r.roots if x.labelled]
        table.add_row(
            r.plan.name,
            ", ".join(c.asset for c in r.plan.cascades),
            str(r.findings),
            str(r.findings_peak_10min),
            str(r.shown),
            ("[red]" if r.shown_peak_10min > limit else "") + str(r.shown_peak_10min),
            f"{sum(x.shown for x in judged)}/{len(judged)}",
            ", ".join(delays) or "-",
        )
    console.print(table)
    verdict = "[green]met[/]" if summary.passed else "[red]not met[/]"
    console.print(
        f"worst 10 minutes: {summary.worst_peak} alarms shown (limit {limit});"
        f" roots shown {summary.roots_shown}/{summary.roots_judged}: target {verdict}"
        f" ({elapsed:.0f} s)"
    )
    if out is not None:
        doc = {
            "seconds": elapsed,
            "site": str(site or default_site()),
            "on_delay": config.on_delay,
            **summary.to_dict(),
        }
        out.write_text(json.dumps(doc, indent=2) + "\n")
