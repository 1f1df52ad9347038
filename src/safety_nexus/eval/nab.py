"""NAB scoring, exactly as the Numenta Anomaly Benchmark (v1.1) defines it.

The benchmark (``DIR/data/<category>/<name>.csv`` with ``timestamp,value``, and
``DIR/labels/combined_windows.json``) scores a detector's per-row anomaly scores like this:

* each file has anomaly windows (``[start, end]`` timestamps, inclusive);
* the first ``min(floor(0.15 N), 750)`` rows of a file are probation and are not scored;
* a row whose score reaches the threshold is a detection. Inside a window only the earliest
  detection counts, weighted by the scaled sigmoid ``σ(y) = 2 / (1 + e^{5y}) − 1`` of its
  relative position ``y = −(end − i + 1) / width`` and normalised so that the left edge scores
  ``A_TP``. A detection outside every window costs ``A_FP · σ(y)`` with ``y`` its distance past
  the end of the previous window in window widths minus one (``σ = −1`` beyond 3), or ``−A_FP``
  when no window came before. A window without a detection costs ``−A_FN``;
* one threshold per profile, chosen to maximise the summed raw score over the corpus;
* the normalised score is ``100 (S − S_null) / (S_perfect − S_null)``, where the null detector
  detects nothing (every window missed) and the perfect one detects every window at its start.

The threshold search here is exact: every distinct score in the corpus is a candidate threshold
and the raw score of each follows from one sort and a cumulative sum. (NAB's own optimiser climbs
towards a threshold and can stop a little short; fed NAB's published per-row scores, this scorer
lands within a few hundredths of `final_results.json`.)
"""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from safety_nexus.core.errors import EvalError
from safety_nexus.detect.scoring import AnomalyScorer, ScoreConfig

__all__ = [
    "PROFILES",
    "NabCorpus",
    "NabFile",
    "NabResult",
    "Profile",
    "ProfileResult",
    "detect_corpus",
    "find_data",
    "load_corpus",
    "read_scores",
    "score_corpus",
]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    tp: float
    fp: float
    fn: float


# The benchmark's cost profiles (nab-reference/profiles.json).
PROFILES: tuple[Profile, ...] = (
    Profile("standard", tp=1.0, fp=0.11, fn=1.0),
    Profile("reward_low_FP_rate", tp=1.0, fp=0.22, fn=1.0),
    Profile("reward_low_FN_rate", tp=1.0, fp=0.11, fn=2.0),
)


def scaled_sigmoid(y: F64) -> F64:
    """NAB's σ(y) = 2 / (1 + e^{5y}) − 1, and −1 for y > 3 (far past a window)."""
    with np.errstate(over="ignore"):
        val = 2.0 / (1.0 + np.exp(5.0 * y)) - 1.0
    return np.where(y > 3.0, -1.0, val)


_SIGMA_LEFT_EDGE = float(scaled_sigmoid(np.array([-1.0]))[0])


@dataclass(frozen=True, slots=True)
class NabFile:
    """One series of the corpus with its windows as inclusive row-index ranges."""

    name: str  # "category/file.csv", as in the labels
    timestamps: NDArray[np.datetime64]
    values: F64
    windows: tuple[tuple[int, int], ...]

    @property
    def category(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def probation(self) -> int:
        """Rows at the start that are not scored: min(floor(0.15 N), 750)."""
        n = len(self.values)
        return min(math.floor(0.15 * n), 750)

    def row_weights(self) -> tuple[F64, F64, I64]:
        """Per row, for a detection there: its weight inside a window (σ relative to the left
        edge, 0 outside), the unweighted false-positive cost factor σ outside windows (0 inside),
        and the window index (−1 outside, −2 in probation)."""
        n = len(self.values)
        idx = np.arange(n)
        tp_w = np.zeros(n)
        fp_s = np.zeros(n)
        window = np.full(n, -1, dtype=np.int64)
        prev_end = np.full(n, -1, dtype=np.int64)  # end of the latest window before row i
        prev_width = np.zeros(n)
        for k, (s, e) in enumerate(self.windows):
            width = e - s + 1
            pos = -(e - idx[s : e + 1] + 1) / width
            tp_w[s : e + 1] = scaled_sigmoid(pos) / _SIGMA_LEFT_EDGE
            window[s : e + 1] = k
            prev_end[e + 1 :] = e
            prev_width[e + 1 :] = width
        outside = window < 0
        after = outside & (prev_end >= 0)
        fp_s[outside] = -1.0
        dist = np.abs(idx[after] - prev_end[after]) / (prev_width[after] - 1.0)
        fp_s[after] = scaled_sigmoid(dist)
        window[: self.probation] = -2
        tp_w[: self.probation] = 0.0
        fp_s[: self.probation] = 0.0
        return tp_w, fp_s, window


@dataclass(frozen=True, slots=True)
class NabCorpus:
    files: tuple[NabFile, ...]

    @property
    def n_windows(self) -> int:
        return sum(len(f.windows) for f in self.files)

    @property
    def n_rows(self) -> int:
        return sum(len(f.values) for f in self.files)

    def __len__(self) -> int:
        return len(self.files)


def _parse_times(raw: Iterable[str]) -> NDArray[np.datetime64]:
    try:
        return np.array([s.strip().replace(" ", "T") for s in raw], dtype="datetime64[us]")
    except ValueError as exc:
        raise EvalError(f"bad timestamp: {exc}") from exc


def _read_series(path: Path) -> tuple[NDArray[np.datetime64], F64]:
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
            raise EvalError(f"{path}: expected the header 'timestamp,value'")
        times: list[str] = []
        values: list[float] = []
        for line, row in enumerate(reader, start=2):
            if len(row) < 2:
                raise EvalError(f"{path}:{line}: expected two columns")
            times.append(row[0])
            try:
                values.append(float(row[1]))
            except ValueError as exc:
                raise EvalError(f"{path}:{line}: bad value {row[1]!r}") from exc
    return _parse_times(times), np.asarray(values, dtype=np.float64)


def _window_rows(
    name: str, times: NDArray[np.datetime64], windows: list[list[str]]
) -> tuple[tuple[int, int], ...]:
    rows: list[tuple[int, int]] = []
    for start, end in windows:
        t0, t1 = _parse_times([start, end])
        # As NAB does: a bound is the first row with exactly that timestamp (files may repeat
        # or step back in time, e.g. around a clock change, so this is no binary search).
        s_at, e_at = np.flatnonzero(times == t0), np.flatnonzero(times == t1)
        if not s_at.size or not e_at.size:
            raise EvalError(f"{name}: window [{start}, {end}] does not start and end on rows")
        s, e = int(s_at[0]), int(e_at[0])
        if s > e:
            raise EvalError(f"{name}: window [{start}, {end}] ends before it starts")
        rows.append((s, e))
    rows.sort()
    for (_, e0), (s1, _) in itertools.pairwise(rows):
        if s1 <= e0:
            raise EvalError(f"{name}: windows overlap")
    return tuple(rows)


def load_corpus(root: Path, names: Iterable[str] | None = None) -> NabCorpus:
    """Read a NAB-format corpus: ``root/data/<category>/<file>.csv`` and
    ``root/labels/combined_windows.json``. Every labelled file is loaded (or just `names`)."""
    labels_path = root / "labels" / "combined_windows.json"
    if not labels_path.is_file():
        raise EvalError(f"{labels_path} not found (is {root} a NAB data directory?)")
    try:
        labels: dict[str, list[list[str]]] = json.loads(labels_path.read_text())
    except json.JSONDecodeError as exc:
        raise EvalError(f"{labels_path}: {exc}") from exc
    wanted = sorted(labels) if names is None else list(names)
    files: list[NabFile] = []
    for name in wanted:
        if name not in labels:
            raise EvalError(f"{name} has no entry in {labels_path}")
        path = root / "data" / name
        if not path.is_file():
            raise EvalError(f"{path} not found")
        times, values = _read_series(path)
        files.append(NabFile(name, times, values, _window_rows(name, times, labels[name])))
    return NabCorpus(tuple(files))


def read_scores(path: Path, corpus: NabCorpus) -> dict[str, F64]:
    """Per-row scores from a ``file,timestamp,anomaly_score`` CSV (gzip if it ends in .gz),
    the format of NAB's published results; rows must match the corpus's rows one to one."""
    opener = gzip.open if path.suffix == ".gz" else open
    by_file: dict[str, list[float]] = defaultdict(list)
    try:
        with opener(path, "rt", newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or not {"file", "anomaly_score"} <= set(reader.fieldnames):
                raise EvalError(f"{path}: expected columns file, timestamp, anomaly_score")
            for row in reader:
                by_file[row["file"]].append(float(row["anomaly_score"]))
    except (OSError, ValueError) as exc:
        raise EvalError(f"{path}: {exc}") from exc
    out: dict[str, F64] = {}
    for f in corpus.files:
        if f.name not in by_file:
            raise EvalError(f"{path}: no scores for {f.name}")
        scores = np.asarray(by_file[f.name], dtype=np.float64)
        if scores.shape[0] != len(f.values):
            raise EvalError(
                f"{path}: {f.name} has {scores.shape[0]} scores for {len(f.values)} rows"
            )
        out[f.name] = scores
    return out


@dataclass(frozen=True, slots=True)
class FileScore:
    name: str
    raw: float
    tp: int
    fp: int
    fn: int


@dataclass(frozen=True, slots=True)
class ProfileResult:
    profile: str
    threshold: float
    raw: float
    null: float
    perfect: float
    files: tuple[FileScore, ...] = field(default_factory=tuple)

    @property
    def normalized(self) -> float:
        return 100.0 * (self.raw - self.null) / (self.perfect - self.null)

    def by_category(self) -> dict[str, float]:
        """Normalised score per category (same threshold; null and perfect per category)."""
        raw: dict[str, float] = defaultdict(float)
        windows: dict[str, int] = defaultdict(int)
        for f in self.files:
            cat = f.name.split("/", 1)[0]
            raw[cat] += f.raw
            windows[cat] += f.tp + f.fn
        per_window_null = self.null / max(1, sum(windows.values()))
        per_window_perfect = self.perfect / max(1, sum(windows.values()))
        out: dict[str, float] = {}
        for cat in sorted(raw):
            null = per_window_null * windows[cat]
            perfect = per_window_perfect * windows[cat]
            if perfect == null:  # no windows: report the raw cost of false positives instead
                out[cat] = raw[cat]
            else:
                out[cat] = 100.0 * (raw[cat] - null) / (perfect - null)
        return out


@dataclass(frozen=True, slots=True)
class NabResult:
    profiles: tuple[ProfileResult, ...]

    def __getitem__(self, name: str) -> ProfileResult:
        for p in self.profiles:
            if p.profile == name:
                return p
        raise KeyError(name)

    def summary(self) -> dict[str, float]:
        return {p.profile: p.normalized for p in self.profiles}


@dataclass(frozen=True, slots=True)
class _Rows:
    """The scorable rows of the whole corpus, flattened."""

    score: F64
    tp_w: F64  # σ weight inside a window (0 outside)
    fp_s: F64  # σ factor outside windows (0 inside)
    window: I64  # global window index, −1 outside
    file: I64
    n_windows: int


def _flatten(corpus: NabCorpus, scores: Mapping[str, F64]) -> _Rows:
    parts: list[tuple[F64, F64, F64, I64, I64]] = []
    offset = 0
    for k, f in enumerate(corpus.files):
        s = np.asarray(scores[f.name], dtype=np.float64)
        if s.shape != f.values.shape:
            raise EvalError(f"{f.name}: {s.shape[0]} scores for {len(f.values)} rows")
        if not np.all(np.isfinite(s)):
            raise EvalError(f"{f.name}: scores must be finite")
        tp_w, fp_s, window = f.row_weights()
        keep = window != -2
        win = np.where(window[keep] >= 0, window[keep] + offset, -1)
        parts.append((s[keep], tp_w[keep], fp_s[keep], win, np.full(int(keep.sum()), k)))
        offset += len(f.windows)
    return _Rows(
        score=np.concatenate([p[0] for p in parts]),
        tp_w=np.concatenate([p[1] for p in parts]),
        fp_s=np.concatenate([p[2] for p in parts]),
        window=np.concatenate([p[3] for p in parts]).astype(np.int64),
        file=np.concatenate([p[4] for p in parts]).astype(np.int64),
        n_windows=offset,
    )


def _best_threshold(rows: _Rows, profile: Profile) -> tuple[float, float]:
    """Exact sweep: the threshold (a score in the corpus) maximising the raw score, and it.

    Lowering the threshold past a row adds its false-positive cost if it is outside a window,
    or, inside one, lifts that window's best detection if the row is earlier than any detection
    so far (the weight only grows towards the left edge)."""
    order = np.argsort(-rows.score, kind="stable")
    score = rows.score[order]
    window = rows.window[order]
    gain = np.where(window < 0, profile.fp * rows.fp_s[order], 0.0)
    inside = np.flatnonzero(window >= 0)
    if inside.size:
        w = window[inside]
        weight = profile.tp * rows.tp_w[order][inside]
        by_window = np.argsort(w, kind="stable")  # keeps descending-score order per window
        ws, wt = w[by_window], weight[by_window]
        starts = np.flatnonzero(np.r_[True, ws[1:] != ws[:-1]])
        best = np.empty_like(wt)
        for a, b in zip(starts, np.r_[starts[1:], ws.size], strict=True):
            best[a:b] = np.maximum.accumulate(wt[a:b])
        prev = np.empty_like(best)
        prev[1:] = best[:-1]
        prev[starts] = -profile.fn
        lift = np.empty_like(wt)
        lift[by_window] = best - prev
        gain[inside] = lift
    total = -profile.fn * rows.n_windows + np.cumsum(gain)
    # A threshold sits between distinct scores: evaluate at the last row of each tie group.
    last = np.flatnonzero(np.r_[score[1:] != score[:-1], True])
    k = int(np.argmax(total[last]))
    null_raw = -profile.fn * rows.n_windows
    if total[last[k]] <= null_raw:  # detecting nothing is best: threshold above every score
        return float(np.nextafter(score[0], np.inf)) if score.size else 1.0, null_raw
    return float(score[last[k]]), float(total[last[k]])


def _file_scores(
    corpus: NabCorpus, rows: _Rows, profile: Profile, threshold: float
) -> tuple[FileScore, ...]:
    hit = rows.score >= threshold
    out: list[FileScore] = []
    offset = 0
    for k, f in enumerate(corpus.files):
        sel = rows.file == k
        h, win = hit[sel], rows.window[sel]
        fp_mask = h & (win < 0)
        raw = profile.fp * float(rows.fp_s[sel][fp_mask].sum())
        tp = 0
        for j in range(len(f.windows)):
            in_j = h & (win == offset + j)
            if in_j.any():
                raw += profile.tp * float(rows.tp_w[sel][in_j].max())
                tp += 1
            else:
                raw -= profile.fn
        out.append(FileScore(f.name, raw, tp, int(fp_mask.sum()), len(f.windows) - tp))
        offset += len(f.windows)
    return tuple(out)


def score_corpus(
    corpus: NabCorpus,
    scores: Mapping[str, F64],
    profiles: Iterable[Profile] = PROFILES,
) -> NabResult:
    """Score per-row anomaly scores over the corpus, one optimal threshold per profile."""
    rows = _flatten(corpus, scores)
    results: list[ProfileResult] = []
    for profile in profiles:
        threshold, raw = _best_threshold(rows, profile)
        files = _file_scores(corpus, rows, profile, threshold)
        null = -profile.fn * rows.n_windows
        perfect = profile.tp * rows.n_windows
        results.append(ProfileResult(profile.name, threshold, raw, null, perfect, files))
    return NabResult(tuple(results))


def find_data(path: Path | None) -> Path:
    """The NAB directory from `path` or NEXUS_DATA: either the NAB directory itself or a
    dataset root holding it as ``nab/``."""
    if path is None:
        env = os.environ.get("NEXUS_DATA")
        if not env:
            raise EvalError("no NAB data: pass --data DIR or set NEXUS_DATA")
        path = Path(env)
    for candidate in (path, path / "nab"):
        if (candidate / "labels" / "combined_windows.json").is_file():
            return candidate
    raise EvalError(f"{path} holds no NAB corpus (expected labels/combined_windows.json)")


def detect_corpus(
    corpus: NabCorpus,
    config: ScoreConfig | None = None,
    *,
    chunk: int = 4096,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, F64]:
    """Run the anomaly scorer over every series at once, as one bank: series are columns, the
    row index is the time axis (NAB's timestamps repeat around clock changes), shorter series
    are padded with "no sample". `on_progress` hears the number of real samples done per chunk.
    """
    n_rows = max((len(f.values) for f in corpus.files), default=0)
    values = np.full((n_rows, len(corpus.files)), np.nan)
    for k, f in enumerate(corpus.files):
        values[: len(f.values), k] = f.values
    lengths = np.array([len(f.values) for f in corpus.files])
    scorer = AnomalyScorer(len(corpus.files), config)
    out = np.zeros_like(values)
    for lo in range(0, n_rows, chunk):
        hi = min(n_rows, lo + chunk)
        out[lo:hi] = scorer.score(np.arange(lo, hi, dtype=np.float64), values[lo:hi])
        if on_progress is not None:
            on_progress(int(np.clip(lengths - lo, 0, hi - lo).sum()))
    return {f.name: out[: len(f.values), k].copy() for k, f in enumerate(corpus.files)}
