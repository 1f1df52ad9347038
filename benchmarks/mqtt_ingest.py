"""MQTT ingest end to end: messages and samples per second from a publisher process, through a
Mosquitto broker on loopback, into a Runtime with the MQTT source in this process, until every
sample has gone through the pipeline (telemetry store, detector bank, findings, alarms).
Target (issue 4): ≥ 30,000 messages/s in one process.

    python benchmarks/mqtt_ingest.py              # ~30 s; results/mqtt_ingest.json
    python benchmarks/mqtt_ingest.py --quick      # ~15 s smoke run; results/mqtt_ingest.quick.json
    python benchmarks/mqtt_ingest.py --case json  # one case only (repeatable)

Two cases, each with a fresh broker (`max_queued_messages` raised so that the broker holds
what Nexus has not read yet instead of dropping it; `max_inflight_messages` at Mosquitto's
default of 20 unless `--broker-inflight` says otherwise) and a fresh runtime (default settings:
write-ahead log with fsync, reorder tolerance 2 s, detector state):

* json: a site of `--signals` signals, one topic each, mapped in the source's `map`; the
  publisher sends rounds of one single-reading message per signal,
  `{"time": <round time>, "value": <v>}`, on its topic (`--rounds` rounds, one second of
  telemetry time apart, all in the past).
* sparkplug: `--devices` Sparkplug B devices of `--metrics` metrics each; a DBIRTH per device
  (names, aliases, datatypes; sent and processed before the clock starts), then rounds of one
  DDATA per device carrying every metric by alias only (Double values, one payload timestamp).

The publisher is another process (`multiprocessing`, spawn) that builds every packet before the
clock starts and writes them with a raw socket: MQTT 3.1.1 PUBLISH at QoS 1, at most `--window`
unacknowledged (the broker acknowledges at once). The source subscribes with QoS 1, as a site's
default is, so Nexus acknowledges every message. Timed: from the publisher's first byte to the
moment the runtime has accepted every sample of the case and its worker is idle, counted by
`nexus_ingest_accepted_samples_total` and `nexus_samples_processed_total`; messages/s and
samples/s are over that span. The publisher's own send time and the CPU of this process (its
user + system time over the span) are reported beside them; the machine has two cores shared
with other jobs, so the load average at the start is recorded too.
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.connection
import os
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from _machine import machine

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test suite's server helpers
from safety_nexus.ingest import sparkplug  # noqa: E402
from safety_nexus.ingest.mqtt import MqttSource  # noqa: E402
from safety_nexus.pipeline.builder import RuntimeSettings, build_runtime  # noqa: E402
from safety_nexus.pipeline.runtime import Runtime  # noqa: E402
from servers import ServerProcess, free_port  # noqa: E402

TARGET = 30_000  # messages/s, issue 4
RESULTS = Path(__file__).resolve().parent / "results"


# -- the publisher (another process) -----------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, byte = divmod(n, 128)
        out.append(byte | (128 if n else 0))
        if not n:
            return bytes(out)


def _connect_packet(client_id: bytes) -> bytes:
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + struct.pack("!H", len(client_id)) + client_id
    return b"\x10" + _varint(len(body)) + body


def _publish_packet(topic: str, payload: bytes, mid: int) -> bytes:
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t + struct.pack("!H", mid) + payload
    return b"\x32" + _varint(len(body)) + body  # PUBLISH, QoS 1


def _packets(messages: list[tuple[str, bytes]]) -> list[bytes]:
    return [_publish_packet(t, p, i % 65535 + 1) for i, (t, p) in enumerate(messages)]


def _send(port: int, packets: list[bytes], window: int, client_id: bytes) -> float:
    """Send every packet, at most `window` unacknowledged; returns the seconds it took."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(_connect_packet(client_id))
    if sock.recv(4)[:1] != b"\x20":
        raise RuntimeError("the broker did not accept the publisher")
    acked = 0
    cv = threading.Condition()

    def drain() -> None:  # PUBACKs: 4 bytes each
        nonlocal acked
        got = 0
        while True:
            try:
                data = sock.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            got += len(data)
            with cv:
                acked = got // 4
                cv.notify_all()

    threading.Thread(target=drain, daemon=True).start()
    started = time.perf_counter()
    chunk = 256
    for i in range(0, len(packets), chunk):
        sock.sendall(b"".join(packets[i : i + chunk]))
        sent = min(i + chunk, len(packets))
        with cv:
            cv.wait_for(lambda sent=sent: sent - acked <= window, timeout=60)
    with cv:
        cv.wait_for(lambda: acked >= len(packets), timeout=60)
    took = time.perf_counter() - started
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    return took


def _publisher(
    port: int,
    setup: list[tuple[str, bytes]],
    data: list[tuple[str, bytes]],
    window: int,
    conn: multiprocessing.connection.Connection,
) -> None:
    setup_packets, data_packets = _packets(setup), _packets(data)
    if setup_packets:
        _send(port, setup_packets, window, b"bench-setup")
    conn.send("ready")
    conn.recv()  # go
    conn.send(_send(port, data_packets, window, b"bench-pub"))


# -- the cases ---------------------------------------------------------------------------------


def _site(path: Path, assets: int, per_asset: int, source: str) -> None:
    """A site of `assets` assets of `per_asset` signals (`a0000.s0` ...) and one source."""
    lines = [
        "version: 1",
        "site: {name: MQTT benchmark site}",
        "subsystems:",
        "  - {id: bench, name: Benchmark}",
        "assets:",
    ]
    for a in range(assets):
        lines += [f"  - id: a{a:04d}", "    subsystem: bench", "    type: probe", "    signals:"]
        for s in range(per_asset):
            lines.append(f"      - {{name: s{s}, normal: [-4, 4], limits: [-50, 50]}}")
    lines += ["sources:", source]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _source(sid: str, port: int, topic: str, payload: str, mapping: dict[str, str]) -> str:
    head = [
        f"  - id: {sid}",
        "    kind: mqtt",
        f"    url: mqtt://127.0.0.1:{port}",
        f'    topics: ["{topic}"]',
        f"    payload: {payload}",
        "    qos: 1",
        "    map:",
    ]
    return "\n".join(head + [f'      "{k}": {v}' for k, v in mapping.items()])


def _json_case(args: Any, path: Path, port: int) -> tuple[list[Any], list[Any], int]:
    n = args.signals
    ids = [f"a{i // 10:04d}.s{i % 10}" for i in range(n)]
    topics = [f"plant/{sid.replace('.', '/')}" for sid in ids]
    mapping = dict(zip(topics, ids, strict=True))
    _site(path, n // 10, 10, _source("plant", port, "plant/#", "json", mapping))
    base = float(int(time.time())) - args.rounds - 30
    data = [
        (topic, orjson.dumps({"time": base + r, "value": round(((r * 7 + i) % 13 - 6) * 0.5, 2)}))
        for r in range(args.rounds)
        for i, topic in enumerate(topics)
    ]
    return [], data, len(data)


def _sparkplug_case(args: Any, path: Path, port: int) -> tuple[list[Any], list[Any], int]:
    devices, metrics = args.devices, args.metrics
    mapping = {
        f"bench/edge-1/dev-{d}:m{m}": f"a{d:04d}.s{m}"
        for d in range(devices)
        for m in range(metrics)
    }
    _site(path, devices, metrics, _source("edge", port, "spBv1.0/bench/#", "sparkplug", mapping))
    base_ms = (int(time.time()) - args.rounds - 30) * 1000
    dt = sparkplug.DataType.DOUBLE
    setup = []
    for d in range(devices):
        p = sparkplug.PAYLOAD(timestamp=base_ms - 1000, seq=0)
        for m in range(metrics):
            p.metrics.add(name=f"m{m}", alias=m, datatype=dt, double_value=0.0)
        setup.append((f"spBv1.0/bench/DBIRTH/edge-1/dev-{d}", bytes(p.SerializeToString())))
    data = []
    for r in range(args.rounds):
        for d in range(devices):
            p = sparkplug.PAYLOAD(timestamp=base_ms + r * 1000, seq=(r + 1) % 256)
            for m in range(metrics):
                p.metrics.add(alias=m, double_value=((r * 7 + m + d) % 13 - 6) * 0.5)
            data.append((f"spBv1.0/bench/DDATA/edge-1/dev-{d}", bytes(p.SerializeToString())))
    return setup, data, devices * metrics


def _counter(runtime: Runtime, name: str) -> float:
    total = 0.0
    for family in runtime.metrics.registry.collect():
        for s in family.samples:
            if s.name == name:
                total += s.value
    return total


def run_case(name: str, args: Any, workdir: Path) -> dict[str, Any]:
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"max_queued_messages 10000000\nmax_inflight_messages {args.broker_inflight}\n",
        encoding="utf-8",
    )
    broker = ServerProcess(
        ["/usr/sbin/mosquitto", "-c", str(conf)], port, workdir / "mosquitto.log"
    )
    publishers: list[multiprocessing.process.BaseProcess] = []
    try:
        site = workdir / "site.yaml"
        build = _json_case if name == "json" else _sparkplug_case
        setup, data, setup_samples = build(args, site, port)
        samples_per_message = 1 if name == "json" else args.metrics
        expected = setup_samples * (name == "sparkplug") + len(data) * samples_per_message
        runtime = build_runtime(
            RuntimeSettings(site=site, data_dir=workdir / "data", source="http")
        )
        (source,) = runtime.live_sources
        assert isinstance(source, MqttSource)
        runtime.start()
        try:
            if not source.connected.wait(10):
                raise RuntimeError(f"the MQTT source did not subscribe:\n{broker.output()}")
            ctx = multiprocessing.get_context("spawn")
            ours, theirs = ctx.Pipe()
            pub = ctx.Process(target=_publisher, args=(port, setup, data, args.window, theirs))
            pub.start()
            publishers.append(pub)
            if not ours.poll(120) or ours.recv() != "ready":
                raise RuntimeError("the publisher did not get ready")
            deadline = time.monotonic() + 60
            while (
                _counter(runtime, "nexus_ingest_accepted_samples_total")
                < expected - len(data) * samples_per_message
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("the BIRTH messages did not arrive")
                time.sleep(0.01)
            runtime.wait_idle(30)
            before = _counter(runtime, "nexus_ingest_accepted_samples_total")
            cpu0 = time.process_time()
            load = list(os.getloadavg())
            t0 = time.perf_counter()
            ours.send("go")
            deadline = time.monotonic() + 600
            while _counter(runtime, "nexus_ingest_accepted_samples_total") < expected:
                if time.monotonic() > deadline:
                    raise RuntimeError("not every sample arrived")
                time.sleep(0.002)
            runtime.wait_idle(120)
            t1 = time.perf_counter()
            cpu = time.process_time() - cpu0
            send_seconds = float(ours.recv()) if ours.poll(60) else float("nan")
            pub.join(30)
            accepted = _counter(runtime, "nexus_ingest_accepted_samples_total") - before
            processed = _counter(runtime, "nexus_samples_processed_total")
            rejected = _counter(runtime, "nexus_ingest_rejected_total")
            phantom = _counter(runtime, "nexus_ingest_phantom_total")
        finally:
            runtime.stop()
    finally:
        for p in publishers:
            if p.is_alive():
                p.terminate()
        broker.stop()
    span = t1 - t0
    return {
        "case": name,
        "messages": len(data),
        "samples_per_message": samples_per_message,
        "samples": int(accepted),
        "processed_total": int(processed),
        "rejected_total": int(rejected),
        "phantom_total": int(phantom),
        "seconds": span,
        "messages_per_s": len(data) / span,
        "samples_per_s": accepted / span,
        "publisher_send_seconds": send_seconds,
        "cpu_seconds": cpu,
        "cpu_share_of_one_core": cpu / span,
        "load_average_before": load,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run, not a measurement")
    ap.add_argument("--signals", type=int, default=1000, help="json: signals (one topic each)")
    ap.add_argument("--rounds", type=int, default=300, help="json: messages per signal")
    ap.add_argument("--devices", type=int, default=10, help="sparkplug: devices")
    ap.add_argument("--metrics", type=int, default=100, help="sparkplug: metrics per DDATA")
    ap.add_argument("--spb-rounds", type=int, default=1000, help="sparkplug: DDATA per device")
    ap.add_argument("--window", type=int, default=5000, help="publisher: unacknowledged at most")
    ap.add_argument(
        "--broker-inflight",
        type=int,
        default=20,
        help="Mosquitto's max_inflight_messages (QoS 1 messages sent to Nexus unacknowledged)",
    )
    ap.add_argument("--case", choices=["json", "sparkplug"], action="append", help="only these")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.spb_rounds = 30, 100
    info = machine()
    cases = []
    for name in args.case or ["json", "sparkplug"]:
        case_args = argparse.Namespace(**vars(args))
        if name == "sparkplug":
            case_args.rounds = args.spb_rounds
        with tempfile.TemporaryDirectory(prefix=f"nexus-mqtt-{name}-") as tmp:
            cases.append(run_case(name, case_args, Path(tmp)))
    by_name = {c["case"]: c for c in cases}
    json_case, spb = by_name.get("json"), by_name.get("sparkplug")
    ok = json_case is not None and json_case["messages_per_s"] >= TARGET
    result = {
        "benchmark": "mqtt_ingest",
        "quick": args.quick,
        "machine": info,
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "target_messages_per_s": TARGET,
        "cases": cases,
        "pass": ok,
    }
    out = args.out or RESULTS / ("mqtt_ingest.quick.json" if args.quick else "mqtt_ingest.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n", encoding="utf-8"
    )
    parts = []
    if json_case is not None:
        parts.append(
            f"json {json_case['messages_per_s']:,.0f} msg/s ({json_case['messages']:,} single"
            f" readings, {json_case['cpu_share_of_one_core']:.0%} of a core)"
        )
    if spb is not None:
        parts.append(
            f"sparkplug {spb['messages_per_s']:,.0f} msg/s = {spb['samples_per_s']:,.0f}"
            f" samples/s ({spb['samples_per_message']} metrics per DDATA)"
        )
    verdict = "PASS" if ok else "FAIL" if json_case is not None else "n/a"
    print(f"mqtt_ingest: {'; '.join(parts)} ({verdict} against ≥ {TARGET:,} msg/s)")


if __name__ == "__main__":
    main()
