"""The app factory: tests and the CLI each build their own app around a runtime."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from safety_nexus import __version__
from safety_nexus.api import errors
from safety_nexus.api.deps import build_verifier
from safety_nexus.api.routes import (
    alarms,
    alertmanager,
    config,
    findings,
    health,
    prometheus,
    scenarios,
    signals,
    site,
    stream,
    telemetry,
)
from safety_nexus.pipeline.runtime import Runtime

UI_DIR = Path(__file__).parent / "ui"
PREFIX = "/api/v1"


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="Safety Nexus",
        version=__version__,
        description="Live state, findings and alarms of a monitored site.",
    )
    app.state.runtime = runtime
    app.state.verifier = build_verifier(runtime)  # a missing key fails here, not per request
    app.state.series_maps = prometheus.build_series_maps(runtime)  # so does a bad series name
    errors.install(app)
    for module in (site, signals, findings, alarms, telemetry, scenarios, health, stream):
        app.include_router(module.router, prefix=PREFIX)
    app.include_router(prometheus.router, prefix=PREFIX)
    app.include_router(config.router, prefix=PREFIX)  # setpoints and directives
    app.include_router(alertmanager.router, prefix=PREFIX)  # alerts from an Alertmanager
    app.include_router(health.metrics_router)
    if UI_DIR.is_dir():
        app.mount("/", StaticFiles(directory=UI_DIR, html=True), name="ui")
    return app
