"""The digital twin as one object: step it for telemetry, inject scenarios, read the ground truth.

>>> from safety_nexus.sim.examples import tiny_site
>>> sim = Simulator(tiny_site(), seed=1)
>>> frame = sim.step(10)
>>> frame.values.shape
(10, 7)
>>> run = sim.inject("S4", asset="feeder-1", duration=30)
>>> sorted({label.signal.split(".")[0] for label in run.labels})
['feeder-1', 'main-1', 'pump-1', 'sub-1']

Determinism: the plant, the sensors and each scenario draw from their own PCG64 generators,
seeded from `seed` (and the run number), and every tick does the same work whatever the batch
size, so the same seed and the same `inject` calls give bit-identical frames whether the
simulator is stepped one tick at a time or a thousand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from safety_nexus.core.errors import SimError
from safety_nexus.core.types import F64, Frame
from safety_nexus.sim.faults import Fault, ForeignMessage
from safety_nexus.sim.model import MODELS, Generic, Plant
from safety_nexus.sim.scenarios import Context, ScenarioRun, lookup
from safety_nexus.sim.sensors import SensorBank
from safety_nexus.sim.truth import Label, consequences
from safety_nexus.sim.twin import Twin
from safety_nexus.site.graph import DependencyGraph
from safety_nexus.site.schema import Site
from safety_nexus.site.table import signal_table

DEFAULT_START = datetime(2026, 6, 1, tzinfo=UTC).timestamp()  # a Monday, midnight UTC
WARM_UP = 300.0  # seconds of physics run before `start`, so every delay line holds history
SETTLE = 600.0  # seconds after a physical fault ends that its consequences are still watched
OPEN_HORIZON = 1800.0  # seconds an open-ended physical fault's consequences are watched


def _tz_offset(site: Site, start: float) -> float:
    """Seconds the site's local time is ahead of UTC at `start` (its daily cycles are local)."""
    try:
        tz = ZoneInfo(site.site.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return 0.0
    offset = datetime.fromtimestamp(start, tz).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


class Simulator:
    """The site's physics, its sensors and the scenarios injected into it."""

    def __init__(
        self, site: Site, *, seed: int, start: float = DEFAULT_START, tick: float = 1.0
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise SimError(f"seed must be a non-negative integer, not {seed!r}")
        if not (math.isfinite(tick) and tick > 0):
            raise SimError(f"tick must be a positive number of seconds, not {tick!r}")
        if not math.isfinite(start):
            raise SimError(f"start must be a finite time, not {start!r}")
        self.site = site
        self.seed = int(seed)
        self.start = float(start)
        self.tick = float(tick)
        self.table = signal_table(site)
        self.graph = DependencyGraph(site)
        plant_seed, sensor_seed = np.random.SeedSequence(self.seed).spawn(2)
        plant = Plant(
            site,
            self.table,
            np.random.Generator(np.random.PCG64(plant_seed)),
            self.tick,
            _tz_offset(site, self.start),
            MODELS,
            Generic,
        )
        self._twin = Twin(plant, self.start, self.tick)
        warm = plant.history + math.ceil(WARM_UP / self.tick)
        self._twin.k = -warm
        for k in range(-warm + 1, 1):
            self._twin.advance(k)
        self._sensors = SensorBank(
            self.table, plant.noise, np.random.Generator(np.random.PCG64(sensor_seed)), self.tick
        )
        width = self.table.normal_hi - self.table.normal_lo
        # A consequence is a change a detector could see: beyond one noise sd (or 0.2 % of the
        # band, for signals without sensor noise such as forecasts).
        self._threshold: F64 = np.maximum(self._sensors.sd, 0.002 * width)
        self._k = 0
        self.runs: list[ScenarioRun] = []
        self.labels: list[Label] = []
        self._foreign: list[ForeignMessage] = []

    @property
    def now(self) -> float:
        """Time of the last row reported (the start, before the first step)."""
        return self.start + self._k * self.tick

    @property
    def noise_sd(self) -> F64:
        """Each signal's sensor noise, standard deviation in its unit (a copy)."""
        return self._sensors.sd.copy()

    @property
    def true_values(self) -> F64:
        """The plant's true values at `now`, before sensor noise (a copy; for tests and tools)."""
        return self._twin.plant.truth.copy()

    def step(self, n: int = 1) -> Frame:
        """Advance `n` ticks; one row per tick at `now + tick`, ..., NaN where nothing is
        reported (a signal between its samples, a stale sensor, a dead node)."""
        if n < 1:
            raise SimError(f"cannot step {n} ticks")
        k0 = self._k
        times = self.start + np.arange(k0 + 1, k0 + n + 1, dtype=np.float64) * self.tick
        values = np.empty((n, len(self.table)))
        twin = self._twin
        for i in range(n):
            k = k0 + 1 + i
            twin.advance(k)
            values[i] = self._sensors.measure(k, twin.plant.truth, twin.mods)
            for fault in twin.active:
                self._foreign.extend(fault.foreign(k, float(times[i])))
            self._k = k
        return Frame(times=times, values=values)

    def inject(
        self,
        scenario: str,
        *,
        at: float | None = None,
        seed: int | None = None,
        params: Mapping[str, float | str] | None = None,
        **kwargs: float | str,
    ) -> ScenarioRun:
        """Schedule `scenario` (id or name) to start at `at` (default: now), with its faults
        built from `seed` (default: derived from the simulator's seed and the run number).

        Scenario parameters come as keywords (`inject("S4", asset="feeder-3")`) or, for callers
        holding them in a dict, as `params=` (a `**dict` would also match `at` and `seed`, which
        a type checker rightly refuses)."""
        definition = lookup(scenario)
        values = definition.resolve({**(params or {}), **kwargs})
        when = self.now if at is None else float(at)
        if not math.isfinite(when):
            raise SimError(f"cannot inject at {when}")
        if when < self.now - 1e-9:
            raise SimError(f"cannot inject at {when}: the simulator is already at {self.now}")
        run = len(self.runs) + 1
        if seed is None:
            seed = int(np.random.SeedSequence([self.seed, run]).generate_state(1)[0])
        ctx = Context(
            site=self.site,
            graph=self.graph,
            table=self.table,
            start=self.start,
            tick=self.tick,
            next_k=self._k + 1,
            at=when,
            rng=np.random.Generator(np.random.PCG64(seed)),
            sample_every=self._sensors.every,
            noise_sd=self._sensors.sd,
        )
        plan = definition.build(ctx, values)
        if not plan.faults:
            raise SimError(f"scenario {definition.id} has nothing to do with these parameters")
        labels: dict[str, Label] = {}
        for f in plan.faults:
            if f.EFFECT is None:
                continue
            for signal in f.signals():
                labels.setdefault(
                    signal,
                    Label(
                        scenario=definition.id,
                        run=run,
                        signal=signal,
                        start=self._twin.time(f.start),
                        end=None if f.end is None else self._twin.time(f.end),
                        kind=definition.kind,
                        root_cause=f.root,
                        effect=f.EFFECT,
                    ),
                )
        # Physical faults with one root (a trip, chillers failing together) are measured
        # together and blamed on the plan's root cause; a plan that touches several unrelated
        # assets (a deliberate probe) has each root's consequences measured on their own, so
        # that each label blames the asset whose change caused it.
        by_root: dict[str, list[Fault]] = {}
        for f in plan.faults:
            if f.PHYSICAL:
                by_root.setdefault(f.root, []).append(f)
        groups = (
            list(by_root.items())
            if len(by_root) > 1
            else [(plan.root_cause, faults) for faults in by_root.values()]
        )
        for root, physical in groups:
            ends = [f.end for f in physical]
            horizon = (
                min(f.start for f in physical) + math.ceil(OPEN_HORIZON / self.tick)
                if any(e is None for e in ends)
                else max(e for e in ends if e is not None) + math.ceil(SETTLE / self.tick)
            )
            for moved in consequences(
                self._twin,
                physical,
                horizon,
                self._threshold,
                self.table.limit_lo,
                self.table.limit_hi,
            ):
                signal = self.table.ids[moved.col]
                labels.setdefault(
                    signal,
                    Label(
                        scenario=definition.id,
                        run=run,
                        signal=signal,
                        start=self._twin.time(moved.start),
                        end=None if moved.end is None else self._twin.time(moved.end),
                        kind=definition.kind,
                        root_cause=root,
                        effect=plan.effects.get(signal, moved.effect),
                    ),
                )
        for f in plan.faults:
            self._twin.add(f)
        ends = [f.end for f in plan.faults]
        result = ScenarioRun(
            run=run,
            id=definition.id,
            name=definition.name,
            kind=definition.kind,
            at=self._twin.time(min(f.start for f in plan.faults)),
            end=None
            if any(e is None for e in ends)
            else self._twin.time(max(e for e in ends if e is not None)),
            seed=seed,
            params=values,
            root_cause=plan.root_cause,
            labels=sorted(labels.values(), key=lambda lb: (lb.start, lb.signal)),
        )
        self.runs.append(result)
        self.labels.extend(result.labels)
        return result

    def set_control(self, signal: str, value: float) -> None:
        """The operators authorised `value` for the setpoint or directive that `signal` reports
        (a directive: its state's index): the twin's controller holds it from the next tick on,
        as a real one does once an authorised change reaches it."""
        col = self.table.index.get(signal)
        authorised = self._twin.plant.authorised
        if col is None or np.isnan(authorised[col]):
            raise SimError(f"signal '{signal}' reports no setpoint or directive of the site")
        if not math.isfinite(value):
            raise SimError(f"cannot set '{signal}' to {value}")
        authorised[col] = float(value)

    def foreign_messages(self) -> list[ForeignMessage]:
        """Messages from sources the site does not know, since the last call (drains them)."""
        out, self._foreign = self._foreign, []
        return out
