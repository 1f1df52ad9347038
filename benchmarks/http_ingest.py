"""HTTP ingest to findings: samples per second through `POST /api/v1/telemetry` (JSON) and
`POST /api/v1/write` (line protocol) and on through the detector bank, with the load generator
in other processes (issue 4: batches of 5,000 samples, target ≥ 1 million samples/s on the
2-core machine).

    python benchmarks/http_ingest.py            # ~7 min, 3 runs a format; results/http_ingest.json
    python benchmarks/http_ingest.py --quick    # ~1 min smoke run; results/http_ingest.quick.json
    python benchmarks/http_ingest.py --profile  # also sample the server's stacks (see below)

For each format a fresh server (`_nexus_server.py`: what `nexus serve` runs) watches a generated
site of `--connections` × 5,000 signals (assets of ten signals, hard limits on every one); the
load processes (`--processes`, `multiprocessing`) keep `--connections` keep-alive connections in
all, each posting batches of its own 5,000 signals (one snapshot: JSON sample objects, the
columnar JSON form with one `time`, or 500 line-protocol lines of ten fields with one nanosecond
timestamp) as fast as they are answered, each stamped with the wall-clock time it is sent.
After `--warmup` seconds (every signal past the detectors' warm-up of 100 samples), `--duration`
seconds are measured:

* processed: the server's `nexus_samples_processed_total` (samples through the whole chain:
  telemetry store, detector bank, findings, alarms) at the start and end of the window, over
  the window's length: the figure against the target;
* accepted: samples in 2xx answers received in the window (what the clients saw);
* 503 (pipeline full) and any other status, per format; each 503 costs the client a 0.1 s wait;
* the server's CPU (all its threads and processes: its parse workers, see ingest.parse_pool;
  from /proc via psutil) and the clients', and the whole machine's busy fraction over the
  window, since other jobs share the two cores.

Each format runs `--repeat` times (3; formats alternate), each on a fresh server, and the median
is the figure: on two cores shared by server and load, runs differ by 10-15 %.

`--profile` runs the server under cProfile in every thread, charged by each thread's own CPU
clock (`_nexus_server.ThreadProfiles`), and puts where the server's CPU went in the measured
window in the JSON: by thread, by stage (parse, intake, history store, detector bank, ...) and
by function; the profiler slows Python code about twice, so a profiled run's throughput is not
a result (results/http_ingest.profile.json keeps the profiled run apart).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from _machine import machine
from _nexus_server import PER_ASSET, LoadConfig, Server, run_load, write_site

TARGET = 1_000_000  # samples/s, issue 4
BATCH = 5_000
RESULTS = Path(__file__).resolve().parent / "results"


def _busy(before: Any, after: Any) -> float:
    """The machine's busy fraction between two `psutil.cpu_times()` readings."""
    idle = (after.idle + after.iowait) - (before.idle + before.iowait)
    total = sum(after) - sum(before)
    return 1.0 - idle / total if total > 0 else 0.0


def _tree_cpu(ps: psutil.Process) -> dict[int, float]:
    """CPU seconds (user + system) of the server and of each of its processes (the parse
    workers), by pid."""
    out: dict[int, float] = {}
    for proc in (ps, *ps.children(recursive=True)):
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            out[proc.pid] = t.user + t.system
    return out


def _snapshot(
    server: Server, ps: psutil.Process
) -> tuple[float, dict[str, float], dict[int, float], Any]:
    """(time, server metrics, CPU seconds of the server's processes, machine CPU times); the
    time is the middle of the metrics request, which a busy server may take a while to
    answer."""
    before = time.time()
    metrics = server.metrics()
    return (before + time.time()) / 2, metrics, _tree_cpu(ps), psutil.cpu_times()


def _settled(server: Server, timeout: float = 4.0) -> dict[str, float]:
    """Metrics once the pipeline has stopped moving after the load (what the reorder buffer
    still holds is released by the runtime's idle tick after 5 s of silence, together with a
    clock row that finds every signal stale: not waited for, it is not ingest)."""
    deadline = time.monotonic() + timeout
    last = server.metrics()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        m = server.metrics()
        if m.get("nexus_samples_processed_total") == last.get("nexus_samples_processed_total"):
            return m
        last = m
    return last


def run_format(fmt: str, site: Path, ids: list[str], data_dir: Path, args: Any) -> dict[str, Any]:
    profile = data_dir / "profile.json" if args.profile else None
    server = Server(site, data_dir, reorder_tolerance=args.reorder_tolerance, profile=profile)
    try:
        conns = [ids[i * BATCH : (i + 1) * BATCH] for i in range(args.connections)]
        start = time.time() + 4.0  # the load processes build their bodies meanwhile
        window = (start + args.warmup, start + args.warmup + args.duration)
        ctx = multiprocessing.get_context("spawn")
        results = ctx.Queue()
        procs = []
        for p in range(args.processes):
            cfg = LoadConfig(
                port=server.port,
                format=fmt,
                signals=conns[p :: args.processes],
                start=start,
                stop=window[1],
                window=window,
                seed=p + 1,
            )
            proc = ctx.Process(target=run_load, args=(cfg, results), name=f"load-{p}")
            proc.start()
            procs.append(proc)
        server_ps = psutil.Process(server.pid)
        time.sleep(max(0.0, window[0] - time.time()))
        t0, m0, cpu0, sys0 = _snapshot(server, server_ps)
        if profile:
            server.profile_mark()
        time.sleep(max(0.0, window[1] - time.time()))
        table = server.profile_write() if profile else None
        t1, m1, cpu1, sys1 = _snapshot(server, server_ps)
        loads = [results.get(timeout=120) for _ in procs]
        for proc in procs:
            proc.join(30)
        accepted_total = sum(r["accepted"] for r in loads)
        settled = _settled(server)
    finally:
        server.stop()
    seconds = t1 - t0

    def delta(name: str) -> float:
        return m1.get(name, 0.0) - m0.get(name, 0.0)

    status: dict[str, int] = {}
    for r in loads:
        for code, count in r["status"].items():
            status[str(code)] = status.get(str(code), 0) + count
    latencies = np.array([s for r in loads for s in r["seconds"]]) * 1e3
    processed = delta("nexus_samples_processed_total") / seconds
    accepted = sum(r["accepted_in_window"] for r in loads) / args.duration
    # every process of the server's (a worker started in the window counts from zero)
    server_cpu = sum(cpu1[pid] - cpu0.get(pid, 0.0) for pid in cpu1) / seconds
    main_cpu = (cpu1[server_ps.pid] - cpu0[server_ps.pid]) / seconds
    return {
        "format": fmt,
        "samples_per_s": round(processed),
        "ratio_to_target": round(processed / TARGET, 3),
        "accepted_samples_per_s": round(accepted),
        "server_accepted_samples_per_s": round(
            delta("nexus_ingest_accepted_samples_total") / seconds
        ),
        "status_counts": status,
        "busy_503": status.get("503", 0),
        "rejected_busy_in_window": delta('nexus_ingest_rejected_total{reason="busy"}'),
        "too_many_429": status.get("429", 0),
        "connection_errors": sum(r["connection_errors"] for r in loads),
        "first_error": next((r["first_error"] for r in loads if r["first_error"]), ""),
        "request_ms": {
            "p50": round(float(np.percentile(latencies, 50)), 1) if latencies.size else None,
            "p99": round(float(np.percentile(latencies, 99)), 1) if latencies.size else None,
        },
        "findings_in_window": delta("nexus_findings_total"),
        "pipeline_batches_in_window": delta("nexus_pipeline_batch_seconds_count"),
        "pipeline_seconds_in_window": round(delta("nexus_pipeline_batch_seconds_sum"), 3),
        "queue_depth_at_end": m1.get("nexus_pipeline_queue_depth", 0.0),
        "accepted_total": accepted_total,
        "processed_when_settled": settled.get("nexus_samples_processed_total", 0.0),
        "server_cpu_cores": round(server_cpu, 3),  # all its processes
        "server_main_process_cpu_cores": round(main_cpu, 3),
        "server_processes": len(cpu1),
        # capacity regardless of what else runs: samples per second of server CPU
        "samples_per_server_cpu_s": round(processed / server_cpu) if server_cpu else None,
        "client_cpu_cores": round(sum(r["cpu_seconds"] for r in loads) / (window[1] - start), 3),
        "machine_busy_fraction": round(_busy(sys0, sys1), 3),
        "window_seconds": round(seconds, 2),
        "profile": table,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    formats = ["json", "json-columns", "lp"]
    parser.add_argument("--formats", nargs="+", default=formats, choices=formats)
    parser.add_argument("--connections", type=int, default=4, help="in all (5,000 signals each)")
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds before measuring")
    parser.add_argument("--reorder-tolerance", type=float, default=2.0)
    parser.add_argument("--profile", action="store_true", help="sample the server's stacks")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per format (a fresh server each); the median"
    )
    args = parser.parse_args()
    if args.quick:
        args.connections, args.duration, args.warmup, args.repeat = 2, 4.0, 3.0, 1
    if args.profile:
        args.repeat = 1
    args.processes = min(args.processes, args.connections)
    name = "http_ingest.quick" if args.quick else "http_ingest"
    if args.profile:
        name += ".profile"  # a profiled run's figures are not results
    info = machine(logical_cpus=psutil.cpu_count(), python_executable=sys.executable)
    assets = args.connections * BATCH // PER_ASSET
    with tempfile.TemporaryDirectory(prefix="nexus-http-bench-") as tmp:
        site = Path(tmp) / "site.yaml"
        ids = write_site(site, assets)
        runs = [
            {"repeat": k, **run_format(fmt, site, ids, Path(tmp) / f"{fmt}-{k}", args)}
            for k in range(args.repeat)
            for fmt in args.formats  # formats alternate, so that drift in the machine is shared
        ]
    # The figure per format: the median run (runs on two shared cores vary by ±10-15 %).
    medians = {
        fmt: int(np.median([r["samples_per_s"] for r in runs if r["format"] == fmt]))
        for fmt in args.formats
    }
    report = {
        "benchmark": "http_ingest",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": info,
        "load_average_at_end": list(os.getloadavg()),
        "config": {
            "signals": len(ids),
            "batch_samples": BATCH,
            "connections": args.connections,
            "load_processes": args.processes,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "reorder_tolerance_s": args.reorder_tolerance,
            "server": "uvicorn (h11, asyncio), one worker, log_level=warning: as `nexus serve`",
            "lp_shape": "500 lines x 10 fields, one ns timestamp",
            "repeat": args.repeat,
        },
        "target_samples_per_s": TARGET,
        "median_samples_per_s": medians,
        "runs": runs,
        "pass": all(m >= TARGET for m in medians.values()),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    parts = []
    for fmt, median in medians.items():
        each = [r for r in runs if r["format"] == fmt]
        spread = "/".join(f"{r['samples_per_s'] / 1e6:.2f}" for r in each)
        cores = np.median([r["server_cpu_cores"] for r in each])
        parts.append(
            f"{fmt} {median:,} samples/s ({median / TARGET:.2f}× target; runs {spread} M/s, "
            f"{sum(r['busy_503'] for r in each)} × 503, server {cores:.2f} cores)"
        )
    verdict = "PASS" if report["pass"] else "FAIL"
    busy = max(r["machine_busy_fraction"] for r in runs)
    print(
        f"{name}: {'; '.join(parts)} — {len(ids):,} signals, batches of {BATCH:,}, "
        f"{args.connections} connections; machine busy {busy:.0%} ({verdict} against ≥ 1 M/s)"
    )


if __name__ == "__main__":
    main()
