"""`nexus sim ...`: run the simulator into telemetry and label files; list its scenarios."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from safety_nexus.cli._common import default_site, fail, sim_progress
from safety_nexus.core.errors import ConfigError, SimError
from safety_nexus.core.types import Frame
from safety_nexus.sim import SCENARIOS, Simulator, lookup, paced
from safety_nexus.sim.faults import ForeignMessage
from safety_nexus.sim.output import TelemetryWriter, iso, labels_path, write_labels
from safety_nexus.site.load import load_file

app = typer.Typer(no_args_is_help=True)

USAGE = 2  # exit code for a bad command line (unknown scenario, bad parameter, bad file name)


def _parse_params(pairs: list[str]) -> dict[str, float | str]:
    out: dict[str, float | str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SimError(f"--param '{pair}' is not KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def _write_foreign(path: Path, messages: list[ForeignMessage]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["timestamp", "source", "signal", "value"])
        stamps = iso(np.asarray([m.time for m in messages]))
        for stamp, m in zip(stamps, messages, strict=True):
            out.writerow([stamp, m.source, m.signal, m.value])


@app.command("run")
def run(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Telemetry file, .csv or .parquet.", show_default=False),
    ],
    scenario: Annotated[
        str | None,
        typer.Option("--scenario", "-s", help="Scenario id or name (default: normal operation)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed: same seed, same telemetry.")] = 1,
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per wall second; 0: as fast as possible.")
    ] = 100.0,
    duration: Annotated[float, typer.Option(help="Simulated seconds to run.")] = 600.0,
    at: Annotated[
        float, typer.Option("--at", help="Simulated seconds after the start to inject at.")
    ] = 10.0,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Scenario parameter KEY=VALUE (repeatable)."),
    ] = None,
    site: Annotated[
        Path | None,
        typer.Option(help="Site file (default: $NEXUS_SITE, else sites/demo-city.yaml)."),
    ] = None,
    tick: Annotated[float, typer.Option(help="Seconds per simulated tick.")] = 1.0,
) -> None:
    """Simulate the site and write its telemetry (wide: timestamp + one column per signal) and
    the ground-truth labels of the injected scenario (<stem>.labels.csv)."""
    err = Console(stderr=True)
    try:
        definition = lookup(scenario) if scenario else None
        params = _parse_params(param or [])
        if definition is None and params:
            raise SimError("--param needs a --scenario")
        if definition is not None:
            definition.resolve(params)  # report a bad parameter before the site is even read
        if out.suffix not in (".csv", ".parquet"):
            raise SimError(f"{out}: the output must end in .csv or .parquet")
        if not (speed >= 0 and math.isfinite(speed)):
            raise SimError(f"--speed must be 0 (as fast as possible) or positive, not {speed}")
        if not (duration > 0 and math.isfinite(duration)):
            raise SimError(f"--duration must be a positive number of seconds, not {duration}")
        if at < 0:
            raise SimError(f"--at must not be negative, not {at}")
    except SimError as e:
        raise fail(e, USAGE) from e
    site_path = site or default_site()
    try:
        model = load_file(site_path)
    except ConfigError as e:
        raise fail(e, USAGE) from e

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        sim = Simulator(model, seed=seed, tick=tick)
        if definition is not None:
            sim.inject(definition.id, at=sim.start + at, params=params)
        steps = math.ceil(duration / sim.tick - 1e-9)
        pace = math.inf if speed == 0 else speed
        batch = 600 if math.isinf(pace) else max(1, min(600, round(pace * 0.1)))
        done = 0
        foreign: list[ForeignMessage] = []
        with (
            TelemetryWriter(out, sim.table) as writer,
            sim_progress(
                f"simulating {definition.id if definition else 'normal operation'}", err
            ) as progress,
        ):
            task = progress.add_task("sim", total=steps * sim.tick)
            for frame in paced(sim, speed=pace, rows_per_batch=min(batch, steps)):
                keep = min(frame.n_rows, steps - done)
                writer.write(Frame(frame.times[:keep], frame.values[:keep]))
                foreign.extend(sim.foreign_messages())
                done += keep
                progress.update(task, completed=done * sim.tick)
                if done >= steps:
                    break
        end = sim.now if done == 0 else sim.start + done * sim.tick
        labels = [lb for lb in sim.labels if lb.start <= end]
        label_file = labels_path(out)
        write_labels(label_file, labels)
        foreign = [m for m in foreign if m.time <= end]
        if foreign:
            _write_foreign(out.with_name(f"{out.stem}.foreign.csv"), foreign)
    except OSError as e:
        raise fail(f"{out}: {e.strerror or e}", 1) from e
    except SimError as e:
        raise fail(e, 1) from e
    console = Console(highlight=False, soft_wrap=True)
    console.print(
        f"wrote {done} rows × {len(sim.table)} signals to {out}, "
        f"{len(labels)} labels to {label_file}"
        + (f", {len(foreign)} messages from unknown sources" if foreign else "")
    )


@app.command("scenarios")
def scenarios() -> None:
    """List the scenarios: id, name, kind, description and parameters with their defaults."""
    console = Console(highlight=False)
    seen: set[str] = set()
    for d in SCENARIOS.values():
        if d.id in seen:
            continue
        seen.add(d.id)
        console.print(f"[bold]{d.id}[/] [bold cyan]{d.name}[/]  [dim]({d.kind})[/]")
        console.print(f"  {d.description}")
        table = Table(box=None, show_header=False, padding=(0, 1, 0, 4))
        table.add_column("parameter", style="green", no_wrap=True)
        table.add_column("default", no_wrap=True)
        table.add_column("meaning", overflow="fold")
        for key, value in d.params.items():
            table.add_row(key, repr(value), d.help.get(key, ""))
        console.print(table)
        console.print()
