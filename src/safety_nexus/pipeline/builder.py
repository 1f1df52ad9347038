"""The whole chain is assembled here, and only here.

    sources → queue → [record telemetry, detect, watch configuration, record findings,
                       alarms, publish] → API

`RuntimeSettings` is strict like the site file: unknown keys are errors that name the field.

The detector bank's state lives in `<data_dir>/detector-state.npz`: restored here on start (see
`restore_bank`), saved by the runtime on stop and every `state_interval` seconds.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from safety_nexus.alarms.config import AlarmConfig
from safety_nexus.alarms.manager import AlarmManager
from safety_nexus.alarms.notify import Notifier, NotifyConfig
from safety_nexus.control.config_integrity import ConfigurationRegistry, ControlState
from safety_nexus.core.clock import Clock, ManualClock, SystemClock
from safety_nexus.core.errors import ConfigError, ConfigIssue, DetectError
from safety_nexus.detect.bank import DetectConfig, DetectorBank
from safety_nexus.ingest.intake import LiveSource
from safety_nexus.ingest.quality import QualityScreen
from safety_nexus.ingest.wal import WriteAheadLog
from safety_nexus.pipeline.hub import EventHub
from safety_nexus.pipeline.ledger import IngestLedger
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
from safety_nexus.pipeline.watch_config import WatchConfiguration
from safety_nexus.sim import DEFAULT_START, Simulator
from safety_nexus.site.graph import DependencyGraph
from safety_nexus.site.load import load_file
from safety_nexus.site.schema import Site
from safety_nexus.site.table import signal_table
from safety_nexus.store.history import HistoryStore
from safety_nexus.store.live import LiveTelemetry
from safety_nexus.store.sqlite import SqliteStore

DEFAULT_SCENARIOS = ["S1", "S2", "S4", "S5", "S7"]
STATE_FILE = "detector-state.npz"

log = logging.getLogger(__name__)


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
    alarms: AlarmConfig = Field(default_factory=AlarmConfig)
    # Who is told about alarms (webhooks, Alertmanager; alarms.notify): nobody by default.
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    # HTTP samples up to this many seconds out of order are put back in order (0: none are).
    reorder_tolerance: float = Field(default=2.0, ge=0, allow_inf_nan=False)
    # Keep the detectors' learned state across restarts (saved on stop and every interval).
    detector_state: bool = True
    state_interval: float = Field(default=60.0, gt=0, allow_inf_nan=False)  # clock seconds
    # Write accepted batches ahead (fsync'd) before acknowledging them, and replay what a crash
    # interrupted (see pipeline.ledger). `wal_sync: false` skips the fsync: faster, and a crash
    # of the machine (not of the process) may then lose the last acknowledged batches.
    write_ahead: bool = True
    wal_sync: bool = True
    # Samples dated more than this many seconds after our clock are refused as clock skew
    # (ingest.quality); only on a wall clock: a simulated clock's time means nothing to a sender.
    max_clock_ahead: float = Field(default=5.0, gt=0, allow_inf_nan=False)
    # Processes that parse large HTTP batches (ingest.parse_pool) beside the pipeline; None:
    # one per CPU beyond the first, at most 4; 0: parse on the request's thread.
    parse_workers: int | None = Field(default=None, ge=0, le=64)


def default_parse_workers() -> int:
    """One parse process per CPU this process may use beyond the first (which the pipeline
    needs), at most 4: decoding scales with cores until the pipeline is the bottleneck."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, min(4, (cpus or 1) - 1))


def _check_positions(config: AlarmConfig, site: Site) -> None:
    """Every subsystem an operator position names must be one of the site's."""
    known = {sub.id for sub in site.subsystems}
    issues = [
        ConfigIssue(f"alarms.positions.{position}", f"unknown subsystem '{sub}'")
        for position, subs in config.positions.items()
        for sub in subs
        if sub not in known
    ]
    if issues:
        raise ConfigError(issues)


def _resume_time(store: SqliteStore) -> float | None:
    """Simulated time carries on after a restart instead of jumping back to the start."""
    last = store.events(limit=1)
    return last[0].time + 1.0 if last else None


def restore_bank(
    bank: DetectorBank, path: Path, store: SqliteStore, clock: Clock, subject: str
) -> bool:
    """Restore the bank's state from `path` if it can be; journal what happened. A missing,
    corrupt or incompatible file means a fresh start with a warning, never a failed start."""
    now = clock.now()
    if not path.exists():
        log.info("no detector state at %s: detectors start fresh", path)
        store.add_event(
            now, "detect.state_fresh", "system", subject, {"path": str(path), "reason": "no file"}
        )
        return False
    try:
        header = bank.load_state(path)
    except DetectError as err:
        reason = str(err)
    except Exception as err:  # a state file must never keep the service down
        log.exception("unexpected error restoring detector state from %s", path)
        reason = f"{path}: unreadable detector state ({type(err).__name__}: {err})"
    else:
        log.info("detector state restored from %s (up to t=%s)", path, header.get("last_time"))
        store.add_event(
            now,
            "detect.state_restored",
            "system",
            subject,
            {
                "path": str(path),
                "saved_at": header.get("saved_at"),
                "last_time": bank.last_time if bank.last_time > -math.inf else None,
            },
        )
        return True
    log.warning("detectors start fresh (warm-up again): %s", reason)
    rejected = path.with_name(path.stem + ".rejected" + path.suffix)
    try:
        path.replace(rejected)  # kept for inspection; the next save writes a new state
    except OSError:
        rejected = path
    store.add_event(
        now,
        "detect.state_discarded",
        "system",
        subject,
        {"path": str(path), "kept_as": str(rejected), "reason": reason},
    )
    return False


def live_sources(site: Site) -> list[LiveSource]:
    """The site's subscribing sources (MQTT, OPC UA): each runs on its own thread, started and
    stopped by the runtime, and hands its batches to the runtime's intake. HTTP, Prometheus
    remote-write need no thread of their own (the API hands them in); a replay is added by
    `build_runtime`. Protocol libraries are imported only by sites that use them."""
    out: list[LiveSource] = []
    for src in site.sources:
        if src.kind == "opcua":
            from safety_nexus.ingest.opcua import OpcUaSource

            out.append(OpcUaSource(src))
        elif src.kind == "mqtt":
            from safety_nexus.ingest.mqtt import MqttSource

            out.append(MqttSource(src))
    return out


def _controllers_follow(sim: Simulator, registry: ConfigurationRegistry) -> None:
    """The twin's controllers hold what is authorised: the values restored at start, then every
    change made through the API (as a real controller receives it); what they report back is
    then what the configuration-integrity stage expects."""

    def apply(state: ControlState) -> None:
        if state.signal is not None:
            sim.set_control(state.signal, state.readback_value)

    for state in registry.states():
        apply(state)
    registry.subscribe(apply)


def build_runtime(settings: RuntimeSettings) -> Runtime:
    site = load_file(settings.site)
    table = signal_table(site)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(settings.data_dir / "nexus.db")

    clock: Clock
    sources: list[Source] = []
    replay: ReplaySource | None = None
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
                raise ConfigError([ConfigIssue("replay", "a replay source needs a file")])
            replay = ReplaySource(settings.replay, table)

    site_text = settings.site.read_text(encoding="utf-8")
    store.put_config("site", site_text, time=clock.now(), actor="system")  # journals a change

    live = LiveTelemetry(table, capacity_rows=settings.live_rows)
    history = HistoryStore(settings.data_dir / "history", table)
    bank = DetectorBank(table, settings.detect)
    state_path = settings.data_dir / STATE_FILE if settings.detector_state else None
    if state_path is not None:
        restore_bank(bank, state_path, store, clock, site.site.name)
        if replay is not None:
            replay.start_after = bank.last_time  # a restarted replay carries on
    wal = (
        WriteAheadLog(settings.data_dir / "wal", table.ids, sync=settings.wal_sync)
        if settings.write_ahead
        else None
    )
    quality = QualityScreen(
        table, max_ahead=None if isinstance(clock, ManualClock) else settings.max_clock_ahead
    )
    _check_positions(settings.alarms, site)
    alarms = AlarmManager(
        table,
        store,
        clock,
        graph=DependencyGraph(site),
        config=settings.alarms,
        restored=store.load_alarms().values(),
    )
    notifier = Notifier(settings.notify, store, clock)
    notifier.restore(alarms.alarms(open_only=True))  # told before the restart
    alarms.subscribe(notifier.on_alarm)
    configuration = ConfigurationRegistry(site, table, store, clock)
    if sim_source is not None:
        _controllers_follow(sim_source.sim, configuration)
    hub = EventHub()
    metrics = Metrics()
    stages: list[Stage] = [
        RecordTelemetry(live, history, metrics),
        Detect(bank),
        WatchConfiguration(configuration),  # after Detect, which replaces the batch's findings
        RecordFindings(store, metrics),
        RaiseAlarms(alarms),
        Publish(hub),
    ]
    runtime = Runtime(
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
        live_sources=(
            [*live_sources(site), *([replay] if replay is not None else [])]
            if settings.source != "simulator"
            else []
        ),
        queue_size=settings.queue_size,
        idle_tick=settings.idle_tick,
        reorder_tolerance=settings.reorder_tolerance,
        state_path=state_path,
        state_interval=settings.state_interval,
        ledger=IngestLedger(wal, store),
        quality=quality,
        configuration=configuration,
        parse_workers=default_parse_workers()
        if settings.parse_workers is None
        else settings.parse_workers,
        notifier=notifier,
    )
    # After a restore, samples at or before what the detectors have seen are late.
    runtime.assembler.seed(bank.last_sample_times())
    return runtime
