"""Helpers shared by the CLI modules: locating the bundled site, printing errors."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from safety_nexus.core.errors import NexusError

console = Console()
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def default_site() -> Path:
    """NEXUS_SITE, else sites/demo-city.yaml in the working directory or the source checkout."""
    env = os.environ.get("NEXUS_SITE")
    if env:
        return Path(env)
    here = Path("sites/demo-city.yaml")
    if here.exists():
        return here
    return Path(__file__).resolve().parents[3] / "sites" / "demo-city.yaml"


def fail(err: NexusError | str, code: int = 1) -> typer.Exit:
    """Print the error on one line (however long its paths) and never read markup into it
    (a column named "[kW]" stays as it is); the caller raises the returned Exit."""
    err_console.print(Text.assemble(("error:", "bold red"), f" {err}"))
    return typer.Exit(code)


def sim_progress(label: str, on: Console | None = None) -> Progress:
    """The progress bar of every command that runs simulated time."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} s simulated"),
        TimeRemainingColumn(),
        console=on or console,
        transient=True,
    )
