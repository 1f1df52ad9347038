"""Scoring a user's own file row by row: how someone judges Nexus on their data (`nexus replay`).

The data flow: `ingest.wide.WideReader` chunks → (a warm-up pass over a reference file, no
output) → per chunk the `AnomalyScorer` (a score per signal and row) and the `DetectorBank`
(findings) → a combined row score, an alarm flag and the top contributors → `ReplayWriter`.
Everything is strictly causal: a row's output uses nothing after it (with one exception: the
sample period of an *inferred* signal is the median step of its first 64 samples, which only
the stale/flatline/rate detectors read).

Signals. With a site, every column must be a signal id of the site ("asset.signal"); the site's
periods and limits apply, and declared signals without a column are listed and not scored.
Without a site, the table is inferred: ids are the column names sanitised to the site's id
alphabet (lower-case letters, digits, `_` and `-`; a `.` splits asset from signal), each column
its own asset unless its name says "asset.signal", the period is the median time step, and no
normal band or limits are known (NaN / ±inf).

Per-signal scores. The scorer runs with `REPLAY_SCORE_CONFIG` unless the caller passes its own:
`quiet=0`, because every row is judged (a signal that shifted stays unusual, and is named, for
as long as it is; the benchmark setting silences it after the first detection), and
`calibrated=True`, so that p counts only the samples the signal has shown so far (a young
signal beats its short memory easily, which must not read as p ≈ 1/memory).

Combined row score. Each signal's score s is read as 1 − p, p its tail probability (how unusual
the row is for that signal). The row's p is Simes' combination of the m signals with a sample in
the row: p_row = min_k m·p_(k)/k over the sorted p_(1) ≤ … ≤ p_(m), and the row score is
1 − min(1, p_row). One loud signal among many quiet ones gives p_row = m·p_(1) (Bonferroni: the
quiet ones do not dilute it, and many signals do not inflate the false-alarm rate); several
moderately unusual signals together count for more than any one of them (k > 1). With one
signal the row score is that signal's score. Under independence P(p_row ≤ α) = α, so with
calibrated scores `threshold` = 0.999 raises about one false alarm row per thousand rows.

Alarm. `alarm_on="either"` (the default) flags a row whose score reaches `threshold` or where the
detector bank reports the onset of a finding; "score" and "findings" use one of the two.
"""

from __future__ import annotations

import csv
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO, get_args

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from numpy.typing import NDArray

from safety_nexus.core.closing import Closeable
from safety_nexus.core.errors import EvalError, IngestError
from safety_nexus.core.types import F64, Criticality, Finding, Frame, SignalTable
from safety_nexus.detect.bank import DetectorBank
from safety_nexus.detect.config import DetectConfig
from safety_nexus.detect.scoring import AnomalyScorer, ScoreConfig
from safety_nexus.ingest.wide import CHUNK_BYTES, WideChunk, WideReader

__all__ = [
    "DEFAULT_THRESHOLD",
    "REPLAY_SCORE_CONFIG",
    "AlarmOn",
    "ReplayRows",
    "ReplaySummary",
    "ReplayWriter",
    "Replayer",
    "combine",
    "infer_table",
    "replay_file",
    "sanitise",
    "top_signals",
]

AlarmOn = Literal["score", "findings", "either"]
ALARM_ON: tuple[str, ...] = get_args(AlarmOn)
DEFAULT_THRESHOLD = 0.999
# Per-row scores that read as p-values (see the module doc): no quiet period, p from the
# samples seen so far.
REPLAY_SCORE_CONFIG = ScoreConfig(quiet=0, calibrated=True)
TOP_K = 3
PERIOD_SAMPLES = 64
WEEK = 7 * 86400.0
FINDING_FIELDS = ("timestamp", "signal", "kind", "detector", "score", "explanation")

Bools = NDArray[np.bool_]
Index = NDArray[np.intp]

_NOT_ID = re.compile(r"[^a-z0-9_\-]+")


# -- the signals ----------------------------------------------------------------------------


def sanitise(names: Sequence[str]) -> tuple[str, ...]:
    """Column names as signal ids: lower-case, [a-z0-9_-] in each dot-separated part, each
    part starting with a letter or digit, unique (a repeat gets `_2`, `_3`, …)."""
    out: list[str] = []
    seen: set[str] = set()
    for j, name in enumerate(names):
        parts = [_NOT_ID.sub("_", p.strip().lower()).strip("_-") for p in name.split(".")]
        sid = ".".join(p for p in parts if p) or f"col{j + 1}"
        base, n = sid, 1
        while sid in seen:
            n += 1
            sid = f"{base}_{n}"
        seen.add(sid)
        out.append(sid)
    return tuple(out)


def _median_step(times: F64) -> float:
    steps = np.diff(times)
    return float(np.median(steps)) if steps.size else math.nan


def infer_table(columns: Sequence[str], times: F64, values: F64) -> SignalTable:
    """A SignalTable for columns no site describes, from the first rows of the file."""
    ids = sanitise(columns)
    n = len(ids)
    head = slice(0, PERIOD_SAMPLES)
    fallback = _median_step(times[head])
    if not (fallback > 0 and math.isfinite(fallback)):
        fallback = 1.0
    period = np.empty(n)
    for j in range(n):
        present = np.flatnonzero(~np.isnan(values[:, j]))[:PERIOD_SAMPLES]
        step = _median_step(times[present])
        period[j] = step if step > 0 and math.isfinite(step) else fallback
    return SignalTable(
        ids=ids,
        assets=tuple(sid.rpartition(".")[0] or sid for sid in ids),
        subsystems=("replay",) * n,
        units=("",) * n,
        period=period,
        normal_lo=np.full(n, np.nan),
        normal_hi=np.full(n, np.nan),
        limit_lo=np.full(n, -np.inf),
        limit_hi=np.full(n, np.inf),
        criticality=(Criticality.MEDIUM,) * n,
    )


def site_columns(table: SignalTable, columns: Sequence[str], path: Path) -> tuple[Index, list[str]]:
    """Each column's position in the site's table, and the site's signals without a column."""
    unknown = [c for c in columns if c not in table.index]
    if unknown:
        shown = ", ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")
        raise IngestError(
            f"{path}: {len(unknown)} column(s) name no signal of the site: {shown}"
            " (columns must be signal ids, asset.signal)",
            reason="unknown_signal",
        )
    have = set(columns)
    missing = [sid for sid in table.ids if sid not in have]
    return np.asarray([table.index[c] for c in columns], dtype=np.intp), missing


# -- the row output -------------------------------------------------------------------------


def combine(scores: F64, present: Bools) -> F64:
    """Simes' combination of per-signal scores (T, N) into one score per row, in [0, 1].

    Signals without a sample in a row (`present` False) take no part in that row."""
    scores = np.asarray(scores, dtype=np.float64)
    t, n = scores.shape
    if n == 0:
        return np.zeros(t)
    p = np.where(present, 1.0 - np.clip(scores, 0.0, 1.0), np.inf)
    p.sort(axis=1)
    m = present.sum(axis=1).astype(np.float64)
    terms = p * (m[:, None] / np.arange(1.0, n + 1.0))  # inf where k > m
    p_row = np.minimum(terms.min(axis=1), 1.0)
    return np.where(m > 0, 1.0 - p_row, 0.0)


def top_signals(ids: Sequence[str], scores: F64, k: int = TOP_K) -> list[str]:
    """Per row, up to `k` signals with the highest scores (those that round to 0.000 left out):
    "id:0.973;id:0.410"."""
    t, n = scores.shape
    if n == 0 or t == 0:
        return [""] * t
    k = min(k, n)
    neg = -scores
    cand = np.argpartition(neg, k - 1, axis=1)[:, :k] if n > k else np.tile(np.arange(n), (t, 1))
    order = np.argsort(np.take_along_axis(neg, cand, axis=1), axis=1, kind="stable")
    best = np.take_along_axis(cand, order, axis=1)
    vals = np.take_along_axis(scores, best, axis=1)
    return [
        ";".join(f"{ids[j]}:{v:.3f}" for j, v in zip(row, vrow, strict=True) if v >= 5e-4)
        for row, vrow in zip(best.tolist(), vals.tolist(), strict=True)
    ]


@dataclass(frozen=True, slots=True)
class ReplayRows:
    """The output of one chunk: per row and signal, per row, and the bank's findings."""

    scores: F64  # (T, N) in [0, 1]
    score: F64  # (T,) combined, in [0, 1]
    alarm: Bools  # (T,)
    top: list[str]
    findings: list[Finding]
    finding_rows: Index  # the chunk row of each finding

    def findings_text(self) -> list[str]:
        """Per row: the findings whose onset it is, "id:kind" joined by ';'."""
        out = [""] * self.score.shape[0]
        for row, f in zip(self.finding_rows.tolist(), self.findings, strict=True):
            tag = f"{f.signal}:{f.kind.value}"
            out[row] = f"{out[row]};{tag}" if out[row] else tag
        return out


class Replayer:
    """The scorer and the detector bank over a file's signals, turned into rows of output.

    `cols[j]` is the table position of the file's j-th signal column; table signals without a
    column get no samples (they never warm up, so they report nothing)."""

    def __init__(
        self,
        table: SignalTable,
        cols: Index | None = None,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        alarm_on: AlarmOn = "either",
        score_config: ScoreConfig | None = None,
        detect_config: DetectConfig | None = None,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise EvalError(f"the threshold must be within [0, 1], not {threshold}")
        if alarm_on not in ALARM_ON:
            raise EvalError(f"alarm_on must be one of {', '.join(ALARM_ON)}, not '{alarm_on}'")
        self.table = table
        self.cols = np.arange(len(table), dtype=np.intp) if cols is None else cols
        self.ids = tuple(table.ids[c] for c in self.cols.tolist())
        self.threshold = threshold
        self.alarm_on = alarm_on
        self.scorer = AnomalyScorer(len(self.ids), score_config or REPLAY_SCORE_CONFIG)
        self.bank = DetectorBank(table, detect_config)
        self._learned_until: float | None = None
        self._identity = len(table) == len(self.ids) and bool(
            np.array_equal(self.cols, np.arange(len(table)))
        )

    def _full(self, values: F64) -> F64:
        if self._identity:
            return values
        full = np.full((values.shape[0], len(self.table)), np.nan)
        full[:, self.cols] = values
        return full

    def learn(self, times: F64, values: F64) -> None:
        """Warm up on reference rows: both models learn, nothing is reported."""
        self.scorer.learn(times, values)
        self.bank.process_arrays(times, self._full(values))
        if times.shape[0]:
            self._learned_until = float(times[-1])

    def bridge(self, t_next: float) -> None:
        """Between a warm-up and the scored rows: let the bank see the time between them
        pass, silently, so that the gap between two files does not come out as stale signals
        at the first scored rows."""
        last = self._learned_until
        if last is None:
            return
        t = t_next - (t_next - last) * 1e-3
        if last < t < t_next:
            self.bank.tick(t)

    def step(self, times: F64, values: F64) -> ReplayRows:
        scores = np.clip(np.nan_to_num(self.scorer.score(times, values)), 0.0, 1.0)
        present = ~np.isnan(values)
        score = combine(scores, present)
        result = self.bank.process(Frame(times, self._full(values))).findings
        rows = np.searchsorted(times, [f.time for f in result]).astype(np.intp)
        onset = np.zeros(times.shape[0], dtype=np.bool_)
        onset[rows] = True
        over = score >= self.threshold
        alarm = {"score": over, "findings": onset, "either": over | onset}[self.alarm_on]
        top = top_signals(self.ids, scores)
        return ReplayRows(scores, score, alarm, top, result, rows)


# -- the output files -----------------------------------------------------------------------


class ReplayWriter(Closeable):
    """Writes OUT (one row per input row) and, if asked, the findings file.

    Both are written beside their final names and moved there by `commit()`; closing without
    it removes them, so input rejected half-way leaves no half-written output behind."""

    def __init__(self, out: Path, ids: Sequence[str], findings: Path | None = None) -> None:
        self.out = out
        self.rows = 0
        self.schema = pa.schema(
            [pa.field("timestamp", pa.string())]
            + [pa.field(f"score.{sid}", pa.float64()) for sid in ids]
            + [
                pa.field("score", pa.float64()),
                pa.field("alarm", pa.int8()),
                pa.field("top", pa.string()),
                pa.field("findings", pa.string()),
            ]
        )
        self._moves = [(_partial(out), out)]
        if findings is not None:
            self._moves.append((_partial(findings), findings))
        self._csv: pacsv.CSVWriter | None = None
        self._findings_fh: TextIO | None = None
        self._findings: csv.DictWriter[str] | None = None
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            # Ids, kinds, scores and parsed timestamps hold no comma or quote: plain CSV.
            options = pacsv.WriteOptions(quoting_style="none", quoting_header="none")
            self._csv = pacsv.CSVWriter(str(self._moves[0][0]), self.schema, write_options=options)
            if findings is not None:
                findings.parent.mkdir(parents=True, exist_ok=True)
                self._findings_fh = self._moves[1][0].open("w", newline="", encoding="utf-8")
                self._findings = csv.DictWriter(self._findings_fh, FINDING_FIELDS)
                self._findings.writeheader()
        except (OSError, pa.ArrowException) as err:
            self.close()
            raise EvalError(f"cannot write the output: {err}") from err

    def write(self, chunk: WideChunk, rows: ReplayRows) -> None:
        columns: list[pa.Array] = [chunk.stamps]
        columns += [pa.array(np.round(rows.scores[:, j], 6)) for j in range(rows.scores.shape[1])]
        columns += [
            pa.array(np.round(rows.score, 6)),
            pa.array(rows.alarm.astype(np.int8)),
            pa.array(rows.top, pa.string()),
            pa.array(rows.findings_text(), pa.string()),
        ]
        try:
            if self._csv is not None:
                self._csv.write_batch(pa.RecordBatch.from_arrays(columns, schema=self.schema))
            if self._findings is not None:
                stamps = chunk.stamps
                for row, f in zip(rows.finding_rows.tolist(), rows.findings, strict=True):
                    self._findings.writerow(
                        {
                            "timestamp": stamps[row].as_py(),
                            "signal": f.signal,
                            "kind": f.kind.value,
                            "detector": f.detector,
                            "score": f"{f.score:.3f}",
                            "explanation": f.explain(),
                        }
                    )
        except (OSError, pa.ArrowException) as err:
            raise EvalError(f"{self.out}: cannot write: {err}") from err
        self.rows += chunk.n_rows

    def _close_files(self) -> None:
        if self._csv is not None:
            self._csv.close()
            self._csv = None
        if self._findings_fh is not None:
            self._findings_fh.close()
            self._findings_fh = None

    def commit(self) -> None:
        """Finish the files and move them to their names."""
        try:
            self._close_files()
            for partial, final in self._moves:
                partial.replace(final)
        except (OSError, pa.ArrowException) as err:
            raise EvalError(f"{self.out}: cannot write: {err}") from err
        self._moves = []

    def close(self) -> None:
        self._close_files()
        for partial, _ in self._moves:
            partial.unlink(missing_ok=True)
        self._moves = []


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


# -- one file, end to end -------------------------------------------------------------------


@dataclass(slots=True)
class ReplaySummary:
    rows: int = 0
    signals: int = 0
    alarm_rows: int = 0
    episodes: int = 0  # runs of consecutive alarm rows
    findings: int = 0
    warmup_rows: int = 0
    gaps: int = 0
    nonfinite: int = 0
    elapsed: float = 0.0
    top: list[tuple[str, int]] = field(default_factory=list)  # top-1 signal of alarm rows

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.elapsed if self.elapsed > 0 else math.inf


Note = Callable[[str], None]
Progress = Callable[[int, float], None]


def _ignore(_: object, __: object = None) -> None:
    return None


def _reference_shift(reference: WideReader, first_t: float) -> tuple[float, int]:
    """Seconds to move the reference file back by so that it ends before `first_t`: zero, or
    whole weeks (keeping time of day and day of week). Reads the file's times once."""
    last, rows = -math.inf, 0
    for chunk in reference:
        last = float(chunk.times[-1])
        rows += chunk.n_rows
    if last < first_t:
        return 0.0, rows
    return (math.floor((last - first_t) / WEEK) + 1) * WEEK, rows


def replay_file(
    path: Path,
    out: Path,
    *,
    site: SignalTable | None = None,
    warmup: Path | None = None,
    time_column: str | None = None,
    ignore: Sequence[str] = (),
    threshold: float = DEFAULT_THRESHOLD,
    alarm_on: AlarmOn = "either",
    findings: Path | None = None,
    score_config: ScoreConfig | None = None,
    detect_config: DetectConfig | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    note: Note = _ignore,
    progress: Progress = _ignore,
    timer: Callable[[], float] = time.perf_counter,
) -> ReplaySummary:
    """Score `path` row by row into `out` (see the module docstring); returns the summary.

    `note` hears what was inferred or left out, `progress` (rows done, fraction of the file)
    after every chunk. Bad input raises IngestError, an unwritable output EvalError."""
    began = timer()
    inputs = {path.resolve(), *([warmup.resolve()] if warmup is not None else [])}
    for target in (out, findings):
        if target is not None and target.resolve() in inputs:
            raise EvalError(f"{target}: would overwrite an input file")
    summary = ReplaySummary()
    with WideReader(path, time_column=time_column, ignore=ignore, chunk_bytes=chunk_bytes) as src:
        chunks = iter(src)
        first = next(chunks, None)
        if first is None:
            raise IngestError(f"{path}: no data rows", reason="bad_shape")
        columns = src.columns
        if site is None:
            table = infer_table(columns, first.times, first.values)
            cols = np.arange(len(columns), dtype=np.intp)
            _note_inferred(note, columns, table)
        else:
            table = site
            cols, missing = site_columns(site, columns, path)
            if missing:
                shown = ", ".join(missing[:8]) + (" …" if len(missing) > 8 else "")
                note(f"{len(missing)} signal(s) of the site have no column (not scored): {shown}")
        if src.naive_times:
            note("timestamps have no zone offset: read as UTC")
        replayer = Replayer(
            table,
            cols,
            threshold=threshold,
            alarm_on=alarm_on,
            score_config=score_config,
            detect_config=detect_config,
        )
        if warmup is not None:
            summary.warmup_rows = _learn_reference(
                replayer, warmup, columns, float(first.times[0]), time_column, chunk_bytes, note
            )
        else:
            note("no --warmup: the start of the file is the warm-up (low scores until learned)")
        summary.signals = len(columns)
        top: Counter[str] = Counter()
        last_alarm = False
        with ReplayWriter(out, replayer.ids, findings) as writer:
            chunk: WideChunk | None = first
            while chunk is not None:
                rows = replayer.step(chunk.times, chunk.values)
                writer.write(chunk, rows)
                summary.rows += chunk.n_rows
                summary.findings += len(rows.findings)
                alarm = rows.alarm
                summary.alarm_rows += int(alarm.sum())
                starts = alarm & ~np.concatenate(([last_alarm], alarm[:-1]))
                summary.episodes += int(starts.sum())
                if alarm.size:
                    last_alarm = bool(alarm[-1])
                    hot = rows.scores[alarm]
                    if hot.size:
                        lead = hot.argmax(axis=1)[hot.max(axis=1) > 0]
                        top.update(replayer.ids[j] for j in lead.tolist())
                progress(summary.rows, src.fraction())
                chunk = next(chunks, None)
            writer.commit()
        summary.gaps, summary.nonfinite = src.gaps, src.nonfinite
        if src.nonfinite:
            note(f"{src.nonfinite} infinite value(s) read as gaps")
    summary.top = top.most_common(3)
    summary.elapsed = timer() - began
    return summary


def _note_inferred(note: Note, columns: Sequence[str], table: SignalTable) -> None:
    renamed = [f"{c} → {sid}" for c, sid in zip(columns, table.ids, strict=True) if c != sid]
    periods = sorted({float(p) for p in table.period})
    shown = ", ".join(f"{p:g}" for p in periods[:4]) + (" …" if len(periods) > 4 else "")
    note(
        f"no --site: inferred {len(table)} signal(s) on {len(set(table.assets))} asset(s),"
        f" sample period {shown} s (median step), no normal band or limits"
    )
    if renamed:
        note("signal ids: " + ", ".join(renamed[:8]) + (" …" if len(renamed) > 8 else ""))


def _learn_reference(
    replayer: Replayer,
    path: Path,
    columns: Sequence[str],
    first_t: float,
    time_column: str | None,
    chunk_bytes: int,
    note: Note,
) -> int:
    """Warm both models up on the reference file `path` (same signal columns, any order)."""
    ignore: list[str] = []
    with WideReader(path, time_column=time_column, chunk_bytes=chunk_bytes) as probe:
        have = set(probe.columns)
        extra = [c for c in probe.columns if c not in set(columns)]
        absent = [c for c in columns if c not in have]
        ignore = [c for c in probe.all_columns if c in extra]
    if absent:
        raise IngestError(
            f"{path}: the warm-up file has no column for {', '.join(absent[:5])}"
            + (" …" if len(absent) > 5 else ""),
            reason="bad_shape",
        )
    if extra:
        note(f"warm-up file: column(s) not in the scored file ignored: {', '.join(extra[:5])}")
    with WideReader(path, time_column=time_column, ignore=ignore, chunk_bytes=chunk_bytes) as ref:
        shift, rows = _reference_shift(ref, first_t)
    if shift:
        note(
            f"the warm-up file does not end before the scored file starts: its times are moved"
            f" back {shift / WEEK:.0f} week(s) to come first"
        )
    with WideReader(path, time_column=time_column, ignore=ignore, chunk_bytes=chunk_bytes) as ref:
        order = [ref.columns.index(c) for c in columns]
        for chunk in ref:
            replayer.learn(chunk.times - shift, chunk.values[:, order])
    replayer.bridge(first_t)
    note(f"warmed up on {rows} row(s) of {path.name}")
    return rows
