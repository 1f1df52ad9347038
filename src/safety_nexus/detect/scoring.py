"""Continuous anomaly scores: one number in [0, 1] per signal and row, vectorised over signals.

The detector bank answers "what started, and when" with findings; some users need a score for
every row instead: NAB-style evaluations, `nexus replay` on their own data, trend shading. An
`AnomalyScorer` advances N signals together, strictly causally (the score of row t uses nothing
after t), deterministically, and its state can be pickled so a restart resumes where it stopped.

Interface (stable; the model behind it may change):

    scorer = AnomalyScorer(n_signals, ScoreConfig())
    scorer.learn(times, values)          # warm up on reference data, no output
    scores = scorer.score(times, values) # (T, N) float64 in [0, 1]; NaN input -> score 0

Times are seconds (float64, strictly increasing across calls); values (T, N) float64 with NaN for
"no sample". Only the row order matters to the model (NAB's own timestamps repeat around clock
changes); a row is one step of every signal.

The model: novelty against the signal's own memory
--------------------------------------------------
Every row, each signal gets a handful of features, each of which asks "has this signal done
this before?":

* level at several time scales: |mean of the last w rows − mean of the `reference` rows before
  them| in the reference's standard deviations, for w in `windows` (w = 1 is a spike);
* variance: |log| of the last `std_window` rows' standard deviation over the reference's;
* shape: the distance of the last `discord_stride × discord_length` rows (downsampled) to the
  nearest earlier stretch of the same signal (`detect.discord`);
* value: how far the value lies outside the range seen in memory, relative to that range;
* shape record (day scale): the distance of the last `record_window` means of
  `record_block`-row blocks to the nearest earlier such stretch, against its own forgetting
  record (`detect.record`): (D − R)⁺ / max(R, `record_floor`), R the largest D of roughly the
  last `record_tau` blocks. It finds what the fine discord misses: a day without its peak,
  spikes that grow denser.

Each of the first three is divided by its own running maximum over the last one to two
`memory`-row epochs (`detect.novelty.EpochExtremes`): a ratio ≥ 1 means "more extreme than
anything in memory". The value novelty is divided by `novelty_margin`. The row's ratio r is the
largest of these, plus the shape record divided by `record_scale`. A sum, not a maximum, for the
record: it is 0 on all but the rows where a block ends with a new record, and there it is
evidence on top of whatever the other features show (measured on NAB, standard profile: 76.2
added, 73.2 without it; at most 75.0 as one more term of the maximum, in an offline trial).

The score is 1 − p, p a tail probability read off r. With M rows in memory and K channels
(`channels`: the features, the value novelty and the record): a light-tailed feature beats r
times the maximum of M earlier rows with probability about M^(−r²) (for a Gaussian |z| the
maximum of M draws is about √(2 ln M)), so p = min(1, K·M^(−r²)) up to the edge of the known
(r = 0: p = 1, nothing unusual; r = 1: p = K/M, a new record of one of K channels, Bonferroni);
beyond it p = K·r^(−2)/M, a heavy tail (real data have them, and a Gaussian tail would make
every clear anomaly read 1.000000). M is `memory` unless `calibrated`, then the samples the
signal has shown so far (capped at `memory`): a young signal beats its short memory easily. On
i.i.d. Gaussian and Student-t(3) noise (tests/detect/test_scoring.py) the calibrated p is
conservative, P(p ≤ α) ≤ α for α = 0.05, 0.01, 0.001 (in the first 500 rows of heavy-tailed
noise only down to α = 0.01). `nexus replay` uses calibrated scores without a quiet period and
combines the signals' scores as p-values. The benchmark setting (the default) keeps M fixed: a
monotone map of r, the same for every row, so one global threshold compares short and long
series alike (counting the rows seen cost 18 NAB points: short series read less sure).

A row whose ratio reaches `trigger` is a detection; for the `quiet` rows after it the signal
scores 0. The benchmarks this is tuned on (NAB) reward the first detection of an anomaly and
charge every later one outside its window; the suppression also keeps a level shift from
raising one alarm per time scale as the longer windows catch up with it.

State per signal with the defaults: about 28 KB (`state_nbytes`), most of it the fine
discord's stretches and the history buffer; the record adds about 1 KB.

Rows are processed in blocks of a few hundred rows aligned to absolute row numbers; a block's
features are differences of cumulative sums and `maximum.accumulate` runs over it, so the
per-row Python overhead disappears. A call that ends inside a block keeps its rows and
recomputes the block from its start on the next call: results do not depend on how the stream
is cut into calls (a caller that feeds one row at a time pays for that recomputation).

Example (seeded): a level shift in a noisy signal is the only thing that scores high.

>>> import numpy as np
>>> rng = np.random.default_rng(7)
>>> x = rng.standard_normal((3000, 1))
>>> x[2000:] += 6.0
>>> scorer = AnomalyScorer(1)
>>> s = scorer.score(np.arange(3000.0), x)
>>> int(np.argmax(s[1000:, 0])) + 1000
2000
>>> bool(s[2000, 0] > scorer.edge), bool((s[1000:1990, 0] < scorer.edge).all())
(True, True)
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from safety_nexus.core.errors import DetectError
from safety_nexus.detect.base import F64, latest_rows
from safety_nexus.detect.discord import DiscordRing
from safety_nexus.detect.novelty import (
    HUGE,
    RANGE_EPS,
    TINY,
    EpochExtremes,
    value_novelty,
    window_features,
)
from safety_nexus.detect.record import RecordDiscord

__all__ = ["AnomalyScorer", "ScoreConfig"]

# Rows per block (rounded to whole discord groups): big enough that NumPy calls work on
# thousands of elements, small enough that a block's temporaries stay in cache.
_BLOCK_ROWS = 256
# The discord's reference level follows the signal every this many groups.
_RECENTRE_GROUPS = 64
# The discord first looks at every this many stored stretches, and settles for that upper
# bound where it stays below this fraction of the feature's running maximum.
_COARSE = 8
_PRUNE = 0.75


def _tail_score(ratio: F64, seen: F64, memory: int, channels: int) -> F64:
    """1 − p: p = K·M^(−r²) for r ≤ 1 and K·r^(−2)/M beyond, M = min(seen, memory) ≥ 2, K
    the number of channels, p ≤ 1 (see the module doc)."""
    rows = np.clip(seen, 2.0, float(memory))
    log_m = np.log(rows)
    low = np.minimum(ratio, 1.0)
    below = -np.expm1(math.log(channels) - log_m * low * low)  # exact near p = 1
    above = 1.0 - channels / (rows * np.maximum(ratio, 1.0) ** 2)
    return np.maximum(np.where(ratio <= 1.0, below, above), 0.0)


class ScoreConfig(BaseModel):
    """Strict: unknown keys are rejected. The defaults are the one configuration tuned on the
    whole NAB corpus (benchmarks/nab.py); every field is in rows, not seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    windows: tuple[int, ...] = Field(
        (1, 32, 128, 256), min_length=1, description="level-shift windows (rows)"
    )
    std_window: int = Field(32, ge=2, description="variance window (rows), one of `windows`")
    reference: int = Field(512, ge=8, description="rows before a window that it is compared with")
    min_reference: int = Field(
        16, ge=2, description="reference rows needed before a window feature scores"
    )
    rel_floor: float = Field(
        0.0, ge=0.0, le=1.0, description="smallest std as a fraction of the reference mean"
    )
    memory: int = Field(
        4000, ge=16, description="epoch of the running maxima and value range (rows)"
    )
    novelty_margin: float = Field(
        0.05, gt=0.0, description="a value this fraction of the range beyond it scores 0.5"
    )
    min_samples: int = Field(8, ge=1, description="samples before value novelty scores")
    shape: bool = Field(True, description="score shape novelty (the discord)")
    discord_stride: int = Field(4, ge=1, description="rows per downsampled point")
    discord_length: int = Field(16, ge=2, description="downsampled points per stretch")
    discord_memory: int = Field(256, ge=16, description="earlier stretches kept per signal")
    record: bool = Field(True, description="score day-scale shape records (`detect.record`)")
    record_block: int = Field(16, ge=1, description="rows per block mean of the record discord")
    record_window: int = Field(24, ge=1, description="block means per compared stretch")
    record_lookback: int = Field(
        64, ge=1, description="blocks back the farthest compared stretch ends"
    )
    record_tau: float = Field(100.0, gt=0.0, description="blocks for the record to fade by 1/e")
    record_floor: float = Field(
        0.02, gt=0.0, description="smallest record, as a fraction of the range seen"
    )
    record_warm: int = Field(156, ge=0, description="blocks of samples before records count")
    record_scale: float = Field(
        0.6, gt=0.0, description="record gain (D − R) / R that adds 1 to the ratio"
    )
    trigger: float = Field(1.0, gt=0.0, description="ratio that counts as a detection")
    quiet: int = Field(30, ge=0, description="rows scored 0 after a detection")
    calibrated: bool = Field(
        False, description="p counts the samples seen so far, not a full memory (replay)"
    )

    @model_validator(mode="after")
    def _check(self) -> ScoreConfig:
        if any(w < 1 for w in self.windows):
            raise ValueError("windows: every window needs at least 1 row")
        if len(set(self.windows)) != len(self.windows):
            raise ValueError("windows: repeated window")
        if self.std_window not in self.windows:
            raise ValueError("std_window must be one of windows")
        if self.discord_memory % self.discord_length:
            raise ValueError("discord_memory must be a multiple of discord_length")
        if self.record_window > self.record_lookback:
            raise ValueError("record_window must not exceed record_lookback")
        return self


class AnomalyScorer:
    """Per-signal anomaly scores in [0, 1], N signals advanced together (see module doc)."""

    def __init__(self, n: int, config: ScoreConfig | None = None) -> None:
        if n < 0:
            raise DetectError("a scorer needs a non-negative number of signals")
        self.n = n
        self.config = cfg = config or ScoreConfig()
        # Blocks hold whole discord groups and whole record blocks.
        group = math.lcm(cfg.discord_stride * cfg.discord_length, cfg.record_block)
        self._block = group * max(1, _BLOCK_ROWS // group)
        self._hist = max(max(cfg.windows) + cfg.reference, 2 * group)
        self._rows = 0  # rows committed (whole blocks)
        self._pending = np.empty((0, n))
        self._last_t = -math.inf
        self._buf = np.zeros((self._hist, n))  # forward-filled values of the last rows
        self._last = np.full(n, np.nan)  # last value seen
        self._first_row = np.full(n, -1, dtype=np.int64)
        self._first_val = np.full(n, np.nan)
        self._count = np.zeros(n, dtype=np.int64)  # samples seen
        self._hi = EpochExtremes((n,), cfg.memory, maximum=True)
        self._lo = EpochExtremes((n,), cfg.memory, maximum=False)
        n_feat = len(cfg.windows) + 1 + int(cfg.shape)
        self._fmax = EpochExtremes((n_feat, n), cfg.memory, maximum=True)
        self._discord = DiscordRing(
            n,
            cfg.discord_stride,
            cfg.discord_length,
            cfg.discord_memory,
            _RECENTRE_GROUPS,
            math.gcd(cfg.discord_length, _COARSE),
        )
        self._record = RecordDiscord(
            n,
            cfg.record_block,
            cfg.record_window,
            cfg.record_lookback,
            cfg.record_tau,
            cfg.record_floor,
            cfg.record_warm,
        )
        self._last_det = np.full(n, -(2**62), dtype=np.int64)
        self._floor = np.array([1.0] * (len(cfg.windows) + 1) + [0.0] * int(cfg.shape))
        # Features, value novelty and the record: the Bonferroni factor of the tail probability.
        self.channels = n_feat + 1 + int(cfg.record)

    # -- public -----------------------------------------------------------------------------

    @property
    def edge(self) -> float:
        """The score of ratio 1 ("as extreme as anything in memory") once the memory is full:
        p = channels / memory. A detection scores at least this much once a signal has seen
        `memory` samples (the suppressed rows after it score 0)."""
        return 1.0 - self.channels / self.config.memory

    def learn(self, times: F64, values: F64) -> None:
        """Advance over reference data without producing scores."""
        self.score(times, values)

    def score(self, times: F64, values: F64) -> F64:
        """Scores of the rows `values` (T, N), in [0, 1]; 0 where a value is NaN."""
        times, values = self._check(times, values)
        if times.shape[0]:
            self._last_t = float(times[-1])
        rows = np.concatenate([self._pending, values]) if self._pending.size else values
        out = np.empty(rows.shape)
        lo = 0
        while lo < rows.shape[0]:
            hi = min(rows.shape[0], lo + self._block)
            full = hi - lo == self._block
            out[lo:hi] = self._run_block(rows[lo:hi], commit=full)
            if full:
                lo = hi
            else:
                break
        self._pending = rows[lo:].copy() if lo < rows.shape[0] else np.empty((0, self.n))
        return out[rows.shape[0] - values.shape[0] :]

    def state_nbytes(self) -> int:
        """Bytes of learned state (all signals)."""
        total = 0
        for obj in (self, self._hi, self._lo, self._fmax, self._discord, self._record):
            total += sum(v.nbytes for v in vars(obj).values() if isinstance(v, np.ndarray))
        return total

    # -- one block --------------------------------------------------------------------------

    def _run_block(self, x_all: F64, commit: bool) -> F64:
        present_all = ~np.isnan(x_all)
        awake = present_all.any(axis=0)
        # Signals without a sample in the whole block sit it out: nothing to learn, and the
        # NaN-padded tails of a bank of series of different lengths cost nothing.
        sel: slice | NDArray[np.intp] = slice(None) if awake.all() else np.flatnonzero(awake)
        out = np.zeros(x_all.shape)
        anyone = isinstance(sel, slice) or sel.size > 0
        if anyone:
            # The discord commits every finished group as it goes (later groups of the block
            # compare with it); an unfinished block undoes that afterwards.
            ring = self._discord
            undo = None if commit else ring.checkpoint(self._block // ring.group_rows)
            out[:, sel] = self._run_awake(x_all[:, sel], sel, commit)
            if undo is not None:
                ring.restore(undo)
        if commit:
            self._rows += x_all.shape[0]
            if not (anyone and self.config.shape):  # else _shape moved the ring on
                for _ in range(x_all.shape[0] // self._discord.group_rows):
                    self._discord.advance()
        return out

    def _run_awake(self, x: F64, sel: slice | NDArray[np.intp], commit: bool) -> F64:
        cfg = self.config
        b, n = x.shape
        t0 = self._rows
        present = ~np.isnan(x)
        rows = np.arange(b)
        # Forward fill (the last value stands in for a missing one in every window).
        idx = latest_rows(present)
        cols = np.arange(n)
        last = self._last[sel]
        xf = np.where(idx >= 0, x[np.maximum(idx, 0), cols], last)
        # First sample of each signal: its row, its value; age = rows since, inclusive.
        first_in = np.argmax(present, axis=0)
        known_row = self._first_row[sel]
        first_row = np.where(known_row >= 0, known_row, t0 + first_in)
        known_val = self._first_val[sel]
        first_val = np.where(np.isnan(known_val), x[first_in, cols], known_val)
        t = t0 + rows[:, None]
        age = np.where(t >= first_row, t - first_row + 1, 0).astype(np.float64)
        xf = np.where(np.isnan(xf), first_val, xf)  # rows before a signal's first sample
        # Before a signal's first sample its history is its first value (never used as data:
        # windows start at the first sample; it keeps the cumulative sums well-conditioned).
        buf = self._buf[:, sel]
        xb = np.concatenate([np.where(known_row >= 0, buf, first_val), xf])
        fpos = np.clip(first_row - (t0 - self._hist), 0, xb.shape[0] - 1)
        # Value range before each row (current and previous epoch).
        hi = self._hi.block(x, t0, commit, sel)
        lo = self._lo.block(x, t0, commit, sel)
        span = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
        count = self._count[sel] + np.cumsum(present, axis=0) - present
        novelty = value_novelty(x, hi, lo, count >= cfg.min_samples) / cfg.novelty_margin
        feats = window_features(
            xb,
            fpos.astype(np.float64),
            age,
            cfg.windows,
            cfg.std_window,
            cfg.reference,
            cfg.min_reference,
            cfg.rel_floor,
            span,
        )
        if cfg.shape:
            # Lower bound of the shape feature's running maximum over this block: the current
            # epoch's maximum so far (the memory is at least a block long; else no pruning).
            known = np.fmax(self._fmax.cur[-1][sel], 0.0)
            bound = _PRUNE * known if cfg.memory >= self._block else np.zeros(n)
            shape = self._shape(xb, age, present, first_val, bound, sel, commit)
            feats = np.concatenate([feats, shape[:, None, :]], axis=1)
        feats = np.minimum(feats, HUGE) * present[:, None, :]
        peak = self._fmax.block(feats, t0, commit, sel)
        # Floors: a |z| or a log ratio below 1 is never "the most extreme yet"; the shape
        # distance has no natural unit, its floor is a tiny fraction of the range seen.
        peak = np.fmax(peak, self._floor[:, None])
        if cfg.shape:
            peak[:, -1] = np.fmax(peak[:, -1], RANGE_EPS * span + TINY)
        ratio = np.max(feats / peak, axis=1)
        ratio = np.fmax(ratio, novelty)
        if cfg.record:
            # Added, not maxed: a record is evidence on top of whatever else the row shows.
            rec = self._record.block(x, t0, count + present, commit, sel)
            ratio = ratio + rec / cfg.record_scale
        ratio = np.where(present, ratio, 0.0)
        quiet = self._trigger(ratio, t0, sel, commit)
        seen = count if cfg.calibrated else np.full(count.shape, cfg.memory)
        score = _tail_score(ratio, seen, cfg.memory, self.channels)
        score = np.where(quiet, 0.0, score)
        if commit:
            self._buf[:, sel] = xb[-self._hist :]
            self._last[sel] = xf[-1]
            self._first_row[sel] = first_row
            self._first_val[sel] = first_val
            self._count[sel] += present.sum(axis=0)
        return np.clip(score, 0.0, 1.0)

    def _shape(
        self,
        xb: F64,
        age: F64,
        present: NDArray[np.bool_],
        first: F64,
        bound: F64,
        sel: slice | NDArray[np.intp],
        commit: bool,
    ) -> F64:
        """The discord feature for the block's rows, one discord group at a time."""
        ring = self._discord
        g = ring.group_rows
        b = age.shape[0]
        h = self._hist
        out = np.zeros(age.shape)
        for s in range(0, b, g):
            e = min(b, s + g)
            window = xb[h + s - g : h + e]
            ages = age[s:e]
            here = present[s:e].astype(np.float64)
            pad = g - (e - s)
            if pad:  # unfinished group: padded; the padded rows' outputs are dropped
                window = np.concatenate([window, np.repeat(window[-1:], pad, axis=0)])
                grow = np.arange(1, pad + 1)[:, None] * (ages[-1:] > 0)
                ages = np.concatenate([ages, ages[-1:] + grow])
                here = np.concatenate([here, np.zeros((pad, age.shape[1]))])
            done = not pad  # an unfinished block restores the ring afterwards
            out[s:e] = ring.group(window, ages, here, first, bound, sel, done)[: e - s]
            if done:
                ring.advance()
        return out

    def _trigger(
        self, ratio: F64, t0: int, sel: slice | NDArray[np.intp], commit: bool
    ) -> NDArray[np.bool_]:
        """Rows inside a quiet period after a detection (the detection row itself excluded)."""
        cfg = self.config
        b, n = ratio.shape
        last = self._last_det[sel].copy()
        det_row = np.full((b, n), -(2**62), dtype=np.int64)
        rows, cols = np.nonzero(ratio >= cfg.trigger)
        for i, k in zip(rows.tolist(), cols.tolist(), strict=True):
            row = t0 + i
            if row - last[k] > cfg.quiet:
                last[k] = row
                det_row[i, k] = row
        # Last detection strictly before each row.
        before = np.empty_like(det_row)
        before[0] = self._last_det[sel]
        before[1:] = det_row[:-1]
        np.maximum.accumulate(before, axis=0, out=before)
        t = t0 + np.arange(b)[:, None]
        if commit:
            self._last_det[sel] = last
        return (t - before <= cfg.quiet) & (det_row < 0) & (before > -(2**61))

    def _check(self, times: F64, values: F64) -> tuple[F64, F64]:
        times = np.asarray(times, dtype=np.float64)
        values = np.asarray(values, dtype=np.float64)
        if times.ndim != 1 or values.ndim != 2 or values.shape != (times.shape[0], self.n):
            raise DetectError(f"need times (T,) and values (T, {self.n})")
        if times.shape[0] and (times[0] <= self._last_t or np.any(np.diff(times) <= 0)):
            raise DetectError("times must increase strictly, also across calls")
        return times, values
