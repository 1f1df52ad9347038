"""The Prometheus remote-write decoder: samples per second on one core, by request shape.

    python benchmarks/remote_write.py            # ~20 s; results/remote_write.json

Requests are shaped as Prometheus sends them: every series with one sample (a scrape's worth
per shard), 500 series a request (`max_samples_per_send` of Prometheus 2.42; later versions
send 2,000), labels `__name__`, `instance`, `job` and one more. Cases vary the share of series
the source's `map` names: all of them; 10 % (a Prometheus that forwards everything, whose
mapped metrics also come from unmapped instances: every series needs its name looked up);
none of the metrics (the noise Prometheus sends of itself). "warm" is a source that has met
the label sets before (the steady state), "cold" a fresh `SeriesMap` for every request (the
first request after a start). Timed: `decode_write_request` on the compressed body (snappy,
protobuf, names, the `ParsedBatch`), not HTTP nor the pipeline. Each case runs for
`--seconds`; the figure is samples (of all series, mapped or not) over wall time, with the
process CPU time of the same run beside it (the machine is shared).
"""

from __future__ import annotations

import os

if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import cramjam

from _machine import machine
from safety_nexus.ingest import remote_write as rw
from safety_nexus.ingest.remote_write import SeriesMap, decode_write_request

RESULTS = Path(__file__).resolve().parent / "results"
T0_MS = 1_780_000_000_000


def request(n_series: int, mapped: float) -> tuple[bytes, dict[str, int], frozenset[str]]:
    """A compressed request of `n_series` one-sample series; the map of its first `mapped`
    share (of metric names `m<k>`), or of nothing of it when `mapped` is 0."""
    req = rw.WriteRequest()
    columns: dict[str, int] = {}
    metrics: set[str] = set()
    for i in range(n_series):
        metric = f"m{i % 50}"
        labels = [
            ("__name__", metric),
            ("device", f"d{i % 7}"),
            ("instance", f"host-{i // 50}:9100"),
            ("job", "node"),
        ]
        ts = req.timeseries.add()
        for k, v in labels:
            ts.labels.add(name=k, value=v)
        ts.samples.add(value=float(i) * 0.5, timestamp=T0_MS + i)
        if i < mapped * n_series:
            columns[rw.series_name(metric, labels)] = i % 1000
            metrics.add(metric)
    if not columns:
        columns["unsent_metric"] = 0
        metrics.add("unsent_metric")
    body = bytes(cramjam.snappy.compress_raw(req.SerializeToString()))
    return body, columns, frozenset(metrics)


def run(n_series: int, mapped: float, warm: bool, seconds: float) -> dict[str, Any]:
    body, columns, metrics = request(n_series, mapped)
    smap = SeriesMap("bench", columns, metrics)
    decode_write_request(body, smap)  # warm-up (and, when warm, the label sets met once)
    n = 0
    wall, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        if not warm:
            smap = SeriesMap("bench", columns, metrics)
        decode_write_request(body, smap)
        n += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "series_per_request": n_series,
        "mapped_share": mapped,
        "remembered": warm,
        "body_bytes": len(body),
        "requests": n,
        "us_per_request": wall / n * 1e6,
        "samples_per_s": n * n_series / wall,
        "samples_per_s_cpu": n * n_series / cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per case")
    parser.add_argument("--out", type=Path, default=RESULTS / "remote_write.json")
    args = parser.parse_args(argv)
    info = machine()
    cases = [
        (500, 1.0, True),
        (500, 0.1, True),
        (500, 0.0, True),
        (2000, 1.0, True),
        (500, 1.0, False),
        (500, 0.0, False),
    ]
    results = [run(n, share, warm, args.seconds) for n, share, warm in cases]
    report = {
        "benchmark": "remote_write",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "machine": info,
        "cases": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    parts = [
        f"{r['series_per_request']}×{r['mapped_share']:.0%}{'' if r['remembered'] else ' cold'}"
        f"={r['samples_per_s'] / 1e6:.2f} M/s"
        for r in results
    ]
    load = info["load_average_at_start"]
    print(f"remote_write: {' '.join(parts)} (one core, load {load[0]:.1f} at start)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
