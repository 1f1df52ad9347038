"""Redundant-sensor disagreement: a sensor that departs from the others measuring its quantity.

Signals declared with the same `measures` key are redundant sensors of one quantity. Whatever
the process does, they see together; what one of them sees alone is the sensor: a drift of its
calibration, a stuck value, a clock that falls behind, a noisier element. So each sensor gets a
residual, its own sample minus the *consensus* of its group, judged against its own history by
the single-signal machinery (`cross.Residuals`: the robust baseline, level-shift CUSUMs against
the long baseline and against the local level, calibrated for autocorrelation, and the variance
test) — a constant offset between two transmitters is their normal, a change of it is the
finding, reported on the sensor with kind `disagreement`.

In a group of three or more, a sensor's consensus is the median of the *others'* latest fresh
samples (at least two of them; else that sensor has no residual on that row). Not the median of
all: for three sensors the middle one would be its own consensus, a residual of exactly zero a
third of the time. A fault of one sensor moves its own residual by the fault, and the others' by
a fraction of it (half, for three; nothing, from five on, while only one is faulty), so the
members of a group compete (`cross.Edges`): an onset goes to the member furthest from its
baseline on that row, and to none while another member of the group is active. A pair has no
majority: its one residual is the difference of the two, and a departure is reported on both,
each saying against which (which of two disagreeing sensors is wrong, two cannot tell).

Example (seeded): three pressure transmitters on one main; the line pressure moves a lot (a
slow swing and fast surges all three see), each transmitter adds its own noise, and from sample
3000 the second drifts by 0.005 bar per sample.

>>> import numpy as np
>>> from safety_nexus.core import Frame
>>> from safety_nexus.detect import DetectorBank
>>> from safety_nexus.detect.testing import make_table
>>> rng = np.random.default_rng(7)
>>> n = 4000
>>> line = 5 + 0.5 * np.sin(np.arange(n) / 200) + 0.3 * rng.normal(size=n)
>>> values = line[:, None] + 0.05 * rng.normal(size=(n, 3)) + [0.0, 0.1, -0.05]
>>> values[3000:, 1] += 0.005 * np.arange(n - 3000)
>>> table = make_table(3, unit="bar", groups=[(0, 1, 2)])
>>> bank = DetectorBank(table, detectors=["redundancy"])
>>> result = bank.process(Frame(np.arange(float(n)), values))
>>> [(f.signal, f.kind.value, f.time) for f in result.findings]
[('a1.s1', 'disagreement', 3020.0)]
>>> f = result.findings[0]
>>> f.context, f.unit, round(f.deviation, 3), round(f.sigmas, 1)
('against the median of a0.s0, a2.s2', 'bar', 0.091, 1.5)
"""

from __future__ import annotations

from collections import defaultdict
from typing import ClassVar

import numpy as np

from safety_nexus.core.types import FindingKind, SignalTable
from safety_nexus.detect.base import F64, Bools, Index
from safety_nexus.detect.config import DetectConfig
from safety_nexus.detect.cross import CrossHits, Edge, Edges, Held, Residuals, lead_of, max_age

__all__ = ["RedundancyDetector"]


class RedundancyDetector:
    """Each redundant sensor against the consensus of its group (a pair: against each other)."""

    name: ClassVar[str] = "redundancy"
    kind: ClassVar[FindingKind] = FindingKind.DISAGREEMENT
    evidence_unit: ClassVar[str] = "{unit}"

    def __init__(self, table: SignalTable, config: DetectConfig) -> None:
        self.config = config
        groups = table.sensor_groups()
        period = np.asarray(table.period, dtype=np.float64)
        self.cols: Index = np.sort(np.concatenate([EMPTY, *groups]))
        pos = {int(c): i for i, c in enumerate(self.cols.tolist())}
        self.held = Held(self.cols, max_age(table, self.cols, config))
        items: list[Edge] = []
        v_period: list[float] = []
        # Pairs: one residual, lead minus the other's latest fresh value.
        lead: list[int] = []
        other: list[int] = []
        for g in groups:
            if g.shape[0] != 2:
                continue
            a, b = lead_of(table, int(g[0]), int(g[1]))
            v = len(lead)
            lead.append(pos[a])
            other.append(pos[b])
            v_period.append(float(period[a]))
            items.append(Edge(v, a, 1.0, f"against {table.ids[b]}"))
            items.append(Edge(v, b, -1.0, f"against {table.ids[a]}"))
        self._lead: Index = np.asarray(lead, dtype=np.intp)
        self._other: Index = np.asarray(other, dtype=np.intp)
        # Larger groups, bucketed by size so that each size is one array operation: every member
        # minus the median of the group.
        by_size: defaultdict[int, list[Index]] = defaultdict(list)
        for g in groups:
            if g.shape[0] > 2:
                by_size[int(g.shape[0])].append(g)
        self._buckets: list[Index] = []  # (groups, size) positions into `cols`
        contest = 0
        for size in sorted(by_size):
            members = np.stack(by_size[size])
            self._buckets.append(np.vectorize(pos.__getitem__, otypes=[np.intp])(members))
            for g in members.tolist():
                for c in g:
                    names = ", ".join(table.ids[o] for o in g if o != c)
                    v = len(v_period)
                    items.append(Edge(v, c, 1.0, f"against the median of {names}", v, contest))
                    v_period.append(float(period[c]))
                contest += 1
        self.residuals = Residuals(
            len(table), np.asarray(v_period, dtype=np.float64), Edges.build(items), config
        )

    @staticmethod
    def applies(table: SignalTable) -> bool:
        return bool(np.any(table.measures >= 0))

    def run(self, times: F64, values: F64) -> list[tuple[int, CrossHits]]:
        raw, held = self.held.fill(times, values)
        parts = [raw[:, self._lead] - held[:, self._other]]
        rows = raw.shape[0]
        for members in self._buckets:
            size = members.shape[1]
            out = np.empty((rows, members.shape[0], size))
            for i in range(size):
                others = held[:, np.delete(members, i, axis=1)]  # (rows, groups, size - 1)
                ranked = np.sort(others, axis=-1)  # NaN sorts last
                count = np.count_nonzero(~np.isnan(others), axis=-1)[..., None]
                lo = np.take_along_axis(ranked, np.maximum((count - 1) // 2, 0), -1)[..., 0]
                hi = np.take_along_axis(ranked, count // 2, -1)[..., 0]
                median = 0.5 * (lo + hi)
                median[count[..., 0] < 2] = np.nan
                out[:, :, i] = raw[:, members[:, i]] - median
            parts.append(out.reshape(rows, -1))
        return self.residuals.run(times, np.concatenate(parts, axis=1))

    @property
    def active(self) -> Bools:
        return self.residuals.active

    def nbytes(self) -> int:
        return self.residuals.nbytes() + sum(a.nbytes for a in self.held.state_arrays())


EMPTY: Index = np.empty(0, dtype=np.intp)
