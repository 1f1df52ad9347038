"""Spikes: one sample beyond `spike_sigmas` robust sigmas, with calm samples either side.

A sample far out is only a spike if it is isolated: the previous and the next sample of the same
signal must be calm (within half the spike threshold). A far-out sample followed by another one
is the start of a sustained change, which the level-shift detector reports; one that follows an
unsettled sample is part of a burst, which the variance detector reports. The decision waits for
the next sample of that signal (strictly causal: the finding is emitted when that sample arrives,
with the spike's value as evidence). A finding stays active for `spike_hold` periods; further
spikes within the hold extend it instead of raising new findings.

The hot path is a few ufuncs (|z|, two comparisons, the calm flag); the pending candidates live
in a small dict, since they are rare.

Example (seeded): an isolated 8σ sample, and an 8σ step on another signal.

>>> import numpy as np
>>> from safety_nexus.core import Frame
>>> from safety_nexus.detect import DetectorBank
>>> from safety_nexus.detect.testing import make_table
>>> rng = np.random.default_rng(3)
>>> values = rng.normal(size=(1000, 2))
>>> values[600, 0] += 8.0
>>> values[600:, 1] += 8.0
>>> bank = DetectorBank(make_table(2), detectors=["spike"])
>>> result = bank.process(Frame(np.arange(1000.0), values))
>>> [(f.signal, f.time, round(f.sigmas)) for f in result.findings]
[('a0.s0', 601.0, 9)]
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


class SpikeDetector(ScratchState):
    """Isolated outliers against the robust baseline."""

    name: ClassVar[str] = "spike"
    kind: ClassVar[FindingKind] = FindingKind.SPIKE
    evidence_unit: ClassVar[str] = "{unit}"
    _scratch = ("_az", "_big", "_calm", "_tmp")

    def __init__(self, cols: Columns, config: DetectConfig) -> None:
        self.config = config
        self.period = cols.period
        self.n = cols.n
        self._act = ActiveSet(cols.n)
        self._clear_at: F64 = np.full(cols.n, np.inf, dtype=np.float64)
        # Whether the latest sample of each signal was calm (a spike needs a calm one before it).
        self._calm_prev: Bools = np.ones(cols.n, dtype=np.bool_)
        # Candidates waiting for their next sample: col -> (score, observed, baseline, sigma).
        self._pending: dict[int, tuple[float, float, float, float]] = {}
        self._alloc_scratch()

    def _alloc_scratch(self) -> None:
        self._az: F32 = np.empty(self.n, dtype=np.float32)
        self._big: Bools = np.empty(self.n, dtype=np.bool_)
        self._calm: Bools = np.empty(self.n, dtype=np.bool_)
        self._tmp: Bools = np.empty(self.n, dtype=np.bool_)

    def extra_nbytes(self) -> int:
        # The dict holds only signals that are far out right now: O(anomalies), not O(n).
        return 64 * len(self._pending)

    @property
    def active(self) -> Bools:
        return self._act.mask

    def update(self, t: float, x: F64, ctx: BaselineView) -> Hits | None:
        big, calm, az = self._big, self._calm, self._az
        ks = np.float32(self.config.spike_sigmas)
        np.abs(ctx.z, out=az)
        np.greater(az, ks, out=big)  # False for NaN
        np.less(az, ks * np.float32(0.5), out=calm)  # False for NaN
        any_big = bool(big.any())
        hits = None
        if any_big or self._pending or len(self._act):
            hits = self._events(t, x, ctx, any_big)
        # calm_prev ← calm where a sample came, unchanged where none did
        np.greater(self._calm_prev, ctx.pmb, out=self._tmp)
        np.logical_or(self._tmp, calm, out=self._calm_prev)
        return hits

    def _events(self, t: float, x: F64, ctx: BaselineView, any_big: bool) -> Hits | None:
        calm, present = self._calm, ctx.pmb
        confirmed: list[int] = []
        evidence: list[tuple[float, float, float, float]] = []
        for col in [c for c in self._pending if present[c]]:
            cand = self._pending.pop(col)
            if calm[col]:
                confirmed.append(col)
                evidence.append(cand)
        if any_big:
            cand_mask = self._big & self._calm_prev
            if ctx.warmb is not None:
                cand_mask &= ctx.warmb
            ks = self.config.spike_sigmas
            for col in np.flatnonzero(cand_mask).tolist():
                self._pending[col] = (
                    float(self._az[col]) / ks,
                    float(x[col]),
                    float(ctx.mean[col]),
                    float(ctx.std[col]),
                )
        onsets: Index = np.empty(0, dtype=np.intp)
        score = observed = baseline = sigma = np.empty(0)
        if confirmed:
            cols = np.asarray(confirmed, dtype=np.intp)
            self._clear_at[cols] = t + self.config.spike_hold * self.period[cols]
            new = ~self._act.mask[cols]
            onsets = cols[new]
            if onsets.shape[0]:
                ev = np.asarray(evidence, dtype=np.float64)[new]
                score, observed, baseline, sigma = ev[:, 0], ev[:, 1], ev[:, 2], ev[:, 3]
                self._act.add(onsets)
        recovered: Index = np.empty(0, dtype=np.intp)
        if len(self._act):
            idx = self._act.idx
            recovered = idx[self._clear_at[idx] < t]
            if recovered.shape[0]:
                self._act.remove(recovered)
                self._clear_at[recovered] = np.inf
        if onsets.shape[0] or recovered.shape[0]:
            return Hits(onsets, score, observed, baseline, sigma, recovered)
        return None
