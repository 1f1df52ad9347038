"""The OPC UA source against a real asyncua server on 127.0.0.1 (its own thread and event loop):
data changes arrive with their times and values, batched; refused samples are counted; a missing
or unparsable node is reported by name while the others carry on; the source reconnects after
the server restarts; stop is prompt whatever the source is waiting for.

asyncua's own output is log records (warnings about the unencrypted endpoint, tracebacks of its
publish loop when the server goes away), not Python warnings, so `filterwarnings = error` needs
no exception here."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from asyncua import ua
from asyncua.common.node import Node
from asyncua.server.server import Server

from safety_nexus.ingest.intake import Intake
from safety_nexus.ingest.json_batch import ParsedBatch
from safety_nexus.ingest.opcua import (
    BAD_STATUS,
    NOT_NUMERIC,
    OUT_OF_ORDER,
    OpcUaSource,
    parse_map,
    sample_of,
)
from safety_nexus.pipeline.builder import RuntimeSettings, build_runtime
from safety_nexus.pipeline.runtime import Runtime
from safety_nexus.site.schema import Source
from servers import free_port

URI = "urn:safety-nexus:test"
VARIABLES: dict[str, Any] = {
    "Pump1.Pressure": 1.0,
    "Pump1.Flow": 10.0,
    "Pump1.Running": False,
    "Pump1.Mode": "auto",
}
SITE = """\
version: 1
site: {{name: OPC UA test}}
subsystems:
  - {{id: water, name: Water}}
assets:
  - id: pump-1
    subsystem: water
    type: pump
    signals:
      - {{name: pressure, unit: bar, normal: [1, 9], period: 0.1}}
      - {{name: flow, unit: m3/h, normal: [10, 90], period: 0.1}}
      - {{name: running, normal: [0, 1], period: 0.1}}
      - {{name: mode, normal: [0, 5]}}
      - {{name: ghost, normal: [0, 1]}}
sources:
  - id: plc-1
    kind: opcua
    url: opc.tcp://127.0.0.1:{port}/nexus
    interval: 100ms
    map:
      "ns=2;s=Pump1.Pressure": pump-1.pressure
      "nsu={uri};s=Pump1.Flow": pump-1.flow
      "ns=2;s=Pump1.Running": pump-1.running
      "ns=2;s=Pump1.Mode": pump-1.mode
      "ns=2;s=Pump1.Missing": pump-1.ghost
      "ns=2;x=nonsense": pump-1.ghost
"""


class UaServer:
    """An asyncua server with a few variables in namespace 2 (`URI`), on its own thread.

    Variables start with a SourceTimestamp an hour back, so that what a test writes is newer."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = Server()
        self.nodes: dict[str, Node] = {}
        self._call(self._start())

    def _call(self, coro: Any, timeout: float = 30.0) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    async def _start(self) -> None:
        await self.server.init()
        self.server.set_endpoint(f"opc.tcp://127.0.0.1:{self.port}/nexus")
        ns = await self.server.register_namespace(URI)
        assert ns == 2
        pump = await self.server.nodes.objects.add_object(ua.NodeId("Pump1", ns), "Pump1")
        then = time.time() - 3600
        for name, value in VARIABLES.items():
            node = await pump.add_variable(ua.NodeId(name, ns), name.split(".")[1], value)
            await node.write_value(_value(value, then))
            self.nodes[name] = node
        await self.server.start()

    async def _stop(self) -> None:
        await self.server.stop()
        # the server leaves some of its tasks behind: end them before the loop closes
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def write(self, changes: list[tuple[str, Any, float]], status: int | None = None) -> None:
        """Write (variable, value, source time) changes in one go on the server's loop."""

        async def go() -> None:
            for name, value, at in changes:
                await self.nodes[name].write_value(_value(value, at, status))

        self._call(go())

    def stop(self) -> None:
        self._call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _value(value: Any, at: float, status: int | None = None) -> ua.DataValue:
    kind = {bool: ua.VariantType.Boolean, float: ua.VariantType.Double}.get(type(value))
    return ua.DataValue(
        ua.Variant(value, kind) if kind else ua.Variant(value),
        StatusCode=ua.StatusCode(status if status is not None else ua.StatusCodes.Good),
        SourceTimestamp=datetime.fromtimestamp(at, UTC),
        ServerTimestamp=datetime.fromtimestamp(at, UTC),
    )


class Recording:
    """The runtime as the source's intake, remembering each batch it was handed (observed, not
    replaced: every call goes on to the runtime)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.batches: list[ParsedBatch] = []

    @property
    def table(self) -> Any:
        return self.runtime.table

    def ingest_parsed(self, parsed: ParsedBatch, *, wait: bool = False) -> int:
        self.batches.append(parsed)
        return self.runtime.ingest_parsed(parsed, wait=wait)

    def phantom(self, source: str, seen: str, detail: str) -> None:
        self.runtime.phantom(source, seen, detail)

    def reject(self, reason: str, count: int = 1) -> None:
        self.runtime.reject(reason, count)


class Running:
    """A source on its own thread with its own stop event (the runtime's worker runs too)."""

    def __init__(self, source: OpcUaSource, intake: Intake) -> None:
        self.source = source
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=source.run, args=(intake, self.stop_event))
        self.thread.start()

    def stop(self) -> float:
        """Seconds until `run` returned."""
        t0 = time.monotonic()
        self.stop_event.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the source did not return within 10 s of stop"
        return time.monotonic() - t0


def _wait(condition: Any, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def server() -> Iterator[UaServer]:
    srv = UaServer(free_port())
    yield srv
    srv.stop()


def _runtime(tmp_path: Path, port: int, *, own: bool = True) -> tuple[Runtime, OpcUaSource]:
    """A runtime for `SITE` and its OPC UA source; with `own` the test runs the source itself
    (its own thread and stop event), else the runtime starts and stops it."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    site = tmp_path / "site.yaml"
    site.write_text(SITE.format(port=port, uri=URI), encoding="utf-8")
    runtime = build_runtime(RuntimeSettings(site=site, data_dir=tmp_path / "data", source="http"))
    (source,) = runtime.live_sources
    assert isinstance(source, OpcUaSource)
    if own:
        runtime.live_sources.clear()
    source.min_backoff, source.max_backoff = 0.1, 0.5
    return runtime, source


@pytest.fixture
def plant(tmp_path: Path, server: UaServer) -> Iterator[tuple[Runtime, OpcUaSource, Recording]]:
    runtime, source = _runtime(tmp_path, server.port)
    runtime.start()
    intake = Recording(runtime)
    running = Running(source, intake)
    _wait(source.connected.is_set, what="the source to subscribe")
    for sid in ("pump-1.pressure", "pump-1.flow", "pump-1.running"):  # the current values
        _wait(lambda sid=sid: len(_signal(runtime, sid, 0.0)[0]) >= 1, what=sid)
    yield runtime, source, intake
    running.stop()
    runtime.stop()


_LAST_BASE = [0.0]


def _base() -> float:
    """A whole second (exact in OPC UA's 100 ns ticks) well in the past and later than any time
    an earlier test wrote: a server's current value is resent on subscribing, and a sample
    older than that would be refused as out of order."""
    base = max(float(int(time.time())) - 60.0, _LAST_BASE[0] + 5.0)
    _LAST_BASE[0] = base
    return base


def _signal(runtime: Runtime, sid: str, since: float) -> tuple[list[float], list[float]]:
    times, values = runtime.live.window(runtime.table.index[sid], since)
    return times.tolist(), values.tolist()


# -- against the server --------------------------------------------------------------------


def test_data_changes_arrive_with_their_times_and_values(
    plant: tuple[Runtime, OpcUaSource, Recording], server: UaServer
) -> None:
    runtime, _source, intake = plant
    base = _base()
    changes: list[tuple[str, Any, float]] = []
    for i in range(5):
        at = base + 0.25 * i
        changes += [
            ("Pump1.Pressure", 2.0 + i, at),
            ("Pump1.Flow", 20.0 + 0.5 * i, at),
            ("Pump1.Running", i % 2 == 1, at),
        ]
    intake.batches.clear()
    server.write(changes)
    _wait(lambda: len(_signal(runtime, "pump-1.running", base)[0]) == 5, what="the samples")

    expected_times = [base + 0.25 * i for i in range(5)]
    assert _signal(runtime, "pump-1.pressure", base) == (expected_times, [2.0, 3.0, 4.0, 5.0, 6.0])
    assert _signal(runtime, "pump-1.flow", base) == (expected_times, [20.0, 20.5, 21.0, 21.5, 22.0])
    assert _signal(runtime, "pump-1.running", base) == (expected_times, [0.0, 1.0, 0.0, 1.0, 0.0])
    # the changes of one publishing interval travel together, not one batch per change
    ours = [b for b in intake.batches if (b.times >= base).any()]
    assert sum(int((b.times >= base).sum()) for b in ours) == 15
    assert len(ours) <= 3
    assert {b.source for b in ours} == {"plc-1"}


def test_refused_samples_are_counted_by_reason(
    plant: tuple[Runtime, OpcUaSource, Recording], server: UaServer
) -> None:
    runtime, _source, _intake = plant
    metrics = runtime.metrics
    # the Mode variable's initial value (text) was refused when the source subscribed
    _wait(lambda: metrics.rejected_count(NOT_NUMERIC) >= 1, what="the text value counted")
    base = _base()
    server.write([("Pump1.Pressure", 7.0, base)], status=ua.StatusCodes.BadSensorFailure)
    server.write(
        [("Pump1.Pressure", 3.0, base + 1)], status=ua.StatusCodes.UncertainLastUsableValue
    )
    server.write([("Pump1.Mode", "manual", base + 2)])
    server.write([("Pump1.Pressure", 4.0, base + 3)])
    _wait(lambda: len(_signal(runtime, "pump-1.pressure", base)[0]) == 1, what="the good sample")
    assert _signal(runtime, "pump-1.pressure", base) == ([base + 3], [4.0])
    _wait(lambda: metrics.rejected_count(BAD_STATUS) == 2, what="both bad statuses counted")
    assert metrics.rejected_count(NOT_NUMERIC) == 2
    # a time that goes back on a node is refused at the source, the others' samples still go
    server.write([("Pump1.Pressure", 5.0, base + 2.5), ("Pump1.Flow", 30.0, base + 4)])
    _wait(lambda: _signal(runtime, "pump-1.flow", base) == ([base + 4], [30.0]), what="flow")
    _wait(lambda: metrics.rejected_count(OUT_OF_ORDER) == 1, what="the late sample counted")
    assert _signal(runtime, "pump-1.pressure", base) == ([base + 3], [4.0])


def test_missing_and_malformed_nodes_are_reported_by_name(
    plant: tuple[Runtime, OpcUaSource, Recording],
) -> None:
    runtime, source, _intake = plant
    problems = source.problems
    assert set(problems) == {"ns=2;s=Pump1.Missing", "ns=2;x=nonsense"}
    assert "BadNodeIdUnknown" in problems["ns=2;s=Pump1.Missing"]
    assert "pump-1.ghost" in problems["ns=2;s=Pump1.Missing"]
    assert "does not parse" in problems["ns=2;x=nonsense"]
    # the other nodes carry on: each sent its current value when subscribed
    for sid in ("pump-1.pressure", "pump-1.flow", "pump-1.running"):
        _wait(lambda sid=sid: len(_signal(runtime, sid, 0.0)[0]) >= 1, what=sid)


def test_the_runtime_runs_the_source_and_errors_name_the_missing_node(
    tmp_path: Path, server: UaServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="safety_nexus.ingest.opcua")
    runtime, source = _runtime(tmp_path, server.port, own=False)
    runtime.start()
    try:
        _wait(source.connected.is_set, what="the source to subscribe")
        _wait(lambda: len(_signal(runtime, "pump-1.flow", 0.0)[0]) >= 1, what="a sample")
    finally:
        t0 = time.monotonic()
        runtime.stop()
    assert time.monotonic() - t0 < 5.0
    assert not source.connected.is_set()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("'ns=2;s=Pump1.Missing'" in m and "BadNodeIdUnknown" in m for m in errors)
    assert any("'ns=2;x=nonsense'" in m and "does not parse" in m for m in errors)


def test_stop_is_prompt_when_subscribed(tmp_path: Path, server: UaServer) -> None:
    runtime, source = _runtime(tmp_path, server.port)
    runtime.start()
    running = Running(source, runtime)
    _wait(source.connected.is_set, what="the source to subscribe")
    took = running.stop()
    runtime.stop()
    assert took < 1.0


def test_stop_is_prompt_while_nothing_answers(tmp_path: Path) -> None:
    """Nothing listens (connection refused, backoff), then a listener that never speaks OPC UA
    (the connect waits for a Hello reply): stop still returns within a second or so."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        for port in (free_port(), silent.getsockname()[1]):
            runtime, source = _runtime(tmp_path / str(port), port)
            source.timeout = 30.0  # a connect that would hang much longer than a stop may take
            runtime.start()
            running = Running(source, runtime)
            time.sleep(1.0)
            assert not source.connected.is_set()
            took = running.stop()
            runtime.stop()
            assert took < 1.0, port


@pytest.mark.slow
def test_reconnects_after_the_server_restarts(tmp_path: Path) -> None:
    port = free_port()
    first = UaServer(port)
    runtime, source = _runtime(tmp_path, port)
    runtime.start()
    running = Running(source, runtime)
    try:
        _wait(source.connected.is_set, what="the first subscription")
        base = _base()
        first.write([("Pump1.Pressure", 2.0, base)])
        _wait(lambda: len(_signal(runtime, "pump-1.pressure", base)[0]) == 1, what="sample 1")
        first.stop()
        _wait(lambda: not source.connected.is_set(), what="the loss to be noticed")
        second = UaServer(port)
        try:
            _wait(lambda: source.connections == 2, timeout=20, what="the reconnect")
            second.write([("Pump1.Pressure", 3.0, base + 1)])
            _wait(lambda: len(_signal(runtime, "pump-1.pressure", base)[0]) == 2, what="sample 2")
            assert _signal(runtime, "pump-1.pressure", base) == ([base, base + 1], [2.0, 3.0])
        finally:
            took = running.stop()
            second.stop()
    finally:
        if running.thread.is_alive():
            running.stop()
        runtime.stop()
    assert took < 1.0


def test_a_node_outside_the_sources_signals_is_refused_by_name(tmp_path: Path) -> None:
    runtime, _ = _runtime(tmp_path, free_port())
    try:
        declared = Source(
            id="plc-2",
            kind="opcua",
            url="opc.tcp://127.0.0.1:1/nexus",
            signals=["pump-1.p*"],
            map={"ns=2;s=Pump1.Flow": "pump-1.flow"},
        )
        source = OpcUaSource(declared)
        t0 = time.monotonic()
        source.run(runtime, threading.Event())  # nothing usable: returns without connecting
        assert time.monotonic() - t0 < 1.0
        assert "outside the source's signals" in source.problems["ns=2;s=Pump1.Flow"]
        assert "pump-1.flow" in source.problems["ns=2;s=Pump1.Flow"]
    finally:
        runtime.stop()


def test_one_late_signal_does_not_cost_the_others_their_samples(tmp_path: Path) -> None:
    """After a restart the pipeline may have seen newer samples of a signal than a server
    resends: the batch is then handed over signal by signal."""
    runtime, source = _runtime(tmp_path, free_port())
    runtime.start()
    try:
        table = runtime.table
        pressure, flow = table.index["pump-1.pressure"], table.index["pump-1.flow"]
        t = float(int(time.time())) - 100.0
        seen = ParsedBatch("plc-1", np.array([pressure]), np.array([t]), np.array([4.0]))
        runtime.ingest_parsed(seen, wait=True)
        late = ParsedBatch(
            "plc-1",
            np.array([pressure, flow]),
            np.array([t - 50.0, t - 40.0]),
            np.array([3.0, 30.0]),
        )
        source._hand_over(runtime, late)
        _wait(lambda: _signal(runtime, "pump-1.flow", 0.0) == ([t - 40.0], [30.0]), what="flow")
        assert _signal(runtime, "pump-1.pressure", 0.0) == ([t], [4.0])
        assert runtime.metrics.rejected_count("out_of_order") == 2  # whole batch, then pressure
    finally:
        runtime.stop()


# -- without a server ----------------------------------------------------------------------


def test_node_ids_parse_or_say_why() -> None:
    nodes, problems = parse_map(
        {
            "ns=2;s=Pump1.Pressure": "pump-1.pressure",
            "ns=2;i=1234": "pump-1.flow",
            "nsu=urn:x;s=A": "pump-1.running",
            "garbage": "pump-1.mode",
            "srv=1;ns=2;i=5": "pump-1.ghost",
        }
    )
    assert [(n.text, n.signal) for n in nodes] == [
        ("ns=2;s=Pump1.Pressure", "pump-1.pressure"),
        ("ns=2;i=1234", "pump-1.flow"),
        ("nsu=urn:x;s=A", "pump-1.running"),
    ]
    assert nodes[1].node_id == ua.NodeId(1234, 2)
    assert set(problems) == {"garbage", "srv=1;ns=2;i=5"}
    assert "'garbage'" in problems["garbage"]
    assert "pump-1.mode" in problems["garbage"]


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        (ua.Variant(2.5, ua.VariantType.Double), 2.5),
        (ua.Variant(7, ua.VariantType.Int32), 7.0),
        (ua.Variant(2**64 - 1, ua.VariantType.UInt64), float(2**64 - 1)),
        (ua.Variant(True, ua.VariantType.Boolean), 1.0),
        (ua.Variant("7", ua.VariantType.String), NOT_NUMERIC),
        (ua.Variant([1.0, 2.0], ua.VariantType.Double), NOT_NUMERIC),
        (ua.Variant(), NOT_NUMERIC),
        (ua.Variant(float("nan"), ua.VariantType.Double), "opcua_non_finite"),
    ],
)
def test_sample_values(variant: ua.Variant, expected: float | str) -> None:
    got = sample_of(ua.DataValue(variant, SourceTimestamp=datetime.fromtimestamp(5.0, UTC)), 9.0)
    assert got == (expected if isinstance(expected, str) else (5.0, expected))


def test_sample_time_falls_back_to_server_then_clock() -> None:
    v = ua.Variant(1.0, ua.VariantType.Double)
    server_only = ua.DataValue(v, ServerTimestamp=datetime.fromtimestamp(6.0, UTC))
    assert sample_of(server_only, 9.0) == (6.0, 1.0)
    assert sample_of(ua.DataValue(v), 9.0) == (9.0, 1.0)
    # OPC UA's "null" DateTime is its epoch, 1601-01-01
    null = datetime(1601, 1, 1, tzinfo=UTC)
    assert sample_of(ua.DataValue(v, SourceTimestamp=null), 9.0) == (9.0, 1.0)
    bad = ua.DataValue(v, StatusCode=ua.StatusCode(ua.StatusCodes.BadCommunicationError))
    assert sample_of(bad, 9.0) == BAD_STATUS
