"""Stuck and quantised sensors: a signal that starts stepping back and forth between a few values.

A sensor that loses resolution (an ADC that drops bits, a gateway that starts rounding) or that
is stuck toggling between two readings keeps *moving*, so the flatline test (stale.py: the same
value over and over) does not see it. What it does instead is return to the value it just left:
a step straight back, d_t = −d_{t−1} ≠ 0. A continuous signal practically never does that; a
signal with a fine resolution does it now and then, at a rate that the detector learns per
signal (baseline weights); a coarsened one does it far more often (with a step of one noise
sigma, about one sample in five), and a toggling one every sample. Runs of one repeated value
do not count (d_t = d_{t−1} = 0 is the flatline's business).

The test is Bernoulli CUSUM (Page) on the toggle indicator e: S ← max(0, S + e − k) per
present sample, with k the optimal allowance between the learned rate p₀ (floored at
`quant_floor`) and p₁ = max(p₀ + `quant_rate`, `quant_factor`·p₀); it fires above `quant_h`
and clears below
`quant_clear` × that. k follows p₀ every 256 rows. Evidence: observed = the step of the last
toggle (unit: the sensor's new apparent resolution, or the distance between the two values it
toggles between), baseline = 0, sigma = the baseline's std; score = S / `quant_h`.

Example (seeded): signal 1's sensor starts rounding to one noise sigma at t = 1500.

>>> import numpy as np
>>> from safety_nexus.core import Frame
>>> from safety_nexus.detect import DetectorBank
>>> from safety_nexus.detect.testing import make_table
>>> rng = np.random.default_rng(9)
>>> values = 20.0 + rng.normal(size=(2000, 2))
>>> values[1500:, 1] = np.round(values[1500:, 1])
>>> bank = DetectorBank(make_table(2), detectors=["quantisation"])
>>> result = bank.process(Frame(np.arange(2000.0), values))
>>> [(f.signal, f.kind.value, f.time) for f in result.findings]
[('a1.s1', 'quantisation', 1567.0)]
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from safety_nexus.core.types import FindingKind
from safety_nexus.detect.base import (
    EMPTY_INDEX,
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

REFRESH_ROWS = 256  # rows between updates of the allowance from the learned rate
LEARN_EVERY = 4  # rows between updates of the learned rate (REFRESH_ROWS is a multiple)


def allowance(p0: F64 | float, p1: F64 | float) -> F64:
    """Page's allowance for a Bernoulli rate p0 → p1 (per sample, in units of one event)."""
    a = np.log((1.0 - np.asarray(p0)) / (1.0 - np.asarray(p1)))
    b = np.log(np.asarray(p1) / np.asarray(p0))
    out: F64 = a / (a + b)
    return out


class QuantisationDetector(ScratchState):
    """Bernoulli CUSUM on 'stepped straight back', against the signal's learned rate."""

    name: ClassVar[str] = "quantisation"
    kind: ClassVar[FindingKind] = FindingKind.QUANTISATION
    evidence_unit: ClassVar[str] = "{unit}"
    _scratch = ("_d", "_e", "_ef", "_tmp", "_zero", "_fire")

    def __init__(self, cols: Columns, config: DetectConfig) -> None:
        self.config = config
        self.n = n = cols.n
        # −(previous difference): a toggle is d == −d_prev, tested bit for bit (see update).
        self._nd: F32 = np.full(n, np.nan, dtype=np.float32)
        self._S: F32 = np.zeros(n, dtype=np.float32)
        self._p0: F32 = np.zeros(n, dtype=np.float32)  # learned toggle rate
        self._seen: F32 = np.zeros(n, dtype=np.float32)  # samples behind p0 (for its error)
        self._k: F32 = np.full(n, self._allowance(0.0), dtype=np.float32)
        self._gate: F32 = np.ones(n, dtype=np.float32)  # 0 freezes p0 while active
        self._rows = 0
        self._act = ActiveSet(n)
        self._alloc_scratch()

    def _allowance(self, p0: F64 | float, seen: F64 | float = np.inf) -> F64:
        """k for the learned rate p0 made conservative by 3 of its standard errors (p0 from a
        few hundred samples is rough, and an underestimate would make the test fire)."""
        floor = self.config.quant_floor
        base = np.clip(np.asarray(p0, dtype=np.float64), floor, 0.99)
        base = np.minimum(base + 3.0 * np.sqrt(base * (1.0 - base) / np.maximum(seen, 1.0)), 0.99)
        cfg = self.config
        p1 = np.minimum(np.maximum(base + cfg.quant_rate, cfg.quant_factor * base), 0.999)
        return allowance(base, p1)

    def _alloc_scratch(self) -> None:
        n = self.n
        self._d: F32 = np.empty(n, dtype=np.float32)
        self._e: Bools = np.empty(n, dtype=np.bool_)
        self._ef: F32 = np.empty(n, dtype=np.float32)
        self._tmp: F32 = np.empty(n, dtype=np.float32)
        self._zero: F32 = np.zeros(n, dtype=np.float32)
        self._fire: Bools = np.empty(n, dtype=np.bool_)

    @property
    def active(self) -> Bools:
        return self._act.mask

    def update(self, t: float, x: F64, ctx: BaselineView) -> Hits | None:
        del t, x
        d, e, ef, tmp = self._d, self._e, self._ef, self._tmp
        np.copyto(d, ctx.d, casting="same_kind")
        # d == −d_prev, compared as bit patterns: exact, one cheap integer comparison, and a run
        # of one repeated value does not count (x − x is +0.0, its negation −0.0: the bits
        # differ). A missing sample (NaN) is masked below.
        np.equal(d.view(np.int32), self._nd.view(np.int32), out=e)
        np.negative(d, out=self._nd)
        np.copyto(ef, e)
        # S ← max(0, S + (e − k)·present)
        np.subtract(ef, self._k, out=tmp)
        np.multiply(tmp, ctx.pm, out=tmp)
        np.add(self._S, tmp, out=self._S)
        np.maximum(self._S, self._zero, out=self._S)
        self._rows += 1
        if ctx.warmb is not None or self._rows % LEARN_EVERY == 0:
            self._learn(ctx)
        if ctx.warmb is not None:
            # The rate is still being learned: the statistic starts from 0 at warm-up's end.
            np.multiply(self._S, ctx.warmb, out=self._S)
        fire = self._fire
        np.greater(self._S, np.float32(self.config.quant_h), out=fire)
        if ctx.warmb is not None:
            np.logical_and(fire, ctx.warmb, out=fire)
        recovered = EMPTY_INDEX
        if len(self._act):
            idx = self._act.idx
            recovered = idx[self._S[idx] < self.config.quant_clear * self.config.quant_h]
            np.greater(fire, self._act.mask, out=fire)
        elif not fire.any():
            return None
        onsets = np.flatnonzero(fire)
        if not onsets.shape[0] and not recovered.shape[0]:
            return None
        return self._hits(onsets, recovered, ctx)

    def _learn(self, ctx: BaselineView) -> None:
        """p0 += LEARN_EVERY·a·(e − p0) on every LEARN_EVERY-th row (a subsample of the toggle
        indicator: the same mean, a quarter of the work; during warm-up every row, with a), frozen
        while a finding is active; the allowance follows p0 every REFRESH_ROWS rows."""
        tmp = self._tmp
        np.subtract(self._ef, self._p0, out=tmp)
        np.multiply(tmp, ctx.a, out=tmp)
        if ctx.warmb is None:  # every row during warm-up, a subsample after it
            np.multiply(tmp, np.float32(LEARN_EVERY), out=tmp)
        if len(self._act):
            np.multiply(tmp, self._gate, out=tmp)
        np.add(self._p0, tmp, out=self._p0)
        np.add(self._seen, ctx.pm, out=self._seen)  # one sample's worth per learning step
        if self._rows % REFRESH_ROWS == 0 or ctx.warmb is not None:
            np.clip(self._p0, 0.0, 1.0, out=self._p0)
            p0, seen = self._p0.astype(np.float64), self._seen.astype(np.float64)
            self._k[:] = self._allowance(p0, seen)

    def _hits(self, onsets: Index, recovered: Index, ctx: BaselineView) -> Hits:
        if recovered.shape[0]:
            self._act.remove(recovered)
            self._gate[recovered] = 1.0
        if onsets.shape[0]:
            self._act.add(onsets)
            self._gate[onsets] = 0.0
        return Hits(
            onsets,
            score=self._S[onsets].astype(np.float64) / self.config.quant_h,
            observed=np.abs(self._nd[onsets]).astype(np.float64),  # the step it toggles by
            baseline=np.zeros(onsets.shape[0]),
            sigma=ctx.std[onsets].astype(np.float64),
            recovered=recovered,
        )


def toggle_rate(resolution: float, sd: float) -> float:
    """Rate of steps straight back for white noise of `sd` rounded to `resolution` (a design
    aid for tests and docs): Σ_v p_v²·(1 − p_v) over the reachable values v."""
    if resolution <= 0:
        return 0.0
    total = 0.0
    span = math.ceil(8.0 * sd / resolution) + 1
    for i in range(-span, span + 1):
        lo = (i - 0.5) * resolution / sd
        hi = (i + 0.5) * resolution / sd
        p = 0.5 * (math.erf(hi / math.sqrt(2.0)) - math.erf(lo / math.sqrt(2.0)))
        total += p * p * (1.0 - p)
    return total
