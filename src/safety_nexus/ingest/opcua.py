"""OPC UA telemetry: subscribe to a server's variables and hand their data changes to the intake.

A site source of kind `opcua` names a server and maps node ids to signals:

    sources:
      - id: plc-1
        kind: opcua
        url: opc.tcp://10.0.4.21:4840
        interval: 500ms                                   # publishing interval
        map:
          "ns=2;s=Pump1.Pressure": pump-1.pressure
          "nsu=urn:acme:plc;i=1234": pump-1.flow          # namespace by URI

Each mapped node becomes one monitored item (its Value attribute) of one subscription whose
publishing interval is the source's `interval`. The server collects an interval's data changes
into one Publish response; those arrive together and become one `ParsedBatch`.

Why it works the way it does:

* Sampling: each item is sampled at its signal's declared `period` and reports whenever the
  value's source timestamp moves (trigger StatusValueTimestamp), not only when the value
  changes: a steady reading keeps arriving instead of looking stale to the detectors. (A server
  without that trigger is asked for the default, value changes, with a warning.) The server
  queues up to four publishing intervals of samples per item between two publishes; when it
  still discards some it says so (the Overflow bit of the status code), and that is counted
  (`opcua_queue_overflow`).
* Time: the value's SourceTimestamp (when the device measured), else its ServerTimestamp, else
  the clock. Value: a numeric or boolean Variant as a float.
* Refused samples are never dropped silently; each is counted under
  `nexus_ingest_rejected{reason}` through `intake.reject`: a status code that is not Good
  (`opcua_bad_status`; Uncertain too, since a detector fed a substituted or stale value learns
  the wrong thing), a value that is not a number (`opcua_not_numeric`) or is NaN/inf
  (`opcua_non_finite`), a time before what the source already handed over for the signal
  (`opcua_out_of_order`), more samples waiting than `max_pending` while the pipeline is full
  (`opcua_overflow`). The one exception is the exact repeat: on (re)subscribing a server sends
  each item's current value again, with the time and value the source has already handed over.
* A node id that does not parse, maps outside the source's `signals` patterns, or that the
  server does not have is a configuration problem, not a phantom (the site declared it; nothing
  undeclared arrived): it is logged as an error naming the node and its signal, listed in
  `problems`, and the other nodes carry on. Nodes are resolved again on every connection, so a
  node added on the server is picked up on the next reconnect; namespace URIs ("nsu=") are
  resolved to the server's current index, which can change when the server is reconfigured.
* Backpressure: the source runs its own asyncio loop on its thread; `intake.ingest_parsed(...,
  wait=True)` blocks in a worker thread while the pipeline is full, so the loop stays alive
  (keep-alives, publish requests) and data changes wait in a bounded buffer meanwhile.
* Connection: a new session per connection; when the server goes away (transport closed, a
  failed keep-alive probe, a subscription status change such as BadTimeout), the session is
  dropped and the source reconnects with exponential backoff (`min_backoff` doubling up to
  `max_backoff`). Setting `stop` cancels whatever is going on; `run` returns within a second.

Security: the session uses security mode None and anonymous login, as a `opc.tcp://` URL with no
credentials does; user and password may be given in the URL (`opc.tcp://user:pw@host:4840`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

import numpy as np
from asyncua import ua
from asyncua.client.client import Client
from asyncua.client.ua_client import UaClientState
from asyncua.common.node import Node
from asyncua.common.subscription import DataChangeNotif, Subscription
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError

from safety_nexus.core.clock import Clock, SystemClock
from safety_nexus.core.errors import IngestError, NexusError
from safety_nexus.core.types import SignalTable
from safety_nexus.ingest.intake import Intake
from safety_nexus.ingest.json_batch import ParsedBatch
from safety_nexus.site.schema import Source

log = logging.getLogger(__name__)

BAD_STATUS = "opcua_bad_status"
NOT_NUMERIC = "opcua_not_numeric"
NON_FINITE = "opcua_non_finite"
OUT_OF_ORDER = "opcua_out_of_order"
OVERFLOW = "opcua_overflow"
QUEUE_OVERFLOW = "opcua_queue_overflow"

_OVERFLOW_BITS = 0x480  # StatusCode InfoType "DataValue" + Overflow: the server dropped values
_FILTER_REFUSED = {
    StatusCodes.BadMonitoredItemFilterUnsupported,
    StatusCodes.BadMonitoredItemFilterInvalid,
    StatusCodes.BadFilterNotAllowed,
}
_WARN_EVERY = 60.0  # seconds between repeats of one warning


@dataclass(frozen=True, slots=True)
class MappedNode:
    """One declared node: as written in the site file, parsed, and the signal it feeds."""

    text: str
    node_id: ua.NodeId
    signal: str


def parse_map(mapping: dict[str, str]) -> tuple[list[MappedNode], dict[str, str]]:
    """The source's `map` as nodes, and per key that cannot be used, why. (Two spellings of
    one node are found when the nodes are resolved on the server, with namespace URIs.)"""
    nodes: list[MappedNode] = []
    problems: dict[str, str] = {}
    for text, signal in mapping.items():
        try:
            node_id = ua.NodeId.from_string(text)
        except (UaError, ValueError) as err:
            problems[text] = f"node id '{text}' (signal '{signal}') does not parse: {err}"
            continue
        if isinstance(node_id, ua.ExpandedNodeId) and node_id.ServerIndex:
            problems[text] = f"node id '{text}' (signal '{signal}') is on another server (srv=)"
            continue
        nodes.append(MappedNode(text, node_id, signal))
    return nodes, problems


def _has_uri(node_id: ua.NodeId) -> bool:
    return isinstance(node_id, ua.ExpandedNodeId) and node_id.NamespaceUri is not None


def _epoch(stamp: datetime | None) -> float | None:
    # OPC UA has no null DateTime: a missing one is encoded as its epoch, 1601-01-01.
    if stamp is None or stamp.year <= 1601:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def sample_of(value: ua.DataValue, now: float) -> tuple[float, float] | str:
    """(time, value) of a data change, or the reason it cannot be a sample."""
    status = value.StatusCode
    if status is not None and not status.is_good():
        return BAD_STATUS
    raw = value.Value.Value if value.Value is not None else None
    if isinstance(raw, bool):
        number = 1.0 if raw else 0.0
    elif isinstance(raw, int | float):
        try:
            number = float(raw)
        except OverflowError:
            return NON_FINITE
    else:
        return NOT_NUMERIC  # text, dates, arrays, structures, an empty Variant
    if not math.isfinite(number):
        return NON_FINITE
    stamp = _epoch(value.SourceTimestamp)
    if stamp is None:
        stamp = _epoch(value.ServerTimestamp)
    return (now if stamp is None else stamp), number


class _Session:
    """One connection's subscription handler: turns data changes into pending samples.

    asyncua calls the handler from tasks of the source's event loop, so no lock is needed."""

    def __init__(self, source: OpcUaSource) -> None:
        self._source = source
        self.columns: dict[int, int] = {}  # client handle -> signal column
        self.wake = asyncio.Event()
        self.lost: str | None = None  # why the server said the subscription is gone

    def datachange_notification(self, node: Node, val: Any, data: DataChangeNotif) -> None:
        column = self.columns.get(data.monitored_item.ClientHandle)
        if column is None:  # only declared nodes are monitored
            return
        self._source.take(column, data.monitored_item.Value)
        self.wake.set()

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        code = status.Status
        if code is not None and not code.is_good():
            self.lost = code.name
            self.wake.set()


class OpcUaSource:
    """A `LiveSource` for one site source of kind `opcua` (see the module docstring)."""

    def __init__(
        self,
        source: Source,
        *,
        clock: Clock | None = None,
        timeout: float = 4.0,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_pending: int = 100_000,
    ) -> None:
        if source.url is None:
            raise NexusError(f"opcua source '{source.id}' needs a url")
        self.name = source.id
        self.url = source.url
        self.interval = float(source.interval)
        self.patterns = list(source.signals)
        self.clock: Clock = clock or SystemClock()
        self.timeout = timeout  # seconds per request, connecting included
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.max_pending = max_pending
        self.nodes, parse_problems = parse_map(source.map)
        self._static_problems = parse_problems
        self._node_problems: dict[str, str] = {}
        for message in parse_problems.values():
            log.error("opcua source '%s': %s", self.name, message)
        self.connected = threading.Event()  # set while subscribed (for status and tests)
        self.connections = 0  # sessions that got as far as subscribing
        self._pending_cols: list[int] = []
        self._pending_times: list[float] = []
        self._pending_values: list[float] = []
        self._rejects: Counter[str] = Counter()
        self._last_time = np.empty(0)
        self._last_value = np.empty(0)
        self._warned: dict[str, float] = {}
        self._signals: dict[int, str] = {}  # column -> signal id, for messages

    @property
    def problems(self) -> dict[str, str]:
        """Declared nodes that cannot be used, node id as written -> why."""
        return {**self._static_problems, **self._node_problems}

    # -- the thread --------------------------------------------------------------------------

    def run(self, intake: Intake, stop: threading.Event) -> None:
        nodes = self._usable(intake.table)
        if not nodes:
            log.error("opcua source '%s': no usable node in its map; not connecting", self.name)
            return
        n = len(intake.table)
        self._last_time = np.full(n, -np.inf)
        self._last_value = np.full(n, np.nan)
        with ThreadPoolExecutor(1, thread_name_prefix=f"nexus-{self.name}-intake") as executor:
            asyncio.run(self._main(intake, stop, executor, nodes))
            # What arrived before the stop is handed over too (after a batch still in flight,
            # through the same single worker, so that the order holds).
            batch = self._batch(intake)
            if batch is not None:
                executor.submit(self._hand_over, intake, batch)

    def _usable(self, table: SignalTable) -> list[tuple[MappedNode, int]]:
        out: list[tuple[MappedNode, int]] = []
        for node in self.nodes:
            column = table.index.get(node.signal)
            if column is None:  # the site validator forbids this; a table from elsewhere may not
                message = f"node '{node.text}' maps to unknown signal '{node.signal}'"
            elif not any(fnmatchcase(node.signal, p) for p in self.patterns):
                message = (
                    f"node '{node.text}' maps to signal '{node.signal}', which is outside the"
                    f" source's signals {self.patterns}"
                )
            else:
                out.append((node, column))
                self._signals[column] = node.signal
                continue
            self._static_problems[node.text] = message
            log.error("opcua source '%s': %s", self.name, message)
        return out

    async def _main(
        self,
        intake: Intake,
        stop: threading.Event,
        executor: ThreadPoolExecutor,
        nodes: list[tuple[MappedNode, int]],
    ) -> None:
        # One task does the work; this one only watches `stop` and cancels it, so that a stop
        # is prompt whatever the work is waiting for (a connect, a backoff, a quiet server).
        work = asyncio.create_task(self._connect_loop(intake, executor, nodes))
        while not work.done() and not stop.is_set():
            await asyncio.wait({work}, timeout=0.05)
        if not work.done():
            work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work

    async def _connect_loop(
        self, intake: Intake, executor: ThreadPoolExecutor, nodes: list[tuple[MappedNode, int]]
    ) -> None:
        delay, failures = self.min_backoff, 0
        while True:
            before = self.connections
            try:
                await self._session(intake, executor, nodes)
                reason = "the server went away"
            except (OSError, TimeoutError, UaError) as err:
                reason = f"{type(err).__name__}: {err}"
            except Exception as err:  # an odd server must not leave the site blind for good
                log.exception("opcua source '%s': unexpected error", self.name)
                reason = f"{type(err).__name__}: {err}"
            if self.connections > before:  # it got as far as subscribing
                delay, failures = self.min_backoff, 0
                log.warning("opcua source '%s': disconnected (%s)", self.name, reason)
            else:
                failures += 1
                # the first failure is worth a warning; the retries that follow are not
                log.log(
                    logging.WARNING if failures == 1 else logging.INFO,
                    "opcua source '%s': cannot subscribe at %s (%s); retrying in %.1f s",
                    self.name,
                    self.url,
                    reason,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2.0, self.max_backoff)

    async def _session(
        self, intake: Intake, executor: ThreadPoolExecutor, nodes: list[tuple[MappedNode, int]]
    ) -> None:
        """One connection, from connect to loss. Returns when the server went away."""
        client = Client(self.url, timeout=self.timeout)
        client.name = client.description = f"Safety Nexus ({self.name})"
        client.session_timeout = 60_000  # ms: the server may drop our session a minute after us
        connected = False
        try:
            await client.connect()
            connected = True
            resolved = await self._resolve(client, nodes)
            handler = _Session(self)
            subscription = await client.create_subscription(self.interval * 1000.0, handler)
            await self._monitor(subscription, resolved, handler, intake.table)
            self.connections += 1
            self.connected.set()
            log.info(
                "opcua source '%s': subscribed to %d of %d node(s) on %s",
                self.name,
                len(handler.columns),
                len(nodes),
                self.url,
            )
            loop = asyncio.get_running_loop()
            while client.state is UaClientState.CONNECTED and handler.lost is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(handler.wake.wait(), 0.2)
                handler.wake.clear()
                # Let the rest of this Publish response's notifications land in the batch.
                await asyncio.sleep(0)
                batch = self._batch(intake)
                if batch is not None:
                    await loop.run_in_executor(
                        executor, functools.partial(self._hand_over, intake, batch)
                    )
            if handler.lost is not None:
                log.warning("opcua source '%s': subscription lost (%s)", self.name, handler.lost)
        finally:
            self.connected.clear()
            if connected:
                # Bounded: a dead server must not hold up a reconnect or a stop.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.disconnect(), 1.0)
            else:  # a failed connect closes its socket itself, a cancelled one does not
                client.disconnect_socket()

    async def _resolve(
        self, client: Client, nodes: list[tuple[MappedNode, int]]
    ) -> list[tuple[MappedNode, ua.NodeId, int]]:
        """The nodes with their ids as the server knows them (namespace URIs resolved)."""
        uris: list[str] = []
        if any(_has_uri(node.node_id) for node, _ in nodes):
            uris = list(await client.get_namespace_array())
        out: list[tuple[MappedNode, ua.NodeId, int]] = []
        seen: dict[ua.NodeId, str] = {}
        for node, column in nodes:
            node_id = node.node_id
            if isinstance(node_id, ua.ExpandedNodeId) and node_id.NamespaceUri is not None:
                if node_id.NamespaceUri not in uris:
                    self._missing(node, f"namespace '{node_id.NamespaceUri}' is not on the server")
                    continue
                index = ua.Int16(uris.index(node_id.NamespaceUri))
                node_id = ua.NodeId(node_id.Identifier, index, node_id.NodeIdType)
            if node_id in seen:
                self._missing(node, f"it is the same node as '{seen[node_id]}'")
                continue
            seen[node_id] = node.text
            out.append((node, node_id, column))
        return out

    async def _monitor(
        self,
        subscription: Subscription,
        nodes: list[tuple[MappedNode, ua.NodeId, int]],
        handler: _Session,
        table: SignalTable,
    ) -> None:
        """One monitored item per node; a node the server refuses is reported and left out,
        the others carry on. Client handles are positions in `nodes`, plus one."""
        # Filled before asking: the initial values may arrive before the answer does.
        handler.columns.update({i + 1: column for i, (_, _, column) in enumerate(nodes)})
        todo = list(range(len(nodes)))
        with_filter = True
        while todo:
            requests = [self._request(nodes[i][1:], i + 1, table, with_filter) for i in todo]
            results = await subscription.create_monitored_items(requests)
            retry: list[int] = []
            for i, result in zip(todo, results, strict=True):
                node = nodes[i][0]
                if not isinstance(result, ua.StatusCode):
                    self._node_problems.pop(node.text, None)
                    continue
                if with_filter and result.value in _FILTER_REFUSED:
                    retry.append(i)
                    continue
                handler.columns.pop(i + 1, None)
                self._missing(node, f"the server refuses it ({result.name})")
            if retry:
                log.warning(
                    "opcua source '%s': %s does not report unchanged values again (no"
                    " StatusValueTimestamp trigger): a steady signal on it may look stale",
                    self.name,
                    self.url,
                )
            todo, with_filter = retry, False

    def _request(
        self, target: tuple[ua.NodeId, int], handle: int, table: SignalTable, with_filter: bool
    ) -> ua.MonitoredItemCreateRequest:
        node_id, column = target
        period = float(table.period[column])
        params = ua.MonitoringParameters()
        params.ClientHandle = ua.UInt32(handle)
        params.SamplingInterval = ua.Double(period * 1000.0)  # the signal's declared period
        # Room for four publishing intervals of samples at that period (at least 10).
        params.QueueSize = ua.UInt32(min(1000, max(10, math.ceil(4 * self.interval / period))))
        params.DiscardOldest = True
        if with_filter:
            # Report a sample whenever its source timestamp moves, not only when its value
            # does: a steady reading must keep arriving, or it would look stale.
            params.Filter = ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp)
        item = ua.ReadValueId()
        item.NodeId = node_id
        item.AttributeId = AttributeIds.Value
        request = ua.MonitoredItemCreateRequest()
        request.ItemToMonitor = item
        request.MonitoringMode = ua.MonitoringMode.Reporting
        request.RequestedParameters = params
        return request

    def _missing(self, node: MappedNode, why: str) -> None:
        message = f"node '{node.text}' (signal '{node.signal}') is not usable on {self.url}: {why}"
        self._node_problems[node.text] = message
        log.error("opcua source '%s': %s", self.name, message)

    # -- samples -----------------------------------------------------------------------------

    def take(self, column: int, value: ua.DataValue) -> None:
        """One data change (on the event loop's thread)."""
        status = value.StatusCode
        if status is not None and status.value & _OVERFLOW_BITS == _OVERFLOW_BITS:
            self._rejects[QUEUE_OVERFLOW] += 1
            self._warn(QUEUE_OVERFLOW, "the server's queue overflowed: it discarded samples")
        sample = sample_of(value, self.clock.now())
        if isinstance(sample, str):
            self._rejects[sample] += 1
            if sample == BAD_STATUS and status is not None:
                signal = self._signals.get(column, str(column))
                self._warn(f"{BAD_STATUS}:{column}", f"signal '{signal}': status {status.name}")
            return
        if len(self._pending_cols) >= self.max_pending:
            self._rejects[OVERFLOW] += 1
            self._warn(OVERFLOW, f"more than {self.max_pending} samples wait for the pipeline")
            return
        self._pending_cols.append(column)
        self._pending_times.append(sample[0])
        self._pending_values.append(sample[1])

    def _batch(self, intake: Intake) -> ParsedBatch | None:
        """What is pending, as one batch (rejections counted on the way)."""
        cols = np.asarray(self._pending_cols, dtype=np.int64)
        times = np.asarray(self._pending_times, dtype=np.float64)
        values = np.asarray(self._pending_values, dtype=np.float64)
        self._pending_cols, self._pending_times, self._pending_values = [], [], []
        if cols.size:
            last_t, last_v = self._last_time[cols], self._last_value[cols]
            repeat = (times == last_t) & (values == last_v)
            late = (times <= last_t) & ~repeat
            keep = ~(repeat | late)
            if late.any():
                self._rejects[OUT_OF_ORDER] += int(late.sum())
                self._warn(
                    OUT_OF_ORDER,
                    f"{int(late.sum())} sample(s) older than one already taken of their signal",
                )
            cols, times, values = cols[keep], times[keep], values[keep]
            # the latest time (and its value) per column, for the next batch's checks
            order = np.lexsort((times, cols))
            last_of = np.r_[cols[order][1:] != cols[order][:-1], True]
            pick = order[last_of]
            self._last_time[cols[pick]] = times[pick]
            self._last_value[cols[pick]] = values[pick]
        for reason, count in self._rejects.items():
            intake.reject(reason, count)
        self._rejects.clear()
        if not cols.size:
            return None
        return ParsedBatch(source=self.name, columns=cols, times=times, values=values)

    def _hand_over(self, intake: Intake, batch: ParsedBatch) -> None:
        """Give a batch to the intake, waiting while the pipeline is full (worker thread)."""
        try:
            intake.ingest_parsed(batch, wait=True)
            return
        except IngestError as err:
            if err.reason != "out_of_order" or np.unique(batch.columns).size < 2:
                self._warn(f"ingest:{err.reason}", f"batch refused: {err}")
                return
        except NexusError as err:  # the pipeline's trouble, not the server's: no reconnect
            self._warn(f"ingest:{type(err).__name__}", f"batch not taken: {err}")
            return
        # One late signal (after a restart, the pipeline has seen newer samples of it) must not
        # cost the others their samples: hand them over signal by signal.
        for column in np.unique(batch.columns):
            part = batch.columns == column
            try:
                intake.ingest_parsed(
                    ParsedBatch(
                        batch.source, batch.columns[part], batch.times[part], batch.values[part]
                    ),
                    wait=True,
                )
            except NexusError as err:
                self._warn(f"ingest:{column}", f"samples not taken: {err}")

    def _warn(self, key: str, message: str) -> None:
        """Log a warning, once a minute at most per kind: a flood must not flood the log."""
        now = time.monotonic()
        last = self._warned.get(key)
        if last is None or now - last >= _WARN_EVERY:
            self._warned[key] = now
            log.warning("opcua source '%s': %s", self.name, message)
