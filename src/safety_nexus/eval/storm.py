"""Alarm storms: raw findings against alarms shown, and whether every root cause was shown.

One run: the simulator and the detector bank warm up for `lead` seconds; the alarm manager (the
product's own, with the site's dependency graph, on an in-memory store) joins `watch_before`
seconds before the injection, so the background alarms of a normal day are there too; then one
or more cascades are injected (an asset trips and takes what depends on it along) and watched
until their faults stop plus `settle` seconds.

Measured per run, over the watched window:

* raw: findings the bank raised, and their peak in any 10 minutes;
* shown: annunciations (alarms that appeared on an operator's list needing attention, journal
  kind "alarm.unacknowledged"), their peak in any 10 minutes at one operator position
  (ISA-18.2 counts per position), and the time spent above `flood_limit` per 10 minutes;
* root causes: a ground-truth root (the asset that tripped) counts as *shown* when an alarm on
  that asset was annunciated after the injection as a root (not a consequence of another
  alarm) and no alarm of that asset was moved under another one's root while its fault lasted;
  the delay is from the injection to that annunciation. A root whose trip moved no
  signal (nothing labelled) is reported and not judged.

Randomised cascades draw the tripped asset among those with at least `min_downstream`
dependants, the time of day, the duration and (with probability `second_root`) a second,
independent cascade minutes later on an asset neither upstream nor downstream of the first.
Everything follows from the seed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from safety_nexus.alarms.config import AlarmConfig
from safety_nexus.alarms.manager import AlarmManager
from safety_nexus.core.clock import ManualClock
from safety_nexus.core.errors import EvalError
from safety_nexus.core.types import Finding, Recovery
from safety_nexus.detect import DetectConfig, DetectorBank
from safety_nexus.pipeline.watch_config import readback_signals, without_statistics
from safety_nexus.sim import DEFAULT_START, Simulator
from safety_nexus.site.graph import DependencyGraph
from safety_nexus.site.schema import Site
from safety_nexus.store.sqlite import SqliteStore

WINDOW = 600.0  # seconds: ISA-18.2's ten minutes
STEP = 60  # simulator ticks per frame handed to the bank


@dataclass(frozen=True, slots=True)
class Cascade:
    """One trip to inject: `asset` trips `offset` seconds after the first injection."""

    asset: str
    offset: float = 0.0
    duration: float = 600.0


@dataclass(frozen=True, slots=True)
class StormPlan:
    name: str  # "S4" or "random-<i>"
    seed: int
    hour: float  # time of day of the first injection
    cascades: tuple[Cascade, ...]


@dataclass(slots=True)
class RootResult:
    asset: str
    labelled: int  # signals the trip moved (ground truth)
    shown: bool
    delay: float | None  # seconds from its injection to its annunciation as a root
    first: bool  # the first alarm annunciated after its injection was this root's


@dataclass(slots=True)
class StormRun:
    plan: StormPlan
    findings: int
    findings_peak_10min: int
    alarms_raised: int  # distinct alarms with any finding in the window
    shown: int  # annunciations in the window
    shown_peak_10min: int  # most annunciations in any 10 minutes at one position
    minutes_over_limit: float  # time during which the last 10 minutes held > flood_limit
    roots: list[RootResult] = field(default_factory=list)
    watched: float = 0.0  # seconds

    @property
    def every_root_shown(self) -> bool:
        return all(r.shown for r in self.roots if r.labelled)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        out["every_root_shown"] = self.every_root_shown
        return out


@dataclass(slots=True)
class StormSummary:
    runs: list[StormRun]
    limit: int

    @property
    def worst_peak(self) -> int:
        return max((r.shown_peak_10min for r in self.runs), default=0)

    @property
    def roots_judged(self) -> int:
        return sum(1 for r in self.runs for root in r.roots if root.labelled)

    @property
    def roots_shown(self) -> int:
        return sum(1 for r in self.runs for root in r.roots if root.labelled and root.shown)

    @property
    def passed(self) -> bool:
        return self.worst_peak <= self.limit and self.roots_shown == self.roots_judged

    def to_dict(self) -> dict[str, Any]:
        delays = [root.delay for r in self.runs for root in r.roots if root.delay is not None]
        return {
            "runs": len(self.runs),
            "limit_per_10min": self.limit,
            "worst_shown_peak_10min": self.worst_peak,
            "median_shown_peak_10min": float(np.median([r.shown_peak_10min for r in self.runs]))
            if self.runs
            else None,
            "worst_findings_peak_10min": max((r.findings_peak_10min for r in self.runs), default=0),
            "findings": sum(r.findings for r in self.runs),
            "shown": sum(r.shown for r in self.runs),
            "roots_judged": self.roots_judged,
            "roots_shown": self.roots_shown,
            "roots_first": sum(1 for r in self.runs for root in r.roots if root.first),
            "median_root_delay": float(np.median(delays)) if delays else None,
            "passed": self.passed,
            "per_run": [r.to_dict() for r in self.runs],
        }


def s4_plans(seeds: Sequence[int], hours: Sequence[float] = (2.0, 8.0, 17.0)) -> list[StormPlan]:
    """The S4 scenario as defined (sub-1 trips for 10 minutes), one run per seed."""
    return [
        StormPlan("S4", seed, hours[i % len(hours)], (Cascade("sub-1", 0.0, 600.0),))
        for i, seed in enumerate(seeds)
    ]


def random_plans(
    site: Site,
    count: int,
    seed: int,
    *,
    min_downstream: int = 3,
    second_root: float = 0.3,
) -> list[StormPlan]:
    """`count` randomised cascades (see the module doc), reproducible from `seed`."""
    graph = DependencyGraph(site)
    candidates = [a for a in graph.assets if len(graph.downstream(a)) >= min_downstream]
    if not candidates:
        raise EvalError(f"no asset of the site has {min_downstream} or more dependants")
    rng = np.random.default_rng(seed)
    plans = []
    for i in range(count):
        first = str(rng.choice(candidates))
        cascades = [Cascade(first, 0.0, float(rng.uniform(300.0, 1800.0)))]
        if rng.random() < second_root:
            related = {first, *graph.downstream(first), *graph.upstream(first)}
            others = [
                a
                for a in candidates
                if a not in related and not related & {*graph.downstream(a), *graph.upstream(a)}
            ]
            if others:
                cascades.append(
                    Cascade(
                        str(rng.choice(others)),
                        float(rng.uniform(60.0, 600.0)),
                        float(rng.uniform(300.0, 1800.0)),
                    )
                )
        plans.append(
            StormPlan(
                f"random-{i + 1}",
                int(rng.integers(1, 2**31)),
                float(rng.uniform(0.0, 24.0)),
                tuple(cascades),
            )
        )
    return plans


def run_storm(
    site: Site,
    plan: StormPlan,
    *,
    lead: float = 7200.0,
    watch_before: float = 1800.0,
    settle: float = 600.0,
    alarm_config: AlarmConfig | None = None,
    detect_config: DetectConfig | None = None,
) -> StormRun:
    """One storm, as described in the module doc."""
    if lead < watch_before:
        raise EvalError("the lead must be at least the time watched before the injection")
    config = alarm_config or AlarmConfig()
    inject_at = DEFAULT_START + plan.hour * 3600.0
    sim = Simulator(site, seed=plan.seed, start=inject_at - lead)
    bank = DetectorBank(sim.table, detect_config or DetectConfig())
    readbacks = readback_signals(sim.site)
    store = SqliteStore(":memory:")
    clock = ManualClock(sim.now)
    manager = AlarmManager(sim.table, store, clock, graph=DependencyGraph(site), config=config)
    try:
        watch_from = inject_at - watch_before
        while sim.now < watch_from:
            bank.process(sim.step(STEP))
        runs = []
        stop = inject_at
        finding_times: list[float] = []
        raised: set[str] = set()
        pending = sorted(plan.cascades, key=lambda c: c.offset)
        while pending or sim.now < stop:
            while pending and sim.now >= inject_at + pending[0].offset - 1e-9:
                c = pending.pop(0)
                run = sim.inject("S4", asset=c.asset, duration=c.duration)
                runs.append((c, run))
                end = run.end if run.end is not None else run.at + c.duration
                stop = max(stop, end + settle)
            frame = sim.step(STEP)
            result = bank.process(frame)
            findings = without_statistics(result.findings, readbacks)
            # the manager sees each second as the live pipeline does, row by row
            _feed(manager, clock, findings, result.recoveries, frame.times.tolist())
            finding_times += [f.time for f in findings]
            raised |= {f"{f.asset}:{f.kind.value}" for f in findings}
        annunciated = store.events(kind="alarm.unacknowledged", since=watch_from, limit=1_000_000)
        annunciated.sort(key=lambda e: (e.time, e.id))
        by_position: dict[str, list[float]] = {}
        for e in annunciated:
            by_position.setdefault(str(e.data.get("position", "")), []).append(e.time)
        peaks = [_peak(times) for times in by_position.values()]
        over = sum(
            _time_over(times, config.flood_alarms, sim.now) for times in by_position.values()
        )
        roots = []
        moved = store.events(kind="alarm.suppressed", since=watch_from, limit=1_000_000)
        for cascade, run in runs:
            end = run.end if run.end is not None else run.at + cascade.duration
            demoted = any(
                e.data.get("asset") == cascade.asset
                and str(e.data.get("root_cause", cascade.asset)).split(":")[0] != cascade.asset
                and run.at <= e.time < end  # a fault is active on [at, end)
                for e in moved
            )
            as_root = [
                e
                for e in annunciated
                if e.time >= run.at
                and e.data.get("asset") == cascade.asset
                and "root_cause" not in e.data
            ]
            after = [e for e in annunciated if e.time >= run.at]
            roots.append(
                RootResult(
                    asset=cascade.asset,
                    labelled=len(run.labels),
                    shown=bool(as_root) and not demoted,
                    delay=as_root[0].time - run.at if as_root else None,
                    first=bool(after) and after[0].data.get("asset") == cascade.asset,
                )
            )
        return StormRun(
            plan=plan,
            findings=len(finding_times),
            findings_peak_10min=_peak(sorted(finding_times)),
            alarms_raised=len(raised),
            shown=len(annunciated),
            shown_peak_10min=max(peaks, default=0),
            minutes_over_limit=over / 60.0,
            roots=roots,
            watched=sim.now - watch_from,
        )
    finally:
        store.close()


def run_all(
    site: Site,
    plans: Sequence[StormPlan],
    *,
    limit: int = 10,
    on_done: Callable[[StormRun], None] | None = None,
    workers: int = 1,
    **kwargs: Any,
) -> StormSummary:
    """Every plan, in `workers` processes (1: in this one); results in plan order."""
    runs: list[StormRun] = []
    if workers <= 1:
        for plan in plans:
            r = run_storm(site, plan, **kwargs)
            runs.append(r)
            if on_done is not None:
                on_done(r)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [pool.submit(run_storm, site, p, **kwargs) for p in plans]
            for fut in futures:
                r = fut.result()
                runs.append(r)
                if on_done is not None:
                    on_done(r)
    return StormSummary(runs, limit)


def _feed(
    manager: AlarmManager,
    clock: ManualClock,
    findings: Sequence[Finding],
    recoveries: Sequence[Recovery],
    ticks: Sequence[float],
) -> None:
    """Hand a frame's findings and recoveries to the manager one time stamp at a time, and
    let every tick of the frame pass as a live pipeline fed once a tick would (delays and
    shelves run out on time)."""
    by_time: dict[float, tuple[list[Finding], list[Recovery]]] = {t: ([], []) for t in ticks}
    for f in findings:
        by_time.setdefault(f.time, ([], []))[0].append(f)
    for r in recoveries:
        by_time.setdefault(r.time, ([], []))[1].append(r)
    for t in sorted(by_time):
        clock.set(t)
        manager.process(*by_time[t], now=t)


def _peak(times: Sequence[float]) -> int:
    """The most events in any half-open window of 10 minutes (times sorted)."""
    if not times:
        return 0
    t = np.asarray(times, dtype=np.float64)
    ends = np.searchsorted(t, t + WINDOW, side="left")
    return int((ends - np.arange(t.shape[0])).max())


def _time_over(times: Sequence[float], limit: int, until: float) -> float:
    """Seconds during which the preceding 10 minutes held more than `limit` events."""
    if len(times) <= limit:
        return 0.0
    t = np.asarray(times, dtype=np.float64)
    total = 0.0
    # the count over (x - WINDOW, x] changes only at event times and at event times + WINDOW
    points = np.unique(np.concatenate([t, t + WINDOW, [until]]))
    points = points[points <= until]
    for a, b in itertools.pairwise(points):
        count = np.searchsorted(t, a, side="right") - np.searchsorted(t, a - WINDOW, "right")
        if count > limit:
            total += float(b - a)
    return total
