"""Throughput and memory of the detector bank on one core, against River's anomaly detectors.

    python benchmarks/detector_bank.py            # full run (a few minutes), writes
                                                  # benchmarks/results/detector_bank.json
    python benchmarks/detector_bank.py --quick    # smoke run (~10 s): detector_bank.quick.json

The stream is Gaussian noise with a few injected level shifts and spikes and a few missing
samples (NaN), at 10 thousand, 100 thousand and 1 million signals. Each case first warms the bank
up (every signal needs `warmup` samples before it may raise findings; that phase is timed
separately), then times `process_arrays` (the hot path: no Finding objects except for onsets)
over fresh rows until at least `--seconds` have been spent inside it. Data generation is not
timed. River's HalfSpaceTrees and GaussianScorer run per signal (univariate,
score_one + learn_one per sample) on a sample of the same kind of stream for a bounded time.
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

import numpy as np  # noqa: E402

from _machine import machine  # noqa: E402
from safety_nexus.detect import DetectConfig, DetectorBank  # noqa: E402
from safety_nexus.detect.testing import make_table  # noqa: E402

TARGET_SAMPLES_PER_S = 20e6  # SPEC: "the detector bank ≥ 20 million signal-samples per second"
TARGET_SIGNALS = 100_000  # issue 3: "≥ 20 million signal-samples/s on one core at 100k signals"
TARGET_STATE_BYTES = 1024  # SPEC: "≤ 1 KB of detector state per signal"
NAN_FRACTION = 1e-3
SPIKE_FRACTION = 1e-5
SHIFT_FRACTION = 1e-3  # of the signals, per chunk of rows
LIMIT = 20.0  # hard limits of every signal (σ = 1; the shifts add up to a few σ at most)
DECLARED = 0.05  # fraction of signals in forecast pairs or redundant groups (demo city: 5.5%)
RESULTS = Path(__file__).resolve().parent / "results"


def river_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("river")
    except PackageNotFoundError:
        return None


class Stream:
    """Chunks of synthetic telemetry: noise, persistent level shifts, spikes, missing samples."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.rng = np.random.default_rng(seed)
        self.level = np.zeros(n)
        self.t = 0.0

    def chunk(self, rows: int, anomalies: bool = True) -> tuple[np.ndarray, np.ndarray]:
        rng, n = self.rng, self.n
        values = rng.standard_normal((rows, n))
        values += self.level
        if anomalies:
            shifted = rng.choice(n, size=max(1, int(n * SHIFT_FRACTION)), replace=False)
            start = int(rng.integers(rows))
            values[start:, shifted] += 1.0
            self.level[shifted] += 1.0
            n_spikes = int(rows * n * SPIKE_FRACTION)
            r, c = rng.integers(rows, size=n_spikes), rng.integers(n, size=n_spikes)
            values[r, c] += 8.0
        n_nan = int(rows * n * NAN_FRACTION)
        values[rng.integers(rows, size=n_nan), rng.integers(n, size=n_nan)] = np.nan
        times = self.t + np.arange(rows, dtype=np.float64)
        self.t += rows
        return times, values


def declared_table(n: int, fraction: float) -> Any:
    """A table whose first `fraction` of signals are declared for the cross-signal families:
    half as forecasts (column 2i + 1 of column 2i), half as redundant pairs. Every signal has
    hard limits at ±LIMIT (so the time-to-threshold forecast runs everywhere), as on a real
    site where most signals declare them."""
    m = int(n * fraction) // 4 * 4
    forecasts = [(i + 1, i) for i in range(0, m // 2, 2)]
    groups = [(i, i + 1) for i in range(m // 2, m, 2)]
    return make_table(n, limit_lo=-LIMIT, limit_hi=LIMIT, forecasts=forecasts, groups=groups)


def run_case(
    n: int, seconds: float, config: DetectConfig, seed: int, declared: float = 0.0
) -> dict[str, Any]:
    bank = DetectorBank(declared_table(n, declared), config)
    stream = Stream(n, seed)
    rows_per_chunk = max(1, min(2000, 20_000_000 // n))  # ≤ 160 MB of float64 per chunk
    # Warm-up: every signal needs `warmup` samples; the NaNs make a few signals need more.
    warm_rows = warm_samples = 0
    warm_seconds = 0.0
    while not bank.warm().all():
        times, values = stream.chunk(min(rows_per_chunk, config.warmup + 5), anomalies=False)
        t0 = time.perf_counter()
        bank.process_arrays(times, values)
        warm_seconds += time.perf_counter() - t0
        warm_rows += len(times)
        warm_samples += values.size
    timed_rows = timed_samples = present = onsets = 0
    timed_seconds = 0.0
    while timed_seconds < seconds:
        times, values = stream.chunk(rows_per_chunk)
        t0 = time.perf_counter()
        onsets += bank.process_arrays(times, values)
        timed_seconds += time.perf_counter() - t0
        timed_rows += len(times)
        timed_samples += values.size
        present += int(np.count_nonzero(~np.isnan(values)))
    rate = timed_samples / timed_seconds
    state = bank.state_nbytes() / n
    return {
        "signals": n,
        "rows_timed": timed_rows,
        "seconds_timed": round(timed_seconds, 3),
        "samples_per_s": rate,
        "present_samples_per_s": present / timed_seconds,
        "warmup_rows": warm_rows,
        "warmup_samples_per_s": warm_samples / warm_seconds,
        "onsets": onsets,
        "state_bytes_per_signal": state,
        "scratch_bytes": bank.scratch_nbytes(),
        "shards": len(bank._shards),
        "declared_fraction": declared,
        "pass": rate >= TARGET_SAMPLES_PER_S and state <= TARGET_STATE_BYTES,
    }


def run_river(name: str, seconds: float, seed: int, signals: int = 16) -> dict[str, Any]:
    """Per-signal univariate River detector: score_one then learn_one for every sample."""
    from river import anomaly

    rng = np.random.default_rng(seed)
    rows = 200_000
    values = rng.standard_normal((rows, signals))
    values[rows // 2 :, : signals // 4] += 1.0
    models: list[Any]
    if name == "HalfSpaceTrees":
        models = [
            anomaly.HalfSpaceTrees(
                n_trees=10, height=8, window_size=250, limits={"x": (-6.0, 6.0)}, seed=seed + i
            )
            for i in range(signals)
        ]

        def step(model: Any, v: float) -> None:
            x = {"x": v}
            model.score_one(x)
            model.learn_one(x)

    else:
        models = [anomaly.GaussianScorer() for _ in range(signals)]  # type: ignore[no-untyped-call]

        def step(model: Any, v: float) -> None:
            model.score_one(None, v)
            model.learn_one(None, v)

    rows_list = values.tolist()
    # Untimed: model set-up and a first window (HalfSpaceTrees swaps in its reference mass
    # after window_size samples), so that the timed part is the steady state, as for the bank.
    warm = 300
    for row in rows_list[:warm]:
        for model, v in zip(models, row, strict=True):
            step(model, v)
    count = 0
    t0 = time.perf_counter()
    elapsed = 0.0
    for row in rows_list[warm:]:
        for model, v in zip(models, row, strict=True):
            step(model, v)
        count += signals
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
    return {
        "signals": signals,
        "samples": count,
        "seconds": round(elapsed, 3),
        "samples_per_s": count / elapsed,
    }


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (not a measurement)")
    parser.add_argument("--seconds", type=float, default=None, help="timed seconds per case")
    parser.add_argument("--river-seconds", type=float, default=None, help="seconds per River model")
    parser.add_argument("--signals", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--declared",
        type=float,
        default=DECLARED,
        help="fraction of signals declared as forecasts or redundant pairs (cross-signal cost)",
    )
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (0.3 if args.quick else 3.0)
    river_seconds = (
        args.river_seconds if args.river_seconds is not None else (0.5 if args.quick else 4.0)
    )
    # The quick run shortens the warm-up so that a million signals warm up in seconds.
    config = DetectConfig(warmup=10) if args.quick else DetectConfig()

    info = machine(river=river_version())
    cases = []
    for n in args.signals:
        case = run_case(n, seconds, config, args.seed, args.declared)
        cases.append(case)
        print(
            f"  {label(n):>4} signals: {case['samples_per_s'] / 1e6:6.1f} M samples/s "
            f"({case['rows_timed']} rows in {case['seconds_timed']:.2f} s; warm-up "
            f"{case['warmup_samples_per_s'] / 1e6:.1f} M/s), "
            f"state {case['state_bytes_per_signal']:.0f} B/signal, {case['onsets']} onsets",
            file=sys.stderr,
        )
    river = {}
    for name in ("HalfSpaceTrees", "GaussianScorer"):
        river[name] = run_river(name, river_seconds, args.seed)
        print(f"  River {name}: {river[name]['samples_per_s']:,.0f} samples/s", file=sys.stderr)

    slowest = min(c["samples_per_s"] for c in cases)
    ratios = {name: slowest / r["samples_per_s"] for name, r in river.items()}
    state = max(c["state_bytes_per_signal"] for c in cases)
    report = {
        "benchmark": "detector_bank",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "machine": info,
        "config": config.model_dump(mode="json"),
        "stream": {
            "noise": "standard normal",
            "nan_fraction": NAN_FRACTION,
            "spike_fraction": SPIKE_FRACTION,
            "shifted_signals_per_chunk": SHIFT_FRACTION,
        },
        "targets": {
            "samples_per_s": TARGET_SAMPLES_PER_S,
            "state_bytes_per_signal": TARGET_STATE_BYTES,
        },
        "cases": cases,
        "river": river,
        "ratio_slowest_case_to_river": ratios,
        # The target is stated at 100k signals; every case's own verdict is kept too.
        "pass": all(c["pass"] for c in cases if c["signals"] == TARGET_SIGNALS)
        if any(c["signals"] == TARGET_SIGNALS for c in cases)
        else all(c["pass"] for c in cases),
        "cases_below_target": [c["signals"] for c in cases if not c["pass"]],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("detector_bank.quick.json" if args.quick else "detector_bank.json")
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    rates = " ".join(f"{label(c['signals'])}={c['samples_per_s'] / 1e6:.1f} M/s" for c in cases)
    print(
        f"detector_bank: {rates} state={state:.0f} B/signal; "
        f"vs HalfSpaceTrees ×{ratios['HalfSpaceTrees']:,.0f}, "
        f"GaussianScorer ×{ratios['GaussianScorer']:,.0f} "
        f"({'PASS' if report['pass'] else 'FAIL'} against ≥ 20 M/s at 100k signals, ≤ 1 KB/signal"
        + "".join(f"; {label(n)} below" for n in report["cases_below_target"])
        + ")"
    )
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
