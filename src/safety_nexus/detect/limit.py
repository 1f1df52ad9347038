"""Hard limits: a sample outside the limits declared in the site model (SignalTable.limit_lo/hi).

Cheap on purpose: two comparisons and an `or` per row. A finding clears once a sample is back
inside the limits by `limit_hysteresis` baseline sigmas, so a value hovering at the limit does
not chatter. Evidence: observed = the sample, baseline = the limit it crossed, sigma = baseline
std; score = 1 + excess / sigma. Signals without limits (±inf) never fire.

Example (seeded): signal 0 has limits [-5, 5] and one excursion to 7.

>>> import numpy as np
>>> from safety_nexus.core import Frame
>>> from safety_nexus.detect import DetectorBank
>>> from safety_nexus.detect.testing import make_table
>>> rng = np.random.default_rng(6)
>>> values = rng.normal(size=(400, 2))
>>> values[300:310, 0] = 7.0
>>> table = make_table(2, limit_lo=[-5.0, -np.inf], limit_hi=[5.0, np.inf])
>>> bank = DetectorBank(table, detectors=["limit"])
>>> result = bank.process(Frame(np.arange(400.0), values))
>>> [(f.signal, f.time, f.observed, f.baseline) for f in result.findings]
[('a0.s0', 300.0, 7.0, 5.0)]
>>> [(r.signal, r.time) for r in result.recoveries]
[('a0.s0', 310.0)]
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from safety_nexus.core.types import FindingKind
from safety_nexus.detect.base import (
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


class LimitDetector(ScratchState):
    """Outside [limit_lo, limit_hi]."""

    name: ClassVar[str] = "limit"
    kind: ClassVar[FindingKind] = FindingKind.LIMIT
    evidence_unit: ClassVar[str] = "{unit}"
    _scratch = ("_hi_b", "_lo_b")

    def __init__(self, cols: Columns, config: DetectConfig) -> None:
        self.config = config
        self.n = cols.n
        self.lo: F64 = np.ascontiguousarray(cols.limit_lo, dtype=np.float64)
        self.hi: F64 = np.ascontiguousarray(cols.limit_hi, dtype=np.float64)
        self._act = ActiveSet(cols.n)
        self._alloc_scratch()

    def _alloc_scratch(self) -> None:
        self._hi_b: Bools = np.empty(self.n, dtype=np.bool_)
        self._lo_b: Bools = np.empty(self.n, dtype=np.bool_)

    @property
    def active(self) -> Bools:
        return self._act.mask

    def update(self, t: float, x: F64, ctx: BaselineView) -> Hits | None:
        del t
        out, below = self._hi_b, self._lo_b
        np.greater(x, self.hi, out=out)  # comparisons with NaN (missing) are False
        np.less(x, self.lo, out=below)
        np.logical_or(out, below, out=out)
        if ctx.warmb is not None:
            np.logical_and(out, ctx.warmb, out=out)
        recovered: Index = np.empty(0, dtype=np.intp)
        if len(self._act):
            idx = self._act.idx
            xi = x[idx]
            margin = self.config.limit_hysteresis * ctx.std[idx].astype(np.float64)
            inside = (xi >= self.lo[idx] + margin) & (xi <= self.hi[idx] - margin)
            recovered = idx[inside]
            np.greater(out, self._act.mask, out=out)  # outside and not yet active
        if not recovered.shape[0] and not out.any():
            return None
        onsets = np.flatnonzero(out)
        if onsets.shape[0]:
            self._act.add(onsets)
        if recovered.shape[0]:
            self._act.remove(recovered)
        xo = x[onsets]
        upper = xo > self.hi[onsets]
        limit = np.where(upper, self.hi[onsets], self.lo[onsets])
        sd = ctx.std[onsets].astype(np.float64)
        return Hits(
            onsets,
            score=1.0 + np.abs(xo - limit) / sd,
            observed=xo,
            baseline=limit,
            sigma=sd,
            recovered=recovered,
        )
