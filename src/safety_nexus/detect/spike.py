"""Spikes: one sample beyond `spike_sigmas` robust sigmas, with normal samples either side.

A sample far out is only a spike if it is isolated; if the next sample of the same signal is far
out as well, it is the start of a sustained change, which the level-shift detector reports. The
decision therefore waits for the next sample of that signal (strictly causal: the finding is
emitted when that sample arrives, with the spike's value as evidence). A finding stays active for
`spike_hold` periods; further spikes within the hold extend it instead of raising new findings.

The hot path is two ufuncs (|z| and a comparison); the pending candidates live in a small dict,
since they are rare.

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
[('a0.s0', 601.0, 8)]
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
    _scratch = ("_az", "_big")

    def __init__(self, cols: Columns, config: DetectConfig) -> None:
        self.config = config
        self.period = cols.period
        self.n = cols.n
        self._act = ActiveSet(cols.n)
        self._clear_at: F64 = np.full(cols.n, np.inf, dtype=np.float64)
        # Signals whose latest sample was far out (a new spike needs a normal sample before it).
        self._prev_big: set[int] = set()
        # Candidates waiting for their next sample: col -> (score, observed, baseline, sigma).
        self._pending: dict[int, tuple[float, float, float, float]] = {}
        self._alloc_scratch()

    def _alloc_scratch(self) -> None:
        self._az: F32 = np.empty(self.n, dtype=np.float32)
        self._big: Bools = np.empty(self.n, dtype=np.bool_)

    def nbytes(self) -> int:
        # The dict and set hold only signals that are far out right now: O(anomalies), not O(n).
        return self._act.nbytes() + self._clear_at.nbytes + 64 * (
            len(self._pending) + len(self._prev_big)
        )

    @property
    def active(self) -> Bools:
        return self._act.mask

    def update(self, t: float, x: F64, ctx: BaselineView) -> Hits | None:
        big = self._big
        np.abs(ctx.z, out=self._az)
        np.greater(self._az, np.float32(self.config.spike_sigmas), out=big)  # False for NaN
        any_big = bool(big.any())
        if not (any_big or self._pending or self._prev_big or len(self._act)):
            return None
        return self._events(t, x, ctx, any_big)

    def _events(self, t: float, x: F64, ctx: BaselineView, any_big: bool) -> Hits | None:
        big, present = self._big, ctx.pmb
        confirmed: list[int] = []
        evidence: list[tuple[float, float, float, float]] = []
        for col in [c for c in self._pending if present[c]]:
            cand = self._pending.pop(col)
            if not big[col]:
                confirmed.append(col)
                evidence.append(cand)
        for col in [c for c in self._prev_big if present[c] and not big[c]]:
            self._prev_big.discard(col)
        if any_big:
            warm = ctx.warmb
            ks = self.config.spike_sigmas
            for col in np.flatnonzero(big).tolist():
                if col not in self._prev_big and (warm is None or warm[col]):
                    sd = float(ctx.std[col])
                    self._pending[col] = (
                        float(self._az[col]) / ks,
                        float(x[col]),
                        float(ctx.mean[col]),
                        sd,
                    )
                self._prev_big.add(col)
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
