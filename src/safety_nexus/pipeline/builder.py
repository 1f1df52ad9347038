"""The whole chain is assembled here, and only here.

    sources → queue → [record telemetry, detect, record findings, alarms, publish] → API

`RuntimeSettings` is strict like the site file: unknown keys are errors that name the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from safety_nexus.alarms.manager import AlarmManager
from safety_nexus.core.clock import Clock, ManualClock, SystemClock
from safety_nexus.detect.bank import DetectConfig, DetectorBank
from safety_nexus.pipeline.hub import EventHub
from safety_nexus.pipeline.metrics import Metrics
from safety_nexus.pipeline.runtime import Runtime
from safety_nexus.pipeline.sources import ReplaySource, ScenarioSchedule, SimulatorSource, Source
from safety_nexus.pipeline.stages import (
    Detect,
    Publish,
    RaiseAlarms,
    RecordFindings,
    RecordTelemetry,
    Stage,
)
from safety_nexus.sim import DEFAULT_START, Simulator
from safety_nexus.site.load import load_file
from safety_nexus.site.table import signal_table
from safety_nexus.store.history import HistoryStore
from safety_nexus.store.live import LiveTelemetry
from safety_nexus.store.sqlite import SqliteStore

DEFAULT_SCENARIOS = ["S1", "S2", "S4", "S5", "S7"]


class SimulatorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = 7
    speed: float = Field(default=1.0, gt=0)  # simulated seconds per wall second; inf = flat out
    rows_per_batch: int = Field(default=1, ge=1)
    warmup: float = Field(default=600.0, ge=0)  # simulated seconds run flat out before going live
    scenarios: list[str] = Field(default_factory=lambda: list(DEFAULT_SCENARIOS))
    scenario_every: float = Field(default=180.0, gt=0)  # simulated seconds between injections
    first_scenario_after: float = Field(default=30.0, ge=0)


class RuntimeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: Path
    data_dir: Path
    source: Literal["simulator", "replay", "http"] = "simulator"
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    replay: Path | None = None
    live_rows: int = Field(default=3600, ge=10)  # rows of recent telemetry kept in memory
    queue_size: int = Field(default=256, ge=1)
    idle_tick: float = Field(default=5.0, gt=0)  # wall seconds of silence before time is ticked
    detect: DetectConfig = Field(default_factory=DetectConfig)


def _resume_time(store: SqliteStore) -> float | None:
    """Simulated time carries on after a restart instead of jumping back to the start."""
    last = store.events(limit=1)
    return last[0].time + 1.0 if last else None


def build_runtime(settings: RuntimeSettings) -> Runtime:
    site = load_file(settings.site)
    table = signal_table(site)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(settings.data_dir / "nexus.db")

    clock: Clock
    sources: list[Source] = []
    sim_source: SimulatorSource | None = None
    if settings.source == "simulator":
        sim_cfg = settings.simulator
        resume = _resume_time(store)
        start = max(DEFAULT_START, resume) if resume is not None else DEFAULT_START
        sim = Simulator(site, seed=sim_cfg.seed, start=start)
        clock = ManualClock(start)
        schedule = (
            ScenarioSchedule(
                list(sim_cfg.scenarios),
                every=sim_cfg.scenario_every,
                first_after=sim_cfg.first_scenario_after,
            )
            if sim_cfg.scenarios
            else None
        )

        def on_inject(name: str, at: float, params: dict[str, float | str]) -> None:
            store.add_event(at, "scenario.injected", "simulator", name, dict(params))

        sim_source = SimulatorSource(
            sim,
            speed=sim_cfg.speed,
            rows_per_batch=sim_cfg.rows_per_batch,
            schedule=schedule,
            on_inject=on_inject,
        )
        sources.append(sim_source)
    else:
        clock = SystemClock()
        if settings.source == "replay":
            if settings.replay is None:
                from safety_nexus.core.errors import ConfigError, ConfigIssue

                raise ConfigError([ConfigIssue("replay", "a replay source needs a file")])
            sources.append(ReplaySource(settings.replay, table))

    site_text = settings.site.read_text(encoding="utf-8")
    store.put_config("site", site_text, time=clock.now(), actor="system")  # journals a change

    live = LiveTelemetry(table, capacity_rows=settings.live_rows)
    history = HistoryStore(settings.data_dir / "history", table)
    bank = DetectorBank(table, settings.detect)
    alarms = AlarmManager(table, store, clock, restored=store.load_alarms().values())
    hub = EventHub()
    metrics = Metrics()
    stages: list[Stage] = [
        RecordTelemetry(live, history, metrics),
        Detect(bank),
        RecordFindings(store, metrics),
        RaiseAlarms(alarms),
        Publish(hub),
    ]
    return Runtime(
        site=site,
        table=table,
        clock=clock,
        store=store,
        live=live,
        history=history,
        bank=bank,
        alarms=alarms,
        hub=hub,
        metrics=metrics,
        stages=stages,
        sources=sources,
        queue_size=settings.queue_size,
        idle_tick=settings.idle_tick,
    )
