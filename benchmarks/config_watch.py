"""What the configuration-integrity stage costs per frame (`pipeline.watch_config`).

    .venv/bin/python benchmarks/config_watch.py           # ~20 s; results/config_watch.json
    .venv/bin/python benchmarks/config_watch.py --quick   # ~3 s smoke run; config_watch.quick.json

A synthetic site with N readbacks (half setpoints, half directives, one asset each) and no other
signal, one core (`sched_setaffinity`). The stage runs on frames of 1 and of 100 rows in which
every readback reports each row (the worst case: real readbacks report every few seconds), in
three states: every controller in step with its authorised value; 1 % of them out of step
(they keep an unauthorised value: their columns take the per-column path on every frame); and
the first frame of a change (1 % move: findings built and events journalled, in an in-memory
store). Reported: microseconds per frame (median of repeats) and nanoseconds per readback
sample.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine
from safety_nexus.control.config_integrity import ConfigurationRegistry
from safety_nexus.core.clock import ManualClock
from safety_nexus.core.types import Frame
from safety_nexus.pipeline.stages import Batch
from safety_nexus.pipeline.watch_config import WatchConfiguration
from safety_nexus.site.schema import Site
from safety_nexus.site.table import signal_table
from safety_nexus.store.sqlite import SqliteStore

RESULTS = Path(__file__).resolve().parent / "results"


def _site(n: int) -> Site:
    half = n // 2
    assets = [
        {
            "id": f"a{i}",
            "subsystem": "s",
            "type": "plc",
            "signals": [{"name": "rb", "normal": [0, 10], "period": 1}],
        }
        for i in range(n)
    ]
    setpoints = [
        {"id": f"sp{i}", "asset": f"a{i}", "value": 5.0, "signal": f"a{i}.rb", "tolerance": 0.01}
        for i in range(half)
    ]
    directives = [
        {
            "id": f"d{i}",
            "asset": f"a{i}",
            "states": ["auto", "manual", "off"],
            "value": "auto",
            "signal": f"a{i}.rb",
        }
        for i in range(half, n)
    ]
    return Site.model_validate(
        {
            "site": {"name": "bench"},
            "subsystems": [{"id": "s", "name": "S"}],
            "assets": assets,
            "setpoints": setpoints,
            "directives": directives,
        }
    )


def _authorised(n: int) -> np.ndarray:
    return np.where(np.arange(n) < n // 2, 5.0, 0.0)


def _time_frames(stage: WatchConfiguration, frames: list[Frame]) -> list[float]:
    out = []
    for frame in frames:
        t = time.perf_counter()
        stage.run(Batch(source="bench", frame=frame))
        out.append(time.perf_counter() - t)
    return out


def _case(n: int, rows: int, state: str, repeats: int) -> dict[str, Any]:
    site = _site(n)
    store = SqliteStore(":memory:")
    registry = ConfigurationRegistry(site, signal_table(site), store, ManualClock(0.0))
    stage = WatchConfiguration(registry)
    base = _authorised(n)
    off = np.zeros(n, dtype=np.bool_)
    off[:: max(1, n // (n // 100 or 1))] = True  # 1 %
    wrong = np.where(off, base + 1.0, base)
    t = 1.0
    if state == "out_of_step":  # they went wrong before the timed frames
        stage.run(Batch(source="bench", frame=Frame(np.array([t]), wrong[None, :].copy())))
        t += 1.0

    def frame(values: np.ndarray) -> Frame:
        nonlocal t
        times = t + np.arange(rows, dtype=np.float64)
        t += rows
        return Frame(times, np.repeat(values[None, :], rows, axis=0))

    if state == "change":  # each timed frame moves the 1 % away and the previous ones back
        frames = [frame(wrong if k % 2 == 0 else base) for k in range(repeats)]
    else:
        frames = [frame(wrong if state == "out_of_step" else base) for _ in range(repeats)]
    seconds = _time_frames(stage, frames)
    store.close()
    median = statistics.median(seconds)
    return {
        "readbacks": n,
        "rows": rows,
        "state": state,
        "frames": repeats,
        "us_per_frame": median * 1e6,
        "ns_per_sample": median * 1e9 / (rows * n),
        "out_of_step": int(off.sum()) if state != "in_step" else 0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    info = machine()
    sizes = (100, 1000) if args.quick else (100, 1000, 10000)
    repeats = 20 if args.quick else 200
    cases = [
        _case(n, rows, state, repeats if state != "change" else max(10, repeats // 4))
        for n in sizes
        for rows in (1, 100)
        for state in ("in_step", "out_of_step", "change")
    ]
    name = "config_watch.quick" if args.quick else "config_watch"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(
        json.dumps({"machine": info, "cases": cases}, indent=2) + "\n", encoding="utf-8"
    )
    for c in cases:
        print(
            f"  {c['readbacks']:>6} readbacks, {c['rows']:>3} rows, {c['state']:<11}"
            f" {c['us_per_frame']:>9.1f} µs/frame {c['ns_per_sample']:>7.1f} ns/sample"
        )
    big = [c for c in cases if c["readbacks"] == max(sizes) and c["rows"] == 1]
    summary = ", ".join(f"{c['state']}={c['us_per_frame']:.0f} µs" for c in big)
    print(f"config_watch: {max(sizes)} readbacks, 1-row frame: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
