"""The pipeline's stages. Each takes a batch and returns it, enriched; the builder chains them.

    source → [record telemetry] → [detect] → [record findings] → [alarms] → [publish]

A stage does one thing and never blocks on the network; the chain runs on one worker thread,
so stages need no locking among themselves (the objects they share with the API do their own).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from safety_nexus.alarms.manager import AlarmManager
from safety_nexus.core.types import Alarm, Finding, Frame, Recovery
from safety_nexus.detect.bank import DetectorBank
from safety_nexus.pipeline.hub import EventHub
from safety_nexus.pipeline.metrics import Metrics
from safety_nexus.store.history import HistoryStore
from safety_nexus.store.live import LiveTelemetry
from safety_nexus.store.sqlite import SqliteStore


@dataclass(slots=True)
class Batch:
    """What flows through the chain: one frame and everything learned from it."""

    source: str
    frame: Frame
    findings: list[Finding] = field(default_factory=list)
    finding_ids: list[int] = field(default_factory=list)
    recoveries: list[Recovery] = field(default_factory=list)
    alarms: list[Alarm] = field(default_factory=list)
    # The ingest log's mark of everything this frame completes (see pipeline.ledger), or None.
    mark: int | None = None


class Stage(Protocol):
    name: str

    def run(self, batch: Batch) -> Batch: ...


class RecordTelemetry:
    """Recent telemetry in memory for live trends, all of it on disk for history."""

    name = "telemetry"

    def __init__(self, live: LiveTelemetry, history: HistoryStore, metrics: Metrics) -> None:
        self._live = live
        self._history = history
        self._metrics = metrics

    def run(self, batch: Batch) -> Batch:
        if batch.frame.n_rows == 0:
            return batch
        self._live.append(batch.frame)
        self._history.append(batch.frame, mark=batch.mark)
        self._metrics.samples_processed(batch.source, batch.frame)
        return batch


class Detect:
    """Runs the detector bank.

    The bank needs row times that rise across frames, while ingestion only guarantees order per
    signal: two sources with skewed clocks interleave. Rows at or before the last processed time
    are moved just after it (each detector still sees every signal's samples in order), and
    findings are reported at the samples' own times.
    """

    name = "detect"
    _NUDGE = 1e-6  # seconds; far below any sample period

    def __init__(self, bank: DetectorBank) -> None:
        self._bank = bank
        self._last = bank.last_time  # not -inf after a restart with restored state

    @property
    def last_time(self) -> float:
        return float(self._last)

    def run(self, batch: Batch) -> Batch:
        frame = batch.frame
        if frame.n_rows == 0:
            return batch
        times = frame.times
        remap: dict[float, float] | None = None
        real: np.ndarray | None = None
        if times[0] <= self._last:
            floor = self._last + self._NUDGE * np.arange(1, frame.n_rows + 1)
            effective = np.maximum(times, floor)
            remap = dict(zip(effective.tolist(), times.tolist(), strict=True))
            frame, real = Frame(effective, frame.values), times
        result = self._bank.process(frame, sample_times=real)
        self._last = float(frame.times[-1])
        batch.findings = list(result.findings)
        batch.recoveries = list(result.recoveries)
        if remap is not None:
            batch.findings = [replace(f, time=remap.get(f.time, f.time)) for f in batch.findings]
            batch.recoveries = [
                replace(r, time=remap.get(r.time, r.time)) for r in batch.recoveries
            ]
        return batch


class RecordFindings:
    name = "findings"

    def __init__(self, store: SqliteStore, metrics: Metrics) -> None:
        self._store = store
        self._metrics = metrics

    def run(self, batch: Batch) -> Batch:
        if batch.findings:
            batch.finding_ids = self._store.add_findings(batch.findings)
            self._metrics.findings(batch.findings)
        return batch


class RaiseAlarms:
    name = "alarms"

    def __init__(self, manager: AlarmManager) -> None:
        self._manager = manager

    def run(self, batch: Batch) -> Batch:
        times = batch.frame.times
        now = float(times[-1]) if times.shape[0] else None
        batch.alarms = self._manager.process(batch.findings, batch.recoveries, now=now)
        return batch


class Publish:
    """Findings to live subscribers (alarm changes are published by the manager itself)."""

    name = "publish"

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub

    def run(self, batch: Batch) -> Batch:
        for fid, finding in zip(batch.finding_ids, batch.findings, strict=True):
            self._hub.publish("finding", (fid, finding))
        return batch
