"""Helpers shared by the CLI modules: locating the bundled site, printing errors."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from safety_nexus.core.errors import NexusError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from safety_nexus.pipeline.runtime import Runtime

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


def serve_until_stopped(app: FastAPI, runtime: Runtime, *, host: str, port: int) -> None:
    """Serve `app` with uvicorn until Ctrl-C or SIGTERM, then stop the runtime cleanly.

    uvicorn catches SIGTERM to shut down and then raises it again; with the default handler
    that kills the process before `runtime.stop()` has sealed the history and saved the
    detectors' state. A handler of our own takes the re-raised signal, so a service manager's
    stop ends in a clean shutdown (exit 0).
    """
    import uvicorn

    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        runtime.stop()
        signal.signal(signal.SIGTERM, previous)
