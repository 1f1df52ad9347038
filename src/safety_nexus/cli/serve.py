"""`nexus serve`: the API and dashboard for a site fed by HTTP (and optionally a replay)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from safety_nexus.alarms.notify import NotifyConfig, load_file
from safety_nexus.cli._common import console, default_site, fail, serve_until_stopped
from safety_nexus.core.errors import NexusError
from safety_nexus.pipeline.builder import RuntimeSettings, build_runtime


def serve(
    site: Annotated[Path | None, typer.Option(help="Site file.")] = None,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the API and dashboard.")] = 8000,
    data_dir: Annotated[Path, typer.Option(help="Where state is kept.")] = Path("var/nexus"),
    replay: Annotated[
        Path | None, typer.Option(help="Also replay this CSV/Parquet file into the pipeline.")
    ] = None,
    reorder_tolerance: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Seconds out of order that samples are put back in order; findings wait as"
            " long (0.1 for sub-second findings).",
        ),
    ] = 2.0,
    parse_workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=64,
            help="Processes that parse large HTTP batches (default: one per CPU beyond the"
            " first; 0: none).",
        ),
    ] = None,
    notify: Annotated[
        Path | None,
        typer.Option(help="Alarm notification routes and receivers (YAML or JSON; see README)."),
    ] = None,
) -> None:
    """Serve the API and dashboard; telemetry arrives by POST /api/v1/telemetry (and --replay)."""

    from safety_nexus.api.app import create_app

    try:
        notify_config = load_file(notify) if notify is not None else NotifyConfig()
        settings = RuntimeSettings(
            site=site or default_site(),
            data_dir=data_dir,
            source="replay" if replay else "http",
            replay=replay,
            reorder_tolerance=reorder_tolerance,
            parse_workers=parse_workers,
            notify=notify_config,
        )
        runtime = build_runtime(settings)
    except NexusError as err:
        raise fail(err) from err
    runtime.start()
    console.print(f"serving {runtime.site.site.name} on http://{host}:{port}/ (docs: /docs)")
    serve_until_stopped(create_app(runtime), runtime, host=host, port=port)
