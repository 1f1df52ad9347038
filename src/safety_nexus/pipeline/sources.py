"""Sources that push frames into the pipeline from their own threads.

A source calls `submit(source_name, frame)`; submit blocks while the pipeline's queue is full,
which is how a fast replay or simulator is slowed to what the pipeline can take.
HTTP batches do not come through here: the API hands them to `Runtime.ingest_json`; a replay is
a subscribing source (`ingest.intake.LiveSource`) like MQTT and OPC UA.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from safety_nexus.core.errors import IngestError, NotFoundError
from safety_nexus.core.types import Frame, SignalTable
from safety_nexus.ingest.intake import Intake
from safety_nexus.ingest.json_batch import ParsedBatch
from safety_nexus.sim import SCENARIOS, Simulator, paced

Submit = Callable[[str, Frame], None]


class Source(Protocol):
    name: str

    def run(self, submit: Submit, stop: threading.Event) -> None:
        """Push frames until exhausted or `stop` is set."""
        ...


@dataclass(frozen=True, slots=True)
class Injection:
    scenario: str
    params: dict[str, float | str] = field(default_factory=dict)


@dataclass(slots=True)
class ScenarioSchedule:
    """Inject the scenarios in turn, one every `every` simulated seconds, forever."""

    scenarios: list[str]
    every: float
    first_after: float = 30.0
    _next_at: float | None = None
    _turn: int = 0

    def due(self, now: float) -> str | None:
        if not self.scenarios:
            return None
        if self._next_at is None:
            self._next_at = now + self.first_after
        if now < self._next_at:
            return None
        name = self.scenarios[self._turn % len(self.scenarios)]
        self._turn += 1
        self._next_at = now + self.every
        return name


class SimulatorSource:
    """The digital twin as a live source: paced to wall time × speed, scenarios on a schedule.

    Injections requested from other threads (the API) are queued and applied between steps by
    the source's own thread, so the simulator itself is only ever touched by one thread.
    """

    name = "simulator"

    def __init__(
        self,
        sim: Simulator,
        *,
        speed: float,
        rows_per_batch: int = 1,
        schedule: ScenarioSchedule | None = None,
        on_inject: Callable[[str, float, dict[str, float | str]], None] | None = None,
    ) -> None:
        self.sim = sim
        self.speed = speed
        self.rows_per_batch = rows_per_batch
        self.schedule = schedule
        self._on_inject = on_inject
        self._pending: queue.Queue[Injection] = queue.Queue()

    def request(self, scenario: str, **params: float | str) -> None:
        if scenario not in SCENARIOS:
            known = ", ".join(sorted({d.id for d in SCENARIOS.values()}))
            raise NotFoundError(f"unknown scenario '{scenario}' (known: {known})")
        self._pending.put(Injection(scenario, dict(params)))

    def _apply_pending(self) -> None:
        while True:
            try:
                inj = self._pending.get_nowait()
            except queue.Empty:
                return
            self._inject(inj.scenario, inj.params)

    def _inject(self, scenario: str, params: dict[str, float | str]) -> None:
        self.sim.inject(scenario, params=params)
        if self._on_inject is not None:
            self._on_inject(scenario, self.sim.now, params)

    def run(self, submit: Submit, stop: threading.Event) -> None:
        self._apply_pending()
        for frame in paced(self.sim, speed=self.speed, rows_per_batch=self.rows_per_batch):
            submit(self.name, frame)
            if stop.is_set():
                return
            self._apply_pending()
            if self.schedule is not None:
                due = self.schedule.due(self.sim.now)
                if due is not None:
                    self._inject(due, {})


class ReplaySource:
    """A recorded wide file (timestamp + one column per signal id), CSV or Parquet, replayed
    through the same intake as live sources (`ingest.intake`): the same data-quality screen,
    reorder buffer and backpressure. Read in bounded chunks by `ingest.wide.WideReader`, so a
    file of any length replays in constant memory. Columns that name no signal of the site are
    reported as phantoms (and skipped), never silently dropped. Not written ahead: the file
    itself is the log, and a restart resumes after `start_after`."""

    name = "replay"

    def __init__(
        self, path: Path, table: SignalTable, *, start_after: float = float("-inf")
    ) -> None:
        self.path = path
        self.table = table
        # Rows at or before this time are skipped (a restart with restored detector state).
        self.start_after = start_after

    def run(self, intake: Intake, stop: threading.Event) -> None:
        from safety_nexus.ingest.wide import WideReader  # pyarrow import kept off start-up

        with WideReader(self.path) as reader:
            found = [self.table.index.get(name) for name in reader.columns]
            for name, col in zip(reader.columns, found, strict=True):
                if col is None:
                    intake.phantom(
                        self.name, name, f"column of {self.path.name} names no signal of the site"
                    )
            take = np.array([i for i, col in enumerate(found) if col is not None], dtype=np.intp)
            signal_of = np.array([col for col in found if col is not None], dtype=np.int64)
            for chunk in reader:
                if stop.is_set():
                    return
                first = int(np.searchsorted(chunk.times, self.start_after, side="right"))
                values = chunk.values[first:, take]
                rows, k = np.nonzero(~np.isnan(values))
                batch = ParsedBatch(
                    self.name, signal_of[k], chunk.times[first:][rows], values[rows, k]
                )
                intake.ingest_parsed(batch, wait=True, log=False)


def check_frame(frame: Frame, table: SignalTable) -> None:
    if frame.n_signals != len(table):
        raise IngestError(f"frame has {frame.n_signals} columns, the site has {len(table)} signals")
    if frame.n_rows > 1 and not np.all(np.diff(frame.times) > 0):
        raise IngestError("frame times must be strictly increasing", reason="out_of_order")
