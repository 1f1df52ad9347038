"""`nexus demo`: the demo city live in the browser, or headless with a detection summary."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from safety_nexus.cli._common import console, default_site, fail, serve_until_stopped, sim_progress
from safety_nexus.core.errors import NexusError
from safety_nexus.core.types import Finding
from safety_nexus.eval.detection import LabelResult, by_asset, match
from safety_nexus.pipeline.builder import RuntimeSettings, SimulatorSettings, build_runtime
from safety_nexus.pipeline.runtime import Runtime
from safety_nexus.pipeline.sources import SimulatorSource
from safety_nexus.sim import SCENARIOS, paced


def _warm_up(runtime: Runtime, source: SimulatorSource, seconds: float) -> None:
    """Arm the detectors and fill the trends before anyone looks: simulated time, flat out."""
    steps = max(0, math.ceil(seconds / source.sim.tick))
    with sim_progress("warming up detectors") as progress:
        task = progress.add_task("warm-up", total=steps)
        while steps > 0:
            n = min(60, steps)
            runtime.process_frame(source.name, source.sim.step(n))
            steps -= n
            progress.advance(task, n)


def demo(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the API and dashboard.")] = 8000,
    site: Annotated[Path | None, typer.Option(help="Site file (default: the demo city).")] = None,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 7,
    speed: Annotated[float, typer.Option(help="Simulated seconds per wall second.")] = 1.0,
    scenario: Annotated[
        list[str] | None, typer.Option(help="Scenario(s) to inject, in turn (default: all).")
    ] = None,
    every: Annotated[float, typer.Option(help="Simulated seconds between injections.")] = 180.0,
    warmup: Annotated[float, typer.Option(help="Simulated seconds of warm-up.")] = 600.0,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where state is kept (default var/demo; temp if headless).")
    ] = None,
    headless: Annotated[
        bool, typer.Option(help="No server: run, then print findings, alarms and delays.")
    ] = False,
    duration: Annotated[float, typer.Option(help="Headless: simulated seconds to run.")] = 60.0,
) -> None:
    """Run the demo city: simulator, pipeline, API and dashboard on http://127.0.0.1:8000."""
    site_path = site or default_site()
    scenarios = list(scenario) if scenario else ["S1", "S2", "S4", "S5", "S7"]
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        known = ", ".join(sorted({d.id for d in SCENARIOS.values()}))
        raise fail(f"unknown scenario '{unknown[0]}' (known: {known})", 2)
    try:
        if headless:
            with tempfile.TemporaryDirectory(prefix="nexus-demo-") as tmp:
                _headless(
                    site_path, data_dir or Path(tmp), seed, speed, scenarios[0], duration, warmup
                )
        else:
            _live(
                site_path,
                data_dir or Path("var/demo"),
                host,
                port,
                seed,
                speed,
                scenarios,
                every,
                warmup,
            )
    except NexusError as err:
        raise fail(err) from err


def _live(
    site: Path,
    data_dir: Path,
    host: str,
    port: int,
    seed: int,
    speed: float,
    scenarios: list[str],
    every: float,
    warmup: float,
) -> None:

    from safety_nexus.api.app import create_app

    settings = RuntimeSettings(
        site=site,
        data_dir=data_dir,
        source="simulator",
        simulator=SimulatorSettings(
            seed=seed, speed=speed, scenarios=scenarios, scenario_every=every, warmup=warmup
        ),
    )
    runtime = build_runtime(settings)
    source = runtime.simulator
    assert source is not None
    _warm_up(runtime, source, warmup)
    runtime.start()
    console.print(
        f"[bold]Safety Nexus demo[/] — {runtime.site.site.name}: {len(runtime.table)} signals, "
        f"scenarios {', '.join(scenarios)} every {every:.0f} simulated s at ×{speed:g}"
    )
    console.print(
        f"dashboard: [bold]http://{host}:{port}/[/]   API docs: http://{host}:{port}/docs"
    )
    console.print("press Ctrl+C to stop")
    serve_until_stopped(create_app(runtime), runtime, host=host, port=port)


def _headless(
    site: Path,
    data_dir: Path,
    seed: int,
    speed: float,
    scenario: str,
    duration: float,
    warmup: float,
) -> None:
    settings = RuntimeSettings(
        site=site,
        data_dir=data_dir,
        source="simulator",
        simulator=SimulatorSettings(seed=seed, speed=speed, scenarios=[], warmup=warmup),
    )
    runtime = build_runtime(settings)
    source = runtime.simulator
    assert source is not None
    sim = source.sim
    try:
        _warm_up(runtime, source, warmup)
        window_start = sim.now
        sim.inject(scenario)
        runtime.store.add_event(sim.now, "scenario.injected", "demo", scenario, {})
        findings: list[Finding] = []
        alarms_raised: set[tuple[str, float]] = set()
        steps = math.ceil(duration / sim.tick)
        frames = paced(sim, speed=speed, rows_per_batch=1)  # exact duration, live-like batches
        with sim_progress(f"running {scenario}") as progress:
            task = progress.add_task("run", total=steps)
            done = 0
            for frame in frames:
                batch = runtime.process_frame(source.name, frame)
                findings.extend(batch.findings)
                alarms_raised.update((a.id, a.first_seen) for a in batch.alarms)
                done += frame.n_rows
                progress.update(task, completed=min(done, steps))
                if done >= steps:
                    break
        end = sim.now
        labels = [lb for lb in sim.labels if lb.start >= window_start]
        results = match(labels, findings, until=end)
        _print_summary(runtime, scenario, findings, len(alarms_raised), results, window_start, end)
    finally:
        runtime.stop()


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f} s"


def _print_summary(
    runtime: Runtime,
    scenario: str,
    findings: list[Finding],
    alarms_raised: int,
    results: list[LabelResult],
    start: float,
    end: float,
) -> None:
    d = SCENARIOS[scenario]
    console.print(
        f"\n[bold]{d.id} {d.name}[/] ({d.kind}) — {end - start:.0f} simulated s after injection"
    )
    open_alarms = runtime.alarms.alarms(open_only=True)
    totals = Table(show_header=False, box=None)
    totals.add_row("findings", str(len(findings)))
    totals.add_row("alarms raised", str(alarms_raised))
    earlier = sum(1 for a in open_alarms if a.first_seen < start)
    totals.add_row(
        "alarms open",
        f"{len(open_alarms)}" + (f" ({earlier} raised before the injection)" if earlier else ""),
    )
    detected = sum(r.detected for r in results)
    totals.add_row("labelled signals detected", f"{detected}/{len(results)}")
    console.print(totals)
    per_asset = by_asset(results)
    table = Table(title="detection delay per labelled asset (first finding after onset)")
    for col in ("asset", "effect", "signals", "detected", "first delay", "median delay"):
        table.add_column(col)
    effects: dict[str, set[str]] = {}
    for r in results:
        effects.setdefault(r.asset, set()).add(r.effect)
    for a in per_asset:
        table.add_row(
            a.asset,
            ", ".join(sorted(effects[a.asset])),
            str(a.labelled),
            f"{a.detected}/{a.labelled}",
            _fmt(a.first_delay),
            _fmt(a.median_delay),
        )
    console.print(table)
    if open_alarms:
        top = Table(title="open alarms, most urgent first")
        for col in ("priority", "alarm", "state", "count", "message"):
            top.add_column(col)
        for alarm in open_alarms[:15]:
            top.add_row(
                alarm.priority.label, alarm.id, alarm.state.value, str(alarm.count), alarm.message
            )
        if len(open_alarms) > 15:
            top.caption = f"and {len(open_alarms) - 15} more"
        console.print(top)
