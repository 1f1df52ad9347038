"""Data that stops: stale signals (no sample for too long) and flatlines (samples that stop moving).

Stale: a signal is stale when its latest sample is older than `stale_factor` × its declared period;
it recovers with its next sample. Evidence is in seconds: observed = age of the latest sample,
baseline = the declared period. Staleness is checked at the rows the bank processes, so a source
that sends nothing at all must still be ticked (`DetectorBank.tick`).

Real links drop samples now and then (a radio, a lossy gateway), and with independent drops at
rate q, k in a row happen every 1/q^k samples: at 5 % drops, three in a row come several times
a day on a 1 s signal and a plain "3 periods" rule would cry stale each time. So the detector
learns each signal's drop rate q (the fraction of the samples its period promises that do not
come, measured over windows of rows while the signal is not stale, an EWMA over windows) and
waits until m samples are missing in a row, with q^m below `stale_surprise`, before it calls the
signal stale: max age = (stale_factor + max(m − stale_factor, 0)) × period. A reliable signal
(q ≈ 0) keeps the plain rule; a real outage is still found, a few periods later on a lossy link.
Irregular sampling within the period (jitter) is not a drop and does not count.

Flatline: `flatline_count` identical samples in a row, on a signal that normally moves. "Normally
moves" is learned: the detector keeps the baseline-weighted rate at which the signal repeats its
previous value, and only signals that repeat less often than `flatline_repeat_max` can flatline
(a quantised signal that legitimately repeats is left alone; the chance of a false flatline is
about repeat_rate^count). It recovers with the first sample that differs.

Example (seeded): signal 0 stops reporting at t = 500, signal 1 freezes at t = 700.

>>> import numpy as np
>>> from safety_nexus.core import Frame
>>> from safety_nexus.detect import DetectorBank
>>> from safety_nexus.detect.testing import make_table
>>> rng = np.random.default_rng(4)
>>> values = rng.normal(size=(1000, 2))
>>> values[500:900, 0] = np.nan
>>> values[700:800, 1] = values[700, 1]
>>> bank = DetectorBank(make_table(2), detectors=["stale", "flatline"])
>>> result = bank.process(Frame(np.arange(1000.0), values))
>>> [(f.signal, f.kind.value, f.time) for f in result.findings]
[('a0.s0', 'stale', 503.0), ('a1.s1', 'flatline', 709.0)]
>>> [(r.signal, r.kind.value, r.time) for r in result.recoveries]
[('a1.s1', 'flatline', 800.0), ('a0.s0', 'stale', 900.0)]
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from safety_nexus.core.types import FindingKind
from safety_nexus.detect.base import (
    F32,
    F64,
    ActiveSet,
    BaselineView,
    Bools,
    Columns,
    Hits,
    Index,
    ScratchState,
)
from safety_nexus.detect.config import DetectConfig


class StaleDetector(ScratchState):
    """No sample for more than stale_factor × period."""

    name: ClassVar[str] = "stale"
    kind: ClassVar[FindingKind] = FindingKind.STALE
    evidence_unit: ClassVar[str] = "s"
    _scratch = ("_age", "_stale", "_new")
    FOLD = 1024  # rows per drop-rate window (the first ones are shorter, see `_fold`)
    _BETA = 0.1  # EWMA weight of one window
    _Q_MAX = 0.5  # a window's drop rate is capped here (a half-dead link is still a link)
    _SPAN = 30.0  # a window closes once it spans this many periods of its signal

    def __init__(self, cols: Columns, config: DetectConfig) -> None:
        self.config = config
        self.period = cols.period
        self.n = cols.n
        self._max_age: F64 = config.stale_factor * cols.period
        self._act = ActiveSet(cols.n)
        self._q: F32 = np.zeros(cols.n, dtype=np.float32)  # learned drop rate
        self._got: F32 = np.zeros(cols.n, dtype=np.float32)  # samples in the current window
        self._windows: F32 = np.zeros(cols.n, dtype=np.float32)  # windows learned from
        self._rows = 0  # rows since the last fold
        self._fold_at = 128  # rows between folds (the first ones are shorter)
        # Start of each signal's window: a window closes at a fold once it spans ten periods
        # of its signal (a slow signal's window spans several folds).
        self._t0: F64 = np.full(cols.n, np.inf)
        self._alloc_scratch()

    def _alloc_scratch(self) -> None:
        self._age: F64 = np.empty(self.n, dtype=np.float64)
        self._stale: Bools = np.empty(self.n, dtype=np.bool_)
        self._new: Bools = np.empty(self.n, dtype=np.bool_)

    @property
    def active(self) -> Bools:
        return self._act.mask

    def update(self, t: float, x: F64, ctx: BaselineView) -> Hits | None:
        del x
        if not self._rows and self._t0[:1].tolist() == [np.inf]:
            self._t0.fill(t)  # the very first row opens every window
        np.add(self._got, ctx.pm, out=self._got)
        self._rows += 1
        if self._rows >= self._fold_at:
            self._fold(t, ctx)
        stale = self._stale
        np.subtract(t, ctx.last_t, out=self._age)  # +inf before the first sample (not warm yet)
        np.greater(self._age, self._max_age, out=stale)
        if ctx.warmb is not None:
            np.logical_and(stale, ctx.warmb, out=stale)
        new = stale
        recovered: Index = np.empty(0, dtype=np.intp)
        if len(self._act):
            new = self._new
            np.greater(stale, self._act.mask, out=new)  # stale and not yet active
            idx = self._act.idx
            recovered = idx[ctx.pmb[idx]]
        if not recovered.shape[0] and not new.any():
            return None
        onsets = np.flatnonzero(new)
        if onsets.shape[0] and self._windows[onsets].min() < 1.0:
            onsets = self._first_window(t, onsets)
            if not onsets.shape[0] and not recovered.shape[0]:
                return None
        if onsets.shape[0]:
            self._act.add(onsets)
        if recovered.shape[0]:
            self._act.remove(recovered)
        age = self._age[onsets]
        return Hits(
            onsets,
            score=age / self._max_age[onsets],
            observed=age,
            baseline=self.period[onsets].astype(np.float64),
            sigma=self.period[onsets].astype(np.float64),
            recovered=recovered,
        )

    def _extra(self, q: F64) -> F64:
        """Periods to wait beyond stale_factor at drop rate q: m missing in a row, q^m below
        `stale_surprise`, of which the plain rule already waits for about stale_factor."""
        extra = np.zeros(q.shape[0])
        lossy = q > 1e-9
        need = np.log(self.config.stale_surprise) / np.log(q[lossy])
        extra[lossy] = np.maximum(np.ceil(need) - self.config.stale_factor, 0.0)
        return extra

    def _first_window(self, t: float, onsets: Index) -> Index:
        """Before a signal's first window is learned, judge a candidate by the drop rate seen so
        far in the current one (the same rule, on less evidence)."""
        cold = self._windows[onsets] < 1.0
        cols = onsets[cold]
        expected = (t - np.minimum(self._t0[cols], t)) / self.period[cols]
        q = np.clip(1.0 - self._got[cols] / np.maximum(expected, 1.0), 0.0, self._Q_MAX)
        q[expected < self._SPAN] = 0.0  # too little evidence: the plain rule
        limit = (self.config.stale_factor + self._extra(q)) * self.period[cols]
        keep = np.ones(onsets.shape[0], dtype=np.bool_)
        keep[cold] = self._age[cols] > limit
        return onsets[keep]

    def _fold(self, t: float, ctx: BaselineView) -> None:
        """Close a window: learn each signal's drop rate from it, and set the max ages."""
        expected = (t - self._t0) / self.period
        closed = expected >= self._SPAN
        # Only windows that say something: the signal warm, not stale (an outage is not a drop
        # rate), and at least one sample in it; others start over.
        ok = closed & ~self._act.mask & (self._got > 0)
        restart = closed | self._act.mask
        if ctx.warmb is not None:
            ok &= ctx.warmb
            restart |= ~ctx.warmb
        if ok.any():
            # Not floored at 0 per window (jitter scatters a window's count both ways; a floor
            # would turn that scatter into a drop rate): the estimate is floored when used.
            qw = np.clip(1.0 - self._got / expected, -self._Q_MAX, self._Q_MAX)
            qw = qw.astype(np.float32)
            # A running average over the first windows, then the EWMA.
            self._windows[ok] += 1.0
            w = np.maximum(np.float32(1.0) / self._windows[ok], np.float32(self._BETA))
            self._q[ok] += w * (qw[ok] - self._q[ok])
            extra = self._extra(np.maximum(self._q, 0.0).astype(np.float64))
            self._max_age = (self.config.stale_factor + extra) * self.period
        self._got[restart] = 0.0
        self._t0[restart] = t
        self._rows = 0
        self._fold_at = min(2 * self._fold_at, self.FOLD)


class FlatlineDetector(ScratchState):
    """flatline_count identical samples in a row on a signal that normally moves."""

    name: ClassVar[str] = "flatline"
    kind: ClassVar[FindingKind] = FindingKind.FLATLINE
    evidence_unit: ClassVar[str] = "{unit}"
    _scratch = ("_same", "_keep", "_samef", "_keepf", "_flat", "_moves", "_tmp", "_pmax", "_cnt")

    def __init__(self, cols: Columns, config: DetectConfig) -> None:
        self.config = config
        self.n = cols.n
        # Repeats of the previous value in a row (count − 1 identical samples).
        self._run: F32 = np.zeros(cols.n, dtype=np.float32)
        # Learned rate of "same as the previous sample" (baseline weights).
        self._repeat: F32 = np.zeros(cols.n, dtype=np.float32)
        self._act = ActiveSet(cols.n)
        self._alloc_scratch()

    def _alloc_scratch(self) -> None:
        n = self.n
        self._same: Bools = np.empty(n, dtype=np.bool_)
        self._keep: Bools = np.empty(n, dtype=np.bool_)
        self._flat: Bools = np.empty(n, dtype=np.bool_)
        self._moves: Bools = np.empty(n, dtype=np.bool_)
        self._tmp: F32 = np.empty(n, dtype=np.float32)
        self._samef: F32 = np.empty(n, dtype=np.float32)
        self._keepf: F32 = np.empty(n, dtype=np.float32)
        self._pmax: F32 = np.full(n, self.config.flatline_repeat_max, dtype=np.float32)
        self._cnt = np.float32(self.config.flatline_count - 1)

    @property
    def active(self) -> Bools:
        return self._act.mask

    def update(self, t: float, x: F64, ctx: BaselineView) -> Hits | None:
        same, keep, flat, tmp, run = self._same, self._keep, self._flat, self._tmp, self._run
        samef, keepf = self._samef, self._keepf
        np.equal(ctx.d, 0.0, out=same)  # False when missing (NaN)
        np.less_equal(ctx.pmb, same, out=keep)  # missing, or present and unchanged
        # run ← (run + same)·keep, in float32 (bool operands would go through casting buffers)
        np.copyto(samef, same)
        np.copyto(keepf, keep)
        np.add(run, samef, out=run)
        np.multiply(run, keepf, out=run)
        np.subtract(samef, self._repeat, out=tmp)
        np.multiply(tmp, ctx.a, out=tmp)
        np.add(self._repeat, tmp, out=self._repeat)
        # Only signals that normally move can flatline, and only after warm-up.
        np.greater_equal(run, self._cnt, out=flat)
        np.less(self._repeat, self._pmax, out=self._moves)
        np.logical_and(flat, self._moves, out=flat)
        if ctx.warmb is not None:
            np.logical_and(flat, ctx.warmb, out=flat)
        recovered: Index = np.empty(0, dtype=np.intp)
        if len(self._act):
            idx = self._act.idx
            recovered = idx[~keep[idx]]
            np.greater(flat, self._act.mask, out=flat)  # flat and not yet active
        if not recovered.shape[0] and not flat.any():
            return None
        onsets = np.flatnonzero(flat)
        if not onsets.shape[0] and not recovered.shape[0]:
            return None
        if onsets.shape[0]:
            self._act.add(onsets)
        if recovered.shape[0]:
            self._act.remove(recovered)
        sd = ctx.std[onsets].astype(np.float64)
        return Hits(
            onsets,
            score=(self._run[onsets].astype(np.float64) + 1.0) / self.config.flatline_count,
            observed=x[onsets],
            baseline=ctx.mean[onsets],
            sigma=sd,
            recovered=recovered,
        )
