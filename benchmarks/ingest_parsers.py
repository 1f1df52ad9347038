"""The HTTP parsers on their own: microseconds per 5,000-sample batch, one thread.

    python benchmarks/ingest_parsers.py                   # ~20 s; results/ingest_parsers.json
    python benchmarks/ingest_parsers.py --compare 0ea8012  # also the parsers of that commit
    python benchmarks/ingest_parsers.py --quick           # fewer repeats; ….quick.json

Cases (a table of 20,000 signals `a00000.s0` ...; values are random doubles):

* json snapshot: 5,000 sample objects, one epoch-seconds time (what a gateway posts);
* json scattered: 5,000 sample objects over random signals, each its own time;
* json iso: the snapshot with an ISO-8601 time string in every sample;
* json columns: the snapshot as `signals` / `time` / `values` lists (and with a `times` list);
* lp snapshot: 500 lines of ten fields, one nanosecond timestamp (`_bulk`, the whole-body path);
* lp scattered: 5,000 one-field lines over random signals, each its own timestamp;
* lp tagged: 5,000 one-field lines `m,host=hN f=...` renamed by a source `map`;
* lp line by line: lp scattered with an escaped space in a tag of its first line, which sends
  it down the line-by-line path (as any escape, a string field or mixed timestamps do).

Each case is parsed `--repeat` times after one untimed parse; the median of the thread's CPU
time is reported (on the shared machine, wall time mostly measures the other jobs). With
`--compare REV` the modules of that git revision (`git show REV:...`, read-only) parse the same
bodies, each repeat timing the new and the old parser in turn (the load of the shared machine
drifts); cases they do not understand are left out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from _machine import machine
from safety_nexus.core.errors import IngestError
from safety_nexus.core.types import SignalTable
from safety_nexus.detect.testing import make_table
from safety_nexus.ingest import json_batch, lineprotocol

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
BATCH = 5_000
T0 = 1_780_000_000.25


def _bodies(
    table: SignalTable, rng: np.random.Generator
) -> dict[str, tuple[str, bytes, dict[str, Any]]]:
    """name -> (parser, body, keyword arguments)."""
    ids = table.ids
    values = rng.normal(size=BATCH).tolist()
    snap = ids[:BATCH]
    scattered = [ids[i] for i in rng.integers(0, len(ids), BATCH)]
    times = T0 + np.arange(BATCH) * 1e-3
    iso = dt.datetime.fromtimestamp(T0, dt.UTC).isoformat()

    def samples(sids: list[str], ts: list[Any]) -> bytes:
        rows = [
            {"signal": s, "time": t, "value": float(v)}
            for s, t, v in zip(sids, ts, values, strict=True)
        ]
        return json.dumps({"source": "gw", "samples": rows}).encode()

    def lp_lines(sids: list[str], stamps: list[int]) -> bytes:
        lines = []
        for sid, v, stamp in zip(sids, values, stamps, strict=True):
            m, f = sid.split(".")
            lines.append(f"{m} {f}={v!r} {stamp}")
        return "\n".join(lines).encode()

    snapshot_lines = []
    for a in range(BATCH // 10):
        fields = ",".join(f"s{k}={values[a * 10 + k]!r}" for k in range(10))
        snapshot_lines.append(f"a{a:05d} {fields} {int(T0 * 1e9)}")
    ns = [int(t * 1e9) for t in times]
    tagged = "\n".join(
        f"m,host=h{i} f={v!r} {s}" for i, (v, s) in enumerate(zip(values, ns, strict=True))
    )
    names = {f"m,host=h{i} f": ids[i] for i in range(BATCH)}
    columns = {"source": "gw", "signals": list(snap), "values": values}
    # One tag value with an escaped space: the whole body goes line by line.
    first, _, rest = lp_lines(scattered, ns).partition(b" ")
    escaped = first + b",note=a\\ b " + rest
    return {
        "json snapshot": ("json", samples(list(snap), [T0] * BATCH), {}),
        "json scattered": ("json", samples(scattered, times.tolist()), {}),
        "json iso": ("json", samples(list(snap), [iso] * BATCH), {}),
        "json columns": ("json", json.dumps({**columns, "time": T0}).encode(), {}),
        "json columns, times": (
            "json",
            json.dumps({**columns, "times": [T0] * BATCH}).encode(),
            {},
        ),
        "lp snapshot": ("lp", "\n".join(snapshot_lines).encode(), {}),
        "lp scattered": ("lp", lp_lines(scattered, ns), {}),
        "lp tagged": ("lp", tagged.encode(), {"names": names}),
        "lp line by line": ("lp", escaped, {}),
    }


def _times(fns: list[Callable[[], object] | None], repeat: int) -> list[float | None]:
    """Median CPU seconds of each function (the thread's own clock: time spent waiting for a
    core that other jobs hold is not counted), timed in turn (the machine's load drifts:
    interleaving keeps a before/after comparison fair)."""
    live = [fn for fn in fns if fn is not None]
    for fn in live:
        fn()
    spent: dict[int, list[float]] = {id(fn): [] for fn in live}
    for _ in range(repeat):
        for fn in live:
            start = time.thread_time()
            fn()
            spent[id(fn)].append(time.thread_time() - start)
    return [float(np.median(spent[id(fn)])) if fn is not None else None for fn in fns]


def _load_revision(rev: str) -> tuple[ModuleType, ModuleType]:
    """The JSON and line-protocol modules as they were at `rev` (git show: nothing changes)."""
    tmp = Path(tempfile.mkdtemp(prefix="nexus-parsers-"))
    mods = []
    for name in ("json_batch", "lineprotocol"):
        path = tmp / f"old_{name}.py"
        text = subprocess.run(
            ["git", "show", f"{rev}:src/safety_nexus/ingest/{name}.py"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        path.write_text(text, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(f"old_{name}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        mods.append(module)
    shutil.rmtree(tmp)  # loaded: the files are no longer needed
    return mods[0], mods[1]


def _parser(
    jb: ModuleType, lp: ModuleType, table: SignalTable, case: tuple[str, bytes, dict[str, Any]]
) -> Callable[[], object] | None:
    """A call that parses the case's body with these modules, or None if they refuse it (an
    older parser without this form)."""
    kind, body, kwargs = case

    def parse() -> object:
        if kind == "json":
            return jb.parse_json_batch(body, table)
        return lp.parse_line_protocol(body, table, now=0.0, **kwargs)

    try:
        batch = parse()
    except IngestError:
        return None
    assert len(batch) == BATCH  # type: ignore[arg-type]
    return parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--compare", metavar="REV", help="also time the parsers of this commit")
    args = parser.parse_args()
    repeat = 10 if args.quick else args.repeat
    info = machine()
    table = make_table(20_000, ids=[f"a{i:05d}.s{k}" for i in range(2_000) for k in range(10)])
    bodies = _bodies(table, np.random.default_rng(4))
    old_modules = _load_revision(args.compare) if args.compare else None
    now: dict[str, float | None] = {}
    before: dict[str, float | None] = {}
    for name, case in bodies.items():
        new = _parser(json_batch, lineprotocol, table, case)
        old = _parser(*old_modules, table, case) if old_modules else None
        now[name], before[name] = _times([new, old], repeat)
    rows = []
    for name in bodies:
        row: dict[str, Any] = {
            "case": name,
            "bytes": len(bodies[name][1]),
            "us_per_batch": round(now[name] * 1e6) if now[name] else None,
            "million_samples_per_s": round(BATCH / now[name] / 1e6, 2) if now[name] else None,
        }
        if args.compare:
            old = before.get(name)
            row["before_us_per_batch"] = round(old * 1e6) if old else None
            row["speedup"] = round(old / now[name], 1) if old and now[name] else None
        rows.append(row)
    report = {
        "benchmark": "ingest_parsers",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": info,
        "config": {"batch_samples": BATCH, "signals": len(table), "repeat": repeat},
        "compared_with": args.compare,
        "cases": rows,
    }
    name = "ingest_parsers.quick" if args.quick else "ingest_parsers"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for row in rows:
        extra = (
            f"  (before {row['before_us_per_batch']} µs, ×{row['speedup']})"
            if row.get("before_us_per_batch")
            else ""
        )
        speed = f"{row['us_per_batch']!s:>6} µs  {row['million_samples_per_s']!s:>5} M/s"
        print(f"  {row['case']:<22} {speed}{extra}")
    by = {row["case"]: row for row in rows}
    print(
        f"{name}: µs per 5,000-sample batch: json {by['json snapshot']['us_per_batch']}, "
        f"json columns {by['json columns']['us_per_batch']}, lp {by['lp snapshot']['us_per_batch']}"
        f" (lp line by line {by['lp line by line']['us_per_batch']})"
        + (
            f"; before ({args.compare}): json {by['json snapshot'].get('before_us_per_batch')}, "
            f"lp {by['lp snapshot'].get('before_us_per_batch')}"
            if args.compare
            else ""
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
