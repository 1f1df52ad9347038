"""The anomaly scorer on the Numenta Anomaly Benchmark: NAB scores and throughput, one core.

    python benchmarks/nab.py --data DIR             # NAB dir, or a dataset root holding nab/
    NEXUS_DATA=DIR python benchmarks/nab.py         # the same
    python benchmarks/nab.py --sensitivity          # also every knob at ±20 % (~1 min)

All 58 series run together as one bank (`safety_nexus.eval.nab.detect_corpus`: series are
columns, the row index is the time axis, shorter series are padded with NaN), with the default
`ScoreConfig` (one configuration for every series). The scorer (`eval.nab.score_corpus`) picks
one threshold per profile as NAB does. Throughput is real samples (365,558) over the time of
the scoring run; the run is repeated (`--repeat`) and the fastest wall time is reported, with
the process CPU time of the same run beside it (the machine is shared: the wall time includes
waiting for the core). Writes benchmarks/results/nab.json.
"""

from __future__ import annotations

import os

# One core, one thread: pin before NumPy loads its BLAS/OpenMP runtimes.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from rich.progress import Progress  # noqa: E402

from _machine import machine  # noqa: E402
from safety_nexus.core.errors import EvalError  # noqa: E402
from safety_nexus.detect.scoring import ScoreConfig  # noqa: E402
from safety_nexus.eval.nab import (  # noqa: E402
    NabCorpus,
    NabResult,
    detect_corpus,
    find_data,
    load_corpus,
    score_corpus,
)

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {"standard": 75.0, "reward_low_FP_rate": 67.5, "reward_low_FN_rate": 80.5}
PUBLISHED_BEST = {"standard": 74.9, "reward_low_FP_rate": 67.0, "reward_low_FN_rate": 80.4}
TARGET_SAMPLES_PER_S = 1e6
SHORT = {"standard": "standard", "reward_low_FP_rate": "low-FP", "reward_low_FN_rate": "low-FN"}


def timed_run(corpus: NabCorpus, config: ScoreConfig) -> tuple[dict[str, Any], float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    scores = detect_corpus(corpus, config)
    return scores, time.perf_counter() - wall, time.process_time() - cpu


def profiles(result: NabResult) -> dict[str, Any]:
    return {
        p.profile: {
            "score": round(p.normalized, 3),
            "threshold": p.threshold,
            "raw": p.raw,
            "tp": sum(f.tp for f in p.files),
            "fp": sum(f.fp for f in p.files),
            "fn": sum(f.fn for f in p.files),
            "by_category": {k: round(v, 3) for k, v in p.by_category().items()},
        }
        for p in result.profiles
    }


def variants(base: ScoreConfig) -> list[tuple[str, str, ScoreConfig]]:
    """Every global knob at −20 % and +20 % (integers rounded; the discord memory to whole
    stretches; all windows scaled together)."""
    out: list[tuple[str, str, ScoreConfig]] = []
    for factor, tag in ((0.8, "-20%"), (1.2, "+20%")):
        ints = ("reference", "memory", "quiet", "discord_memory")
        ints += ("record_block", "record_window", "record_lookback", "record_warm")
        for name in ints:
            value = getattr(base, name)
            new = round(value * factor)
            if name == "discord_memory":
                new = base.discord_length * round(new / base.discord_length)
            out.append((name, tag, base.model_copy(update={name: new})))
        out.extend(
            (name, tag, base.model_copy(update={name: getattr(base, name) * factor}))
            for name in ("novelty_margin", "trigger", "record_tau", "record_floor", "record_scale")
        )
        windows = tuple(max(1, round(w * factor)) for w in base.windows)
        std = max(2, round(base.std_window * factor))
        out.append(
            ("windows", tag, base.model_copy(update={"windows": windows, "std_window": std}))
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="NAB dir or a root with nab/")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (fastest reported)")
    parser.add_argument("--sensitivity", action="store_true", help="each knob at ±20 %%")
    parser.add_argument("--out", type=Path, default=RESULTS / "nab.json")
    args = parser.parse_args(argv)

    info = machine()
    try:
        root = find_data(args.data)
    except EvalError as exc:  # `make bench` on a machine without the data: say so, don't fail
        print(f"nab: skipped ({exc})")
        return 0
    corpus = load_corpus(root)
    config = ScoreConfig()
    runs = [timed_run(corpus, config) for _ in range(max(1, args.repeat))]
    scores, wall, cpu = min(runs, key=lambda r: r[1])
    result = score_corpus(corpus, scores)
    summary = result.summary()
    rate, cpu_rate = corpus.n_rows / wall, corpus.n_rows / cpu
    report: dict[str, Any] = {
        "benchmark": "nab",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "machine": info,
        "data": str(root),
        "files": len(corpus),
        "windows": corpus.n_windows,
        "samples": corpus.n_rows,
        "config": config.model_dump(mode="json"),
        "scores": {k: round(v, 3) for k, v in summary.items()},
        "targets": TARGETS,
        "published_best": PUBLISHED_BEST,
        "profiles": profiles(result),
        "seconds_wall": [round(r[1], 4) for r in runs],
        "seconds_cpu": [round(r[2], 4) for r in runs],
        "samples_per_s": rate,
        "samples_per_s_cpu": cpu_rate,
        "pass_scores": all(summary[k] >= v for k, v in TARGETS.items()),
        "pass_speed": rate >= TARGET_SAMPLES_PER_S,
    }
    if args.sensitivity:
        rows = []
        cases = variants(config)
        with Progress(transient=True) as progress:
            task = progress.add_task("sensitivity", total=len(cases))
            for name, tag, cfg in cases:
                res = score_corpus(corpus, detect_corpus(corpus, cfg)).summary()
                rows.append(
                    {
                        "knob": name,
                        "change": tag,
                        "value": getattr(cfg, name),
                        "scores": {k: round(v, 3) for k, v in res.items()},
                        "delta_standard": round(res["standard"] - summary["standard"], 3),
                    }
                )
                progress.advance(task)
        report["sensitivity"] = rows
        for row in rows:
            s = row["scores"]
            print(
                f"  {row['knob']:>15} {row['change']}: {s['standard']:6.2f} "
                f"{s['reward_low_FP_rate']:6.2f} {s['reward_low_FN_rate']:6.2f} "
                f"(standard {row['delta_standard']:+.2f})",
                file=sys.stderr,
            )
    for p in result.profiles:
        cats = " ".join(f"{k}={v:.1f}" for k, v in p.by_category().items())
        print(
            f"  {SHORT[p.profile]:>8}: {p.normalized:6.2f} (threshold {p.threshold:.4f}) {cats}",
            file=sys.stderr,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        f"nab: standard={summary['standard']:.2f} low-FP={summary['reward_low_FP_rate']:.2f} "
        f"low-FN={summary['reward_low_FN_rate']:.2f} (targets 75.0/67.5/80.5); "
        f"{rate:,.0f} samples/s wall, {cpu_rate:,.0f} samples/s CPU (target ≥ 1,000,000)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
