"""The running system: a worker thread pushing batches through the stage chain.

Sources (the simulator, a replay) run on their own threads and block when the bounded queue is
full; HTTP batches are validated on the caller's thread and refused with 503 when it is full, so
nothing is accepted that cannot be processed. The worker owns the detector bank and is the only
writer of findings and detector-driven alarm changes.

HTTP samples pass a reorder buffer (`reorder_tolerance` seconds, see `ingest.reorder`) that is
flushed on stop. The bank's state is saved to `state_path` every `state_interval` seconds of the
runtime's clock (by the worker, between batches) and on stop, so that the next start restores it
(see `builder.restore_bank`) instead of opening a new warm-up blind period.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from safety_nexus.alarms.manager import AlarmManager
from safety_nexus.alarms.notify import Notifier
from safety_nexus.control.config_integrity import ConfigurationRegistry
from safety_nexus.core.clock import Clock, ManualClock
from safety_nexus.core.errors import IngestError, NexusError, StoreError
from safety_nexus.core.types import Alarm, Finding, FindingKind, Frame, Priority, SignalTable
from safety_nexus.detect.bank import DetectorBank
from safety_nexus.ingest.frames import FrameAssembler
from safety_nexus.ingest.intake import LiveSource
from safety_nexus.ingest.json_batch import ParsedBatch
from safety_nexus.ingest.parse_pool import ParsePool
from safety_nexus.ingest.quality import ClockSkewError, QualityScreen
from safety_nexus.ingest.throttle import Throttle
from safety_nexus.pipeline.hub import EventHub
from safety_nexus.pipeline.ledger import DuplicateBatch, IngestLedger
from safety_nexus.pipeline.metrics import Metrics
from safety_nexus.pipeline.sources import SimulatorSource, Source, check_frame
from safety_nexus.pipeline.stages import Batch, Detect, Stage
from safety_nexus.site.schema import Site, SourceKind
from safety_nexus.store.history import HistoryStore
from safety_nexus.store.live import LiveTelemetry
from safety_nexus.store.sqlite import SqliteStore

log = logging.getLogger(__name__)

_STOP = object()
_WAKE = object()  # a finding was reported: process it even if no telemetry comes
# Names the runtime itself gives batches: anonymous HTTP batches and the configured replay.
_OWN_SOURCES = frozenset({"http", "replay"})


def _empty_frame(table: SignalTable) -> Frame:
    return Frame(np.empty(0), np.empty((0, len(table))))


@dataclass(frozen=True, slots=True)
class SubsystemStatus:
    id: str
    name: str
    status: str  # "normal" or the label of the highest open alarm priority
    open_alarms: dict[str, int]
    assets_abnormal: int
    assets_total: int


@dataclass(frozen=True, slots=True)
class Status:
    time: float
    subsystems: list[SubsystemStatus]


class Runtime:
    def __init__(
        self,
        *,
        site: Site,
        table: SignalTable,
        clock: Clock,
        store: SqliteStore,
        live: LiveTelemetry,
        history: HistoryStore,
        bank: DetectorBank,
        alarms: AlarmManager,
        hub: EventHub,
        metrics: Metrics,
        stages: Sequence[Stage],
        sources: Sequence[Source] = (),
        live_sources: Sequence[LiveSource] = (),
        queue_size: int = 256,
        idle_tick: float = 5.0,
        reorder_tolerance: float = 0.0,
        state_path: Path | None = None,
        state_interval: float = 60.0,
        ledger: IngestLedger | None = None,
        quality: QualityScreen | None = None,
        configuration: ConfigurationRegistry | None = None,
        parse_workers: int = 0,
        notifier: Notifier | None = None,
    ) -> None:
        self.site = site
        self.table = table
        self.clock = clock
        self.store = store
        self.live = live
        self.history = history
        self.bank = bank
        self.alarms = alarms
        self.hub = hub
        self.metrics = metrics
        self.stages = list(stages)
        self.sources = list(sources)
        self.live_sources = list(live_sources)
        self.idle_tick = idle_tick
        self.assembler = FrameAssembler(table, reorder_tolerance)
        # Large HTTP bodies are parsed in worker processes (0: on the request's thread).
        self.parsers = ParsePool(table, parse_workers)
        self._ingest_lock = threading.Lock()  # releases from the reorder buffer stay in order
        self.state_path = state_path
        self.state_interval = state_interval
        self._state_saved_at = clock.now()
        self._queue: queue.Queue[Batch | object] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._stopped = False  # stop() has run: a second call does nothing
        self._threads: list[threading.Thread] = []
        self._idle = threading.Condition()
        self._pending = 0
        self._failure: BaseException | None = None
        self._reports_lock = threading.Lock()
        self._reports: list[Finding] = []
        self.phantoms = Throttle(300.0)  # one report per phantom name per 5 minutes
        self.merge_rows = 64  # queued frames merge into batches of up to this many rows
        self.drain_seconds = 10.0  # how long `stop` works through a backlog (write-ahead on)
        self._drain_until = float("inf")
        self._left_behind = 0  # a batch the worker took but left to the log (see stop)
        self.ledger = ledger or IngestLedger(None, store)
        self.quality = quality or QualityScreen(table, max_ahead=None)
        # The authorised setpoints and directives (control.config_integrity); None: not tracked.
        self.configuration = configuration
        # Alarm notifications (alarms.notify): subscribed by the builder, closed on stop.
        self.notifier = notifier
        # Declared HTTP-side sources: a batch that names another source is a phantom.
        self._http_sources = {
            s.id for s in site.sources if s.kind in (SourceKind.HTTP, SourceKind.PROMETHEUS)
        }
        self._all_sources = {s.id: s for s in site.sources}
        alarms.subscribe(self._on_alarm)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def simulator(self) -> SimulatorSource | None:
        return next((s for s in self.sources if isinstance(s, SimulatorSource)), None)

    def start(self) -> None:
        self.recover()
        if self.notifier is not None:
            self.notifier.start()
        worker = threading.Thread(target=self._work, name="nexus-pipeline", daemon=True)
        worker.start()
        self._threads.append(worker)
        for src in self.sources:
            t = threading.Thread(
                target=self._run_source, args=(src,), name=f"nexus-{src.name}", daemon=True
            )
            t.start()
            self._threads.append(t)
        for live in self.live_sources:
            t = threading.Thread(
                target=self._run_live, args=(live,), name=f"nexus-{live.name}", daemon=True
            )
            t.start()
            self._threads.append(t)
        self.store.add_event(self.clock.now(), "runtime.started", "system", self.site.site.name, {})

    def stop(self) -> None:
        """Stop sources, drain what was accepted, flush history, close storage.

        With the write-ahead log, draining a backlog stops after `drain_seconds`: what is left
        is on disk and the next start processes it (`recover`), so a stop under overload is
        prompt. Without the log, everything accepted is processed first, however long it takes.
        A second call does nothing.
        """
        if self._stopped:
            return
        self._stopped = True
        self._drain_until = time.monotonic() + self.drain_seconds
        self._stop.set()
        self.parsers.close()
        if self._threads:
            with contextlib.suppress(queue.Full):
                self._queue.put(_STOP, timeout=1.0)  # a full queue: the worker sees the flag
            worker, *others = self._threads
            for t in others:
                t.join(timeout=10)
            worker.join()
            self._threads.clear()
        left = self._queue.qsize() + self._left_behind
        if left:
            log.warning("stopping with %d batch(es) unprocessed: the next start replays them", left)
            self.store.add_event(
                self.clock.now(),
                "runtime.backlog_left",
                "system",
                self.site.site.name,
                {"batches": left, "held_samples": self.assembler.held},
            )
        else:
            with self._ingest_lock:
                rest = self.assembler.flush()
                mark = self.ledger.released(self.assembler.oldest_held)
            if rest.n_rows or self._reports:  # nothing accepted or reported is lost
                self._process_safely(Batch(source="http", frame=rest, mark=mark))
        if self.state_path is not None:
            self.save_state(journal=True)
        if self.notifier is not None:  # after the last alarms, before the journal closes
            self.notifier.close()
        self.store.add_event(self.clock.now(), "runtime.stopped", "system", self.site.site.name, {})
        self.history.close()
        self.ledger.trim(self.history.durable_mark)
        self.ledger.close()
        self.store.close()

    def recover(self) -> int:
        """Process batches that were acknowledged but had not reached the history when the
        last run ended (a crash): see `pipeline.ledger`. Runs before the worker starts; returns
        the number of samples processed again."""
        now = self.clock.now()
        batches = samples = skipped = 0
        for rec in self.ledger.recover(self.history, time=now):
            batches += 1
            skipped += rec.skipped
            if not len(rec.batch):
                continue
            samples += len(rec.batch)
            with self._ingest_lock:
                b = rec.batch
                frame = self.assembler.push(b.columns, b.times, b.values, now=now)
                mark = self.ledger.released(self.assembler.oldest_held)
            if frame.n_rows:
                self._process_safely(Batch(source=b.source, frame=frame, mark=mark))
        if batches:
            log.info(
                "recovered %d logged batch(es): %d sample(s) processed again, %d already stored",
                batches,
                samples,
                skipped,
            )
            self.store.add_event(
                now,
                "ingest.recovered",
                "system",
                self.site.site.name,
                {"batches": batches, "samples": samples, "already_stored": skipped},
            )
        return samples

    def _run_source(self, source: Source) -> None:
        try:
            source.run(self.submit_frame, self._stop)
        except NexusError as err:
            log.error("source %s stopped: %s", source.name, err)
            self._failure = err

    def _run_live(self, source: LiveSource) -> None:
        try:
            source.run(self, self._stop)
        except NexusError as err:
            log.error("source %s stopped: %s", source.name, err)
            self._failure = err

    # -- input -------------------------------------------------------------------------------

    def submit_frame(self, source: str, frame: Frame) -> None:
        """Queue a frame from a source thread; blocks while the queue is full."""
        check_frame(frame, self.table)
        self.assembler.observe(frame)
        self._enqueue(Batch(source=source, frame=frame), block=True)

    def process_frame(self, source: str, frame: Frame) -> Batch:
        """Process a frame synchronously on the calling thread (warm-up, headless runs, tests).

        Only while the worker is not running: the bank is not shared between threads.
        """
        check_frame(frame, self.table)
        self.assembler.observe(frame)
        return self.process(Batch(source=source, frame=frame))

    def ingest_json(
        self,
        body: bytes,
        *,
        source: str | None = None,
        sequence: int | None = None,
        digest: str = "",
    ) -> int:
        """Validate an HTTP JSON batch and queue it. Returns the number of samples accepted.
        `source` is the sender the request's headers name (see `ingest.auth`); the body's own
        `source` field must agree with it. `sequence` and `digest` give exactly-once delivery
        (see `pipeline.ledger`)."""
        try:
            parsed = self.parsers.json(body)
            if source is not None:
                if parsed.source not in ("http", source):
                    raise IngestError(
                        f"the body names source '{parsed.source[:64]}' but the request was"
                        f" sent as '{source}'",
                        "source_mismatch",
                    )
                parsed = replace(parsed, source=source)
        except IngestError as err:
            self._phantom_signal(source or "http", err)
            self.metrics.reject(err.reason)
            raise
        return self.ingest_parsed(parsed, sequence=sequence, digest=digest)

    def ingest_lineprotocol(
        self,
        body: bytes,
        *,
        precision: str = "ns",
        source: str | None = None,
        sequence: int | None = None,
        digest: str = "",
    ) -> int:
        """Validate an InfluxDB line-protocol batch and queue it (see `ingest.lineprotocol`).
        `source` names a site source whose `map` renames external names; lines without a
        timestamp take the runtime clock's time. Returns the number of samples accepted."""
        try:
            names: dict[str, str] = {}
            if source is not None:
                declared = self._all_sources.get(source)
                if declared is None:
                    self.phantom(source, "(source)", "line-protocol batch from an unknown source")
                    raise IngestError(f"unknown source '{source[:64]}'", "unknown_source")
                names = declared.map
            parsed = self.parsers.line_protocol(
                body,
                now=self.clock.now(),
                precision=precision,
                source=source or "http",
                names=names,
            )
        except IngestError as err:
            self._phantom_signal(source or "http", err)
            self.metrics.reject(err.reason)
            raise
        return self.ingest_parsed(parsed, sequence=sequence, digest=digest)

    def _phantom_signal(self, source: str, err: IngestError) -> None:
        """A batch refused for naming a signal the site does not have is also a phantom."""
        if err.reason == "unknown_signal":
            self.phantom(source, err.subject or "(signal)", str(err))

    def ingest_parsed(
        self,
        parsed: ParsedBatch,
        *,
        wait: bool = False,
        sequence: int | None = None,
        digest: str = "",
        log: bool = True,
    ) -> int:
        """Accept a validated batch of any format: screen its data quality, log it ahead,
        record its sequence, and queue what the reorder buffer releases. With `wait` a full
        pipeline blocks the caller (a subscribing source's thread) instead of refusing it.
        `log=False` skips the write-ahead log for sources that are their own log (a replayed
        file). Returns the samples accepted; raises IngestError (`DuplicateBatch` for a resend
        of a batch already accepted)."""
        try:
            self._check_source(parsed)
            if len(parsed) == 0:
                return 0
            try:
                screened = self.quality.screen(parsed, self.clock.now())
            except ClockSkewError as err:
                for finding in err.findings:
                    self.report(finding)
                raise
            for finding in screened.findings:
                self.report(finding)
            if screened.removed:
                self.reject("out_of_range", screened.removed)
            parsed = screened.batch
            while wait and self._queue.full() and not self._stop.is_set():
                time.sleep(0.005)  # backpressure: the caller stops reading its protocol
            with self._ingest_lock:
                if sequence is not None:
                    self.ledger.check(parsed.source, sequence, digest)
                if self._queue.full():  # refuse before anything is taken
                    raise IngestError(
                        "pipeline is at capacity, retry shortly", reason="busy", status=503
                    )
                if len(parsed):
                    self.assembler.check(parsed.columns, parsed.times, parsed.values)
                now = self.clock.now()
                try:
                    self.ledger.record(parsed, sequence=sequence, digest=digest, time=now, log=log)
                except StoreError as err:
                    raise IngestError(
                        f"cannot write the batch ahead: {err}", "log_failed", 503
                    ) from err
                if len(parsed):
                    frame = self.assembler.push(parsed.columns, parsed.times, parsed.values, now)
                    mark = self.ledger.released(self.assembler.oldest_held)
                    if frame.n_rows:
                        # Accepted samples must not be dropped: wait for room (briefly, the
                        # queue had some a moment ago) rather than refuse what was released.
                        self._enqueue(
                            Batch(source=parsed.source, frame=frame, mark=mark), block=True
                        )
        except DuplicateBatch:
            self.metrics.reject("duplicate")
            raise
        except IngestError as err:
            self.metrics.reject(err.reason)
            raise
        self.metrics.accepted.labels(parsed.source).inc(len(parsed))
        return len(parsed)

    def admit(self) -> None:
        """Refuse a request before its body is read when the pipeline is full (503 with
        Retry-After): under overload a refusal must cost next to nothing, or refusing would
        itself eat the capacity the pipeline needs to catch up."""
        if self._queue.full():
            self.metrics.reject("busy")
            raise IngestError("pipeline is at capacity, retry shortly", reason="busy", status=503)

    def _check_source(self, parsed: ParsedBatch) -> None:
        """A batch that names a source must come from one the site declares (when it declares
        any HTTP-side sources); an unknown one is a phantom, and its data is refused."""
        if parsed.source in _OWN_SOURCES or not self._http_sources:
            return
        if parsed.source in self._all_sources:
            return
        self.phantom(parsed.source, "(source)", f"{len(parsed)} sample(s) from an unknown source")
        raise IngestError(f"unknown source '{parsed.source[:64]}'", "unknown_source", 401)

    def reject(self, reason: str, count: int = 1) -> None:
        """Samples a source refused before they became a batch, counted by reason."""
        if count > 0:
            self.metrics.rejected.labels(reason).inc(count)

    def phantom(self, source: str, seen: str, detail: str) -> None:
        """Data from something the site does not declare: counted always, reported as a
        "phantom source" finding (and journalled) at most once per `phantoms.every` seconds per
        source and name, so a chatty unknown device cannot flood the findings."""
        source, seen = source[:64], seen[:160]
        self.metrics.phantom.labels(source).inc()
        now = self.clock.now()
        if not self.phantoms.due((source, seen), now):
            return
        self.report(
            Finding(
                time=now,
                signal=f"{source}/{seen}",
                asset=source,
                kind=FindingKind.PHANTOM,
                score=1.0,
                observed=1.0,
                baseline=0.0,
                sigma=0.0,
                detector="ingest",
                context=detail[:300],
            )
        )
        self.store.add_event(now, "ingest.phantom", source, seen, {"detail": detail[:300]})

    def report(self, finding: Finding) -> None:
        """A finding raised outside the detector bank (ingestion, configuration integrity):
        the worker passes it through the same chain (stored, alarmed, published)."""
        with self._reports_lock:
            self._reports.append(finding)
        if not self._threads:
            return  # no worker: the next `process` call takes it
        with self._idle:
            self._pending += 1  # until the worker has taken the wake-up (see wait_idle)
        try:
            self._queue.put_nowait(_WAKE)
        except queue.Full:  # the worker is busy and takes the report with its next batch
            with self._idle:
                self._pending -= 1

    def _take_reports(self) -> list[Finding]:
        with self._reports_lock:
            out, self._reports = self._reports, []
        return out

    def _enqueue(self, batch: Batch, *, block: bool) -> None:
        with self._idle:
            self._pending += 1
        try:
            self._queue.put(batch, block=block, timeout=None if block else 0)
        except queue.Full:
            with self._idle:
                self._pending -= 1
            raise IngestError(
                "pipeline is at capacity, retry shortly", reason="busy", status=503
            ) from None
        self.metrics.queue_depth.set(self._queue.qsize())

    # -- processing --------------------------------------------------------------------------

    def process(self, batch: Batch) -> Batch:
        """Run one batch through the chain on the calling thread (the worker, or a test)."""
        if isinstance(self.clock, ManualClock) and batch.frame.n_rows:
            self.clock.set(float(batch.frame.times[-1]))
        started = time.perf_counter()
        reports = self._take_reports()
        if reports:
            self._run_chain(
                Batch(source="ingest", frame=_empty_frame(self.table), findings=reports)
            )
        batch = self._run_chain(batch)
        if batch.mark is not None:
            self.ledger.trim(self.history.durable_mark)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        if (
            self.state_path is not None
            and self.clock.now() - self._state_saved_at >= self.state_interval
        ):
            self.save_state()
        return batch

    def _run_chain(self, batch: Batch) -> Batch:
        for stage in self.stages:
            batch = stage.run(batch)
        return batch

    def save_state(self, *, journal: bool = False) -> bool:
        """Save the detector bank's state (on the thread that owns the bank). A failure is
        logged and journalled, never raised: detection goes on, the next save may succeed."""
        if self.state_path is None:
            return False
        now = self.clock.now()
        self._state_saved_at = now
        try:
            # History first: after a crash the detectors must not have seen samples the history
            # lacks, or the replayed ones would be refused as late (see pipeline.ledger).
            self.history.flush()
            size = self.bank.save_state(self.state_path, saved_at=now)
        except (OSError, NexusError) as err:
            log.warning("cannot save detector state to %s: %s", self.state_path, err)
            self.store.add_event(
                now,
                "detect.state_save_failed",
                "system",
                self.site.site.name,
                {"path": str(self.state_path), "error": str(err)},
            )
            return False
        log.debug("detector state saved to %s (%d bytes)", self.state_path, size)
        if journal:
            self.store.add_event(
                now,
                "detect.state_saved",
                "system",
                self.site.site.name,
                {
                    "path": str(self.state_path),
                    "bytes": size,
                    # None before any row (the journal holds JSON, which has no infinity)
                    "last_time": self.bank.last_time if self.bank.last_time > -np.inf else None,
                },
            )
        return True

    def _work(self) -> None:
        carry: Batch | object | None = None  # taken from the queue by a merge, not merged
        while True:
            try:
                item, carry = (
                    (carry, None)
                    if carry is not None
                    else (
                        self._queue.get(timeout=self.idle_tick),
                        None,
                    )
                )
            except queue.Empty:
                if self._stop.is_set():
                    return  # stopping, and the queue is empty (its _STOP may not have fit)
                self._process_reports()
                self._tick()
                continue
            if item is _WAKE:
                self._process_reports()
                with self._idle:
                    self._pending -= 1  # the wake-up itself (see `report`)
                    self._idle.notify_all()
                continue
            if isinstance(item, Batch) and self._leave_backlog():
                self._left_behind = 1  # taken from the queue, not processed: in the log
                return
            if item is _STOP:
                # drain whatever sources queued before they saw the stop flag
                while not self._leave_backlog():
                    try:
                        rest = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if isinstance(rest, Batch):
                        self._process_counted(rest)
                return
            assert isinstance(item, Batch)
            batch, merged, carry = self._merge_queued(item)
            self._process_counted(batch, merged)

    def _merge_queued(self, first: Batch) -> tuple[Batch, int, Batch | object | None]:
        """`first` and the frames queued right behind it, as one batch of up to `merge_rows`
        rows: the chain's cost per batch is then paid once for many small frames (a busy HTTP
        intake queues a one-row frame per request). Only frames of the same source that follow
        in time merge; the first item that does not is returned to be handled next. Returns
        (batch, how many queued batches it holds, that item or None)."""
        if not first.frame.n_rows or first.findings:
            return first, 1, None
        frames, mark, rows = [first.frame], first.mark, first.frame.n_rows
        carry: Batch | object | None = None
        while rows < self.merge_rows:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if not (
                isinstance(item, Batch)
                and item.source == first.source
                and item.frame.n_rows
                and not item.findings
                and item.frame.times[0] > frames[-1].times[-1]
            ):
                carry = item
                break
            frames.append(item.frame)
            rows += item.frame.n_rows
            if item.mark is not None:
                mark = item.mark if mark is None else max(mark, item.mark)
        if len(frames) == 1:
            return first, 1, carry
        frame = Frame(
            np.concatenate([f.times for f in frames]), np.concatenate([f.values for f in frames])
        )
        return Batch(source=first.source, frame=frame, mark=mark), len(frames), carry

    def _leave_backlog(self) -> bool:
        """Stopping, with the write-ahead log, and past the drain budget: the rest waits on
        disk for the next start."""
        return (
            self._stop.is_set()
            and self.ledger.wal is not None
            and time.monotonic() > self._drain_until
        )

    def _process_reports(self) -> None:
        """Findings reported while nothing else arrived go through the chain on their own."""
        if self._reports:
            with self._idle:
                self._pending += 1
            self._process_counted(Batch(source="ingest", frame=_empty_frame(self.table)))

    def _tick(self) -> None:
        """Nothing arrived for `idle_tick` seconds: let time pass so silence is noticed (stale).

        Only on wall-clock time; a simulated clock moves with its frames. Batched gateways that
        send at least every `idle_tick` seconds never trigger it, so their signals are judged
        on their samples' own times.
        """
        if isinstance(self.clock, ManualClock):
            return
        detect = next((s for s in self.stages if isinstance(s, Detect)), None)
        now = self.clock.now()
        # Never wait for the ingest lock here: an HTTP thread holding it may be waiting for room
        # in the queue, which only this (the worker) thread makes. Someone ingesting means the
        # pipeline is not idle anyway: skip the release this time.
        if not self._ingest_lock.acquire(blocking=False):
            return
        try:
            # Only with nothing queued: a frame released earlier must be processed first.
            held = self.assembler.due(now) if self._queue.empty() else None
            mark = self.ledger.released(self.assembler.oldest_held)
        finally:
            self._ingest_lock.release()
        if held is not None and held.n_rows:
            with self._idle:
                self._pending += 1
            self._process_counted(Batch(source="http", frame=held, mark=mark))
        if detect is None or now <= detect.last_time:
            return
        row = Frame(np.array([now]), np.full((1, len(self.table)), np.nan))
        with self._idle:
            self._pending += 1
        self._process_counted(Batch(source="clock", frame=row))

    def _process_safely(self, batch: Batch) -> None:
        try:
            self.process(batch)
        except NexusError as err:
            log.error("batch from %s failed: %s", batch.source, err)
            self.metrics.reject("pipeline_error")

    def _process_counted(self, batch: Batch, queued: int = 1) -> None:
        """Process a batch that stands for `queued` queued ones (see `_merge_queued`)."""
        try:
            self._process_safely(batch)
        finally:
            with self._idle:
                self._pending -= queued
                self._idle.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued batch has been processed."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    # -- views -------------------------------------------------------------------------------

    def _on_alarm(self, alarm: Alarm) -> None:
        self.metrics.open_alarms.set(self.alarms.open_count())
        self.hub.publish("alarm", alarm)

    def status(self) -> Status:
        open_alarms = self.alarms.alarms(open_only=True)
        subsystems: list[SubsystemStatus] = []
        for sub in self.site.subsystems:
            counts = {p.label: 0 for p in Priority}
            abnormal: set[str] = set()
            worst: Priority | None = None
            for a in open_alarms:
                if a.subsystem != sub.id:
                    continue
                counts[a.priority.label] += 1
                if a.active:
                    abnormal.add(a.asset)
                worst = a.priority if worst is None else max(worst, a.priority)
            total = sum(1 for asset in self.site.assets if asset.subsystem == sub.id)
            subsystems.append(
                SubsystemStatus(
                    id=sub.id,
                    name=sub.name,
                    status="normal" if worst is None else worst.label,
                    open_alarms=counts,
                    assets_abnormal=len(abnormal),
                    assets_total=total,
                )
            )
        return Status(time=self.clock.now(), subsystems=subsystems)

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def latest(self) -> tuple[np.ndarray, np.ndarray]:
        return self.live.latest()
