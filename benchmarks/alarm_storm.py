"""Alarm storms on the simulated demo city: raw findings against alarms shown.

    python benchmarks/alarm_storm.py            # S4 on 3 seeds + 20 randomised cascades
    python benchmarks/alarm_storm.py --runs 40  # more randomised cascades

    python benchmarks/alarm_storm.py --on-delay 0    # without the on-delay (own result file)

The defaults are the *report* seeds (cascades from seed 2, S4 on 201-203) and the product's
alarm settings (a 10 s on-delay). Seeds 1 to 5 were looked at while the root-cause choice was
developed; seeds 6 and 7 (`--seed 6`) were held out until the end. `nexus eval storm --seed N`
runs any of them.

Runs the product's own evaluation, `nexus eval storm` (see `safety_nexus.eval.storm` for what is
measured), and writes benchmarks/results/alarm_storm.json. Target (SPEC, ISA-18.2): at most 10
alarms shown in any 10 minutes at an operator position, with every ground-truth root cause
shown. The raw findings per 10 minutes are the peer: what an operator would see without alarm
management (one alarm per finding), as a ratio to what is shown.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="randomised cascades")
    parser.add_argument("--seed", type=int, default=2, help="seed of the randomised cascades")
    parser.add_argument("--s4-seeds", default="201,202,203", help="seeds of the S4 runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--on-delay", type=float, default=None, help="alarm on-delay, s (default: the product's)"
    )
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if args.on_delay is None else f".on_delay_{args.on_delay:g}"
    out = RESULTS / f"alarm_storm{suffix}.json"
    command = [
        str(Path(sys.executable).with_name("nexus")),
        "eval",
        "storm",
        "--runs",
        str(args.runs),
        "--seed",
        str(args.seed),
        "--s4-seeds",
        args.s4_seeds,
        "--workers",
        str(args.workers),
        *([] if args.on_delay is None else ["--on-delay", str(args.on_delay)]),
        "--out",
        str(out),
    ]
    done = subprocess.run(command, check=False)
    if not out.exists():
        print("alarm_storm: no result written", file=sys.stderr)
        return done.returncode or 1
    doc = json.loads(out.read_text())
    doc["benchmark"] = "alarm_storm"
    doc["when"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    doc["command"] = " ".join(["nexus", *command[1:]])
    peak_raw = doc["worst_findings_peak_10min"]
    peak = doc["worst_shown_peak_10min"]
    doc["raw_to_shown_peak_ratio"] = peak_raw / peak if peak else None
    out.write_text(json.dumps(doc, indent=2) + "\n")
    verdict = "PASS" if doc["passed"] else "FAIL"
    print(
        f"alarm_storm: {doc['runs']} storms, on-delay {doc['on_delay']:g} s; worst 10 min:"
        f" {peak_raw} raw findings -> {peak} alarms shown (limit {doc['limit_per_10min']});"
        f" roots shown {doc['roots_shown']}/{doc['roots_judged']}; {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
