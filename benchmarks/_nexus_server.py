"""What the HTTP benchmarks share: a generated site, Nexus served in its own process, a load
generator for other processes, and the server's Prometheus counters.

The server is what `nexus serve` runs (`cli/serve.py`: `build_runtime` + uvicorn, one worker,
`log_level="warning"`), with the settings `nexus serve` has no flag for (`reorder_tolerance`,
the queue size) passed through; run this file as a script to start one:

    python benchmarks/_nexus_server.py --site SITE --data-dir DIR --port PORT \\
        [--reorder-tolerance S] [--queue-size N] [--profile PROFILE.json]

The load generator (`run_load`, started in other processes with `multiprocessing`) keeps one
HTTP/1.1 keep-alive connection per thread on a plain socket, so the client spends its CPU on
little more than `bytes.replace`: each connection owns a disjoint set of signals (per-signal
time order then holds whatever the interleaving of connections), cycles through a few dozen
pre-built bodies (so values change from batch to batch and no detector sees a flat line) and
stamps each with the wall-clock time at which it is sent, strictly increasing per connection.
A 503 is counted and retried after `backoff` seconds (the server's Retry-After is 1 s; a
shorter wait keeps the pressure on). A timestamp placeholder of fixed width is replaced in the
pre-built body, so a request costs one `bytes.replace` and one `sendall`.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PER_ASSET = 10  # signals per generated asset: one line-protocol line carries an asset's fields
NORMAL = 3.0  # generated signals: normal band [-3, 3], hard limits [-LIMIT, LIMIT]
LIMIT = 30.0
PROBE_ASSET = "probe"
_JSON_STAMP = b"@" * 14  # "1780000000.123": epoch seconds with milliseconds
_LP_STAMP = b"@" * 19  # "1780000000123000000": epoch nanoseconds


# -- the site ---------------------------------------------------------------------------------


def asset_id(i: int) -> str:
    return f"a{i:05d}"


def write_site(path: Path, assets: int, probes: int = 0) -> list[str]:
    """A site of `assets` assets with PER_ASSET signals each (`a00000.s0` ...), plus one asset
    with `probes` probe signals (`probe.p0` ...); returns the load signals' ids in order."""
    lines = [
        "version: 1",
        "site: {name: HTTP benchmark site}",
        "subsystems:",
        "  - {id: bench, name: Benchmark}",
        "assets:",
    ]
    band = f"normal: [{-NORMAL}, {NORMAL}], limits: [{-LIMIT}, {LIMIT}]"
    ids: list[str] = []
    for i in range(assets):
        lines += [f"  - id: {asset_id(i)}", "    subsystem: bench", "    type: sensor-rack"]
        lines.append("    signals:")
        for k in range(PER_ASSET):
            lines.append(f"      - {{name: s{k}, {band}}}")
            ids.append(f"{asset_id(i)}.s{k}")
    if probes:
        lines += [
            f"  - id: {PROBE_ASSET}",
            "    subsystem: bench",
            "    type: probe",
            "    signals:",
        ]
        lines += [f"      - {{name: p{k}, {band}}}" for k in range(probes)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ids


# -- the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """Nexus in a child process (this file run as a script); `stop` shuts it down gracefully
    (SIGINT: uvicorn stops, then the runtime, as under `nexus serve`)."""

    def __init__(
        self,
        site: Path,
        data_dir: Path,
        *,
        reorder_tolerance: float = 2.0,
        queue_size: int | None = None,
        profile: Path | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.port = free_port()
        self.log = data_dir / "server.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--site",
            str(site),
            "--data-dir",
            str(data_dir),
            "--port",
            str(self.port),
            "--reorder-tolerance",
            str(reorder_tolerance),
        ]
        if queue_size is not None:
            argv += ["--queue-size", str(queue_size)]
        self._profile = profile
        if profile is not None:
            argv += ["--profile", str(profile)]
        self._out = self.log.open("wb")
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.output()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(self.url("/api/v1/health")):
                break
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"server not up after {timeout} s: {self.output()}")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def metrics(self) -> dict[str, float]:
        """The server's Prometheus counters, summed over their labels ("name{...}" kept too)."""
        with urllib.request.urlopen(self.url("/metrics"), timeout=30) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if not line or line[0] == "#":
                continue
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
            name = key.partition("{")[0]
            if name != key:
                out[name] = out.get(name, 0.0) + float(value)
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()

    def profile_mark(self) -> None:
        """Start (SIGUSR1) the profiled window of a server started with `profile`."""
        self.proc.send_signal(signal.SIGUSR1)

    def profile_write(self, timeout: float = 30.0) -> dict[str, Any]:
        """End (SIGUSR2) the profiled window; the table the server writes."""
        assert self._profile is not None
        self._profile.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                report: dict[str, Any] = json.loads(self._profile.read_text(encoding="utf-8"))
                return report
            time.sleep(0.2)
        raise TimeoutError(f"no profile at {self._profile} after {timeout} s")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


# Stages of the server's work, by the function that does each (its cumulative CPU): what the
# profile's summary reports, as shares of all the server's CPU.
STAGES = {
    "parse JSON": "json_batch.py:parse_json_batch",
    "parse line protocol": "lineprotocol.py:parse_line_protocol",
    "intake (log, reorder buffer, queue)": "runtime.py:ingest_parsed",
    "history store (Parquet)": "history.py:append",
    "live telemetry": "live.py:append",
    "detector bank": "bank.py:process",
    "findings store": "sqlite.py:add_findings",
    "alarms": "manager.py:on_findings",
}


def _thread_group(name: str) -> str:
    if name == "MainThread":
        return "event loop (HTTP server, routing, responses)"
    if name == "nexus-pipeline":
        return "pipeline worker (telemetry stores, detectors, findings, alarms)"
    if name.startswith(("AnyIO worker", "ThreadPoolExecutor")):
        return "thread pool (parsing, intake)"
    return f"other ({name})"


class ThreadProfiles:
    """cProfile in every thread of the server, timed by each thread's own CPU clock
    (`time.thread_time`): a thread blocked on I/O, a lock, a queue or the GIL is not charged,
    so the table says where the CPU went. Threads started after `install` are covered (the
    pipeline worker, the thread pool's workers) and so is the installing (main) thread.

    SIGUSR1 takes a snapshot of every thread's table, SIGUSR2 another and writes the difference
    (the window between them: no start-up, no shutdown) as JSON to `path`: the CPU by thread
    group and by stage (`STAGES`), and own and cumulative CPU of the top functions, all as
    shares of the CPU the server's threads used. cProfile roughly doubles the cost of
    Python-heavy code: read shares, not absolute times."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.profiles: list[tuple[str, cProfile.Profile]] = []
        self._start: dict[tuple[str, str], tuple[float, float]] = {}

    def _new(self) -> cProfile.Profile:
        prof = cProfile.Profile(time.thread_time)
        with self._lock:
            self.profiles.append((threading.current_thread().name, prof))
        return prof

    def _first_call(self, *_: object) -> None:
        self._new().enable()  # replaces this hook in this thread only

    def install(self) -> None:
        threading.setprofile(self._first_call)
        self._new().enable()
        signal.signal(signal.SIGUSR1, lambda *_: self._mark())
        signal.signal(signal.SIGUSR2, lambda *_: self._write())

    def _table(self) -> dict[tuple[str, str], tuple[float, float]]:
        """(thread group, function) -> (own seconds, cumulative seconds)."""
        out: dict[tuple[str, str], tuple[float, float]] = {}
        with self._lock:
            profiles = list(self.profiles)
        for thread, prof in profiles:
            group = _thread_group(thread)
            for entry in prof.getstats():
                code = entry.code
                if isinstance(code, str):
                    name = code
                else:
                    name = f"{Path(code.co_filename).name}:{code.co_firstlineno}:{code.co_name}"
                own, cum = out.get((group, name), (0.0, 0.0))
                out[(group, name)] = (own + entry.inlinetime, cum + entry.totaltime)
        return out

    def _mark(self) -> None:
        self._start = self._table()

    def _write(self) -> None:
        end = self._table()
        zero = (0.0, 0.0)
        diff = {
            key: (own - self._start.get(key, zero)[0], cum - self._start.get(key, zero)[1])
            for key, (own, cum) in end.items()
        }
        total = sum(own for own, _ in diff.values()) or 1.0
        by_function: dict[str, list[float]] = {}
        by_thread: dict[str, float] = {}
        for (group, name), (own, cum) in diff.items():
            row = by_function.setdefault(name, [0.0, 0.0])
            row[0] += own
            row[1] += cum
            by_thread[group] = by_thread.get(group, 0.0) + own
        stages = {
            label: sum(
                row[1]
                for name, row in by_function.items()
                if name.startswith(function.split(":")[0])
                and name.endswith(":" + function.split(":")[1])
            )
            for label, function in STAGES.items()
        }

        def ranked(column: int) -> list[tuple[str, float]]:
            rows = sorted(by_function.items(), key=lambda kv: -kv[1][column])[:40]
            return [(name, round(row[column] / total, 4)) for name, row in rows]

        report = {
            "cpu_seconds": round(total, 3),
            "threads": {k: round(v / total, 3) for k, v in sorted(by_thread.items())},
            "stages": {k: round(v / total, 3) for k, v in stages.items() if v},
            "self": ranked(0),
            "cumulative": ranked(1),
        }
        self.path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


def _serve(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Nexus as `nexus serve` runs it, for benchmarks")
    parser.add_argument("--site", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reorder-tolerance", type=float, default=2.0)
    parser.add_argument("--queue-size", type=int, default=None)
    parser.add_argument("--profile", type=Path, default=None, help="see ThreadProfiles")
    args = parser.parse_args(argv)

    import uvicorn

    from safety_nexus.api.app import create_app
    from safety_nexus.pipeline.builder import RuntimeSettings, build_runtime

    extra: dict[str, Any] = {}
    if args.queue_size is not None:
        extra["queue_size"] = args.queue_size
    settings = RuntimeSettings(
        site=args.site,
        data_dir=args.data_dir,
        source="http",
        reorder_tolerance=args.reorder_tolerance,
        **extra,
    )
    runtime = build_runtime(settings)
    if args.profile:
        ThreadProfiles(args.profile).install()
    runtime.start()
    try:
        uvicorn.run(create_app(runtime), host="127.0.0.1", port=args.port, log_level="warning")
    finally:
        runtime.stop()


# -- the load ---------------------------------------------------------------------------------


@dataclass
class LoadConfig:
    """One load process: `len(signals)` connections, each posting batches of its signals."""

    port: int
    # "json" or "json-columns" (POST /api/v1/telemetry), "lp" (POST /api/v1/write, ns)
    format: str
    signals: list[list[str]]  # per connection: the signal ids of every batch it sends
    start: float  # wall-clock time to start at
    stop: float  # ... and to stop sending at
    window: tuple[float, float]  # responses in this wall-clock window are counted apart
    rate: float | None = None  # batches per second per connection (None: as fast as answered)
    backoff: float = 0.1  # seconds to wait after a 503
    pool: int = 32  # distinct bodies per connection (values differ, times are stamped in)
    seed: int = 1
    source: str = "bench"


@dataclass
class ConnectionResult:
    sent: int = 0
    status: dict[int, int] = field(default_factory=dict)
    accepted: int = 0  # samples in 2xx answers
    accepted_in_window: int = 0
    answered_in_window: int = 0
    errors: int = 0  # connection failures (reconnected)
    seconds: list[float] = field(default_factory=list)  # request -> answer, in the window
    first_error: str = ""


def _bodies(cfg: LoadConfig, signals: list[str], rng: np.random.Generator) -> list[list[bytes]]:
    """`pool` bodies, each split at its timestamp placeholders (joined again with the time)."""
    out: list[list[bytes]] = []
    for _ in range(cfg.pool):
        values = rng.normal(0.0, NORMAL / 6, size=len(signals))
        if cfg.format == "json-columns":
            signal_list = ",".join(f'"{sid}"' for sid in signals)
            value_list = ",".join(f"{v:.6f}" for v in values)
            body = (
                f'{{"source":"{cfg.source}","signals":[{signal_list}],'
                f'"time":{_JSON_STAMP.decode()},"values":[{value_list}]}}'
            ).encode()
            out.append(body.split(_JSON_STAMP))
        elif cfg.format == "json":
            samples = ",".join(
                f'{{"signal":"{sid}","time":{_JSON_STAMP.decode()},"value":{v:.6f}}}'
                for sid, v in zip(signals, values, strict=True)
            )
            body = f'{{"source":"{cfg.source}","samples":[{samples}]}}'.encode()
            out.append(body.split(_JSON_STAMP))
        else:
            lines: list[str] = []
            assets: dict[str, list[str]] = {}
            for sid, v in zip(signals, values, strict=True):
                asset, name = sid.split(".")
                assets.setdefault(asset, []).append(f"{name}={v:.6f}")
            for asset, fields in assets.items():
                lines.append(f"{asset} {','.join(fields)} {_LP_STAMP.decode()}")
            out.append("\n".join(lines).encode().split(_LP_STAMP))
    return out


def _read_answer(sock: socket.socket, buf: bytearray) -> int:
    """Read one HTTP/1.1 response (Content-Length framed); returns its status code."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    head_end = buf.index(b"\r\n\r\n") + 4
    head = bytes(buf[:head_end]).decode("latin-1")
    status = int(head.split(" ", 2)[1])
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(buf) < head_end + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    del buf[: head_end + length]
    return status


def _connection(cfg: LoadConfig, signals: list[str], seed: int, out: ConnectionResult) -> None:
    rng = np.random.default_rng(seed)
    pool = _bodies(cfg, signals, rng)
    if cfg.format.startswith("json"):
        path = "/api/v1/telemetry"
        ctype = "application/json"
    else:
        path = "/api/v1/write?precision=ns"
        ctype = "text/plain; charset=utf-8"
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
    sock: socket.socket | None = None
    buf = bytearray()
    last = 0.0
    k = 0
    time.sleep(max(0.0, cfg.start - time.time()))
    next_at = cfg.start
    while True:
        now = time.time()
        if now >= cfg.stop:
            break
        if cfg.rate:
            if now < next_at:
                time.sleep(next_at - now)
            next_at += 1.0 / cfg.rate
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", cfg.port), timeout=60)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                buf.clear()
            sent_at = time.time()
            stamp_s = max(round(sent_at, 3), round(last + 0.001, 3))
            last = stamp_s
            stamp = (
                f"{stamp_s:.3f}".encode()
                if cfg.format.startswith("json")
                else str(round(stamp_s * 1000) * 1_000_000).encode()
            )
            body = stamp.join(pool[k % len(pool)])
            k += 1
            sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            out.sent += 1
            status = _read_answer(sock, buf)
        except (OSError, ConnectionError, ValueError) as err:
            out.errors += 1
            out.first_error = out.first_error or repr(err)
            if sock is not None:
                sock.close()
            sock = None
            time.sleep(0.05)
            continue
        answered = time.time()
        out.status[status] = out.status.get(status, 0) + 1
        in_window = cfg.window[0] <= answered < cfg.window[1]
        if 200 <= status < 300:
            out.accepted += len(signals)
            if in_window:
                out.accepted_in_window += len(signals)
        if in_window:
            out.answered_in_window += 1
            out.seconds.append(answered - sent_at)
        if status == 503:
            time.sleep(cfg.backoff)
    if sock is not None:
        sock.close()


def run_load(cfg: LoadConfig, results: Any) -> None:
    """A load process: one thread per connection; puts a summary dict on `results`."""
    outs = [ConnectionResult() for _ in cfg.signals]
    threads = [
        threading.Thread(target=_connection, args=(cfg, sig, cfg.seed * 1000 + i, outs[i]))
        for i, sig in enumerate(cfg.signals)
    ]
    cpu0 = time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    status: dict[int, int] = {}
    for o in outs:
        for code, count in o.status.items():
            status[code] = status.get(code, 0) + count
    results.put(
        {
            "sent": sum(o.sent for o in outs),
            "status": status,
            "accepted": sum(o.accepted for o in outs),
            "accepted_in_window": sum(o.accepted_in_window for o in outs),
            "answered_in_window": sum(o.answered_in_window for o in outs),
            "connection_errors": sum(o.errors for o in outs),
            "first_error": next((o.first_error for o in outs if o.first_error), ""),
            "seconds": [s for o in outs for s in o.seconds],
            "cpu_seconds": time.process_time() - cpu0,
        }
    )


if __name__ == "__main__":
    _serve()
