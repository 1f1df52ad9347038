"""Forecast consistency: a forecast's error, and its disagreement with other forecasts, against
their own history.

A signal declared `forecast_of` another (with a `horizon`: its sample at t − horizon predicts the
actual at t) gives one residual per sample of the actual: the latest forecast issued at or before
t − horizon (while fresh: within `stale_factor` of its period) minus the actual. Paced by the
actual, a forecast updated once a minute is checked every second against what happens, and its
residual has enough samples to be calibrated within minutes rather than days. Two forecasts of
the same actual with the same horizon give one more residual, their difference, paced by the
slower of the two. A forecasting model is never exact, and its error wanders (a load
forecast is off for an hour when the weather turns), so the residuals are judged against their
own history by the single-signal machinery (`cross.Residuals`: the robust baseline, the level
shift CUSUMs against the long baseline and against the local level, calibrated for
autocorrelation, and the drift CUSUM): the finding is a forecast that *starts* to be off by more
than it ever was. Not whose error gets noisier: the spread of a forecast's error follows the
process (it is larger whenever the actual moves fast), and the local level remembers at least
one forecast update (else the sawtooth of a held forecast against a moving actual looks like a
step at every update). Findings are reported on the forecast, with
kind `forecast`, and say against what ("error against sub-1.load" or "against forecast
sub-1.load_forecast_b"): observed and baseline are then values of that error or difference, in
the forecast's unit. Two forecasts that stop agreeing are both reported (which one is wrong is
what their errors against the actual say).

Example (seeded): a demand that follows a slow cycle, two forecasts of it whose errors wander
(AR(1) with a time constant of 30 samples), and from sample 3000 the first forecast 3 MW high.

>>> import numpy as np
>>> from safety_nexus.core import Frame
>>> from safety_nexus.detect import DetectorBank
>>> from safety_nexus.detect.testing import make_table
>>> rng = np.random.default_rng(4)
>>> n = 4000
>>> demand = 40 + 8 * np.sin(np.arange(n) / 300) + rng.normal(0, 0.3, n)
>>> err = np.zeros((n, 2))
>>> for i in range(1, n):
...     err[i] = 0.967 * err[i - 1] + 0.2 * rng.normal(size=2)
>>> values = np.column_stack([demand, demand + err[:, 0], demand + err[:, 1]])
>>> values[3000:, 1] += 3.0
>>> table = make_table(3, unit="MW", forecasts=[(1, 0), (2, 0)])
>>> bank = DetectorBank(table, detectors=["forecast"])
>>> result = bank.process(Frame(np.arange(float(n)), values))
>>> [(f.signal, f.kind.value, f.time) for f in result.findings]
[('a1.s1', 'forecast', 3009.0)]
>>> f = result.findings[0]
>>> f.context, f.unit, round(f.deviation, 2), round(f.sigmas, 1)
('against forecast a2.s2', 'MW', 5.31, 7.0)
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from safety_nexus.core.types import FindingKind, SignalTable
from safety_nexus.detect.base import F64, Bools, Index
from safety_nexus.detect.config import DetectConfig
from safety_nexus.detect.cross import (
    INNER,
    CrossHits,
    Edge,
    Edges,
    Held,
    Residuals,
    lead_of,
    max_age,
)
from safety_nexus.detect.variance import VarianceDetector

__all__ = ["ForecastDetector"]


class ForecastDetector:
    """Forecast errors and forecast-to-forecast differences of the declared forecasts."""

    name: ClassVar[str] = "forecast"
    kind: ClassVar[FindingKind] = FindingKind.FORECAST
    evidence_unit: ClassVar[str] = "{unit}"

    def __init__(self, table: SignalTable, config: DetectConfig) -> None:
        self.config = config
        fc, act, horizon = table.forecast_pairs()
        period = np.asarray(table.period, dtype=np.float64)
        self.cols: Index = np.unique(np.concatenate([fc, act]))
        pos = {int(c): i for i, c in enumerate(self.cols.tolist())}
        self._f: Index = np.asarray([pos[int(c)] for c in fc], dtype=np.intp)
        self._a: Index = np.asarray([pos[int(c)] for c in act], dtype=np.intp)
        self.held = Held(self.cols, max_age(table, self.cols, config))
        # Forecasts issued but not yet due (issue time + horizon still ahead): a ring per
        # forecast, long enough for every sample issued within one horizon.
        self._delayed = bool(np.any(horizon > 0))
        # Without a horizon the due forecast is simply the latest fresh one: no ring to keep.
        p = fc.shape[0] if self._delayed else 0
        self._horizon: F64 = horizon.astype(np.float64)
        self._age: F64 = max_age(table, fc, config)
        width = int(np.ceil(np.max(horizon / period[fc]))) + 2 if p else 0
        self.ring: F64 = np.full((p, width), np.nan)
        self.ring_t: F64 = np.full((p, width), np.nan)
        self.pushed: Index = np.zeros(p, dtype=np.intp)
        self.popped: Index = np.zeros(p, dtype=np.intp)
        self.due: F64 = np.full(p, np.nan)  # the latest forecast due, and when it was issued
        self.due_t: F64 = np.full(p, -np.inf)
        items: list[Edge] = []
        error_of: dict[int, int] = {}  # forecast column -> its error residual
        for k in range(fc.shape[0]):
            ahead = f", {horizon[k]:g}s ahead" if horizon[k] > 0 else ""
            items.append(Edge(k, int(fc[k]), 1.0, f"error against {table.ids[act[k]]}{ahead}"))
            error_of[int(fc[k])] = k
        # Two forecasts of the same actual for the same time: their difference.
        lead: list[int] = []
        other: list[int] = []
        v_period = [float(period[c]) for c in act]
        for i in range(fc.shape[0]):
            for j in range(i + 1, fc.shape[0]):
                if act[i] != act[j] or horizon[i] != horizon[j]:
                    continue
                a, b = lead_of(table, int(fc[i]), int(fc[j]))
                v = fc.shape[0] + len(lead)
                lead.append(pos[a])
                other.append(pos[b])
                v_period.append(float(period[a]))
                # Reported on the one whose own error moved more (see `cross.Edges`).
                c = len(lead) - 1
                items.append(Edge(v, a, 1.0, f"against forecast {table.ids[b]}", error_of[a], c))
                items.append(Edge(v, b, -1.0, f"against forecast {table.ids[a]}", error_of[b], c))
        self._lead: Index = np.asarray(lead, dtype=np.intp)
        self._other: Index = np.asarray(other, dtype=np.intp)
        # A forecast updated every k samples of its actual holds still for k samples while the
        # actual moves on, and then jumps: a local level that remembers less than one update
        # follows that sawtooth and takes every jump for a step. It remembers one update here.
        # The spread of a forecast's error follows the process (it grows whenever the actual
        # moves fast between updates), so changes of it are no finding: level and drift only.
        steps = period[fc] / period[act] if fc.shape[0] else np.ones(1)
        memory = min(max(config.local_halflife, float(steps.max())), 0.5 * config.halflife)
        inner = tuple(i for i in INNER if i[0] is not VarianceDetector)
        self.residuals = Residuals(
            len(table),
            np.asarray(v_period, dtype=np.float64),
            Edges.build(items),
            config.model_copy(update={"local_halflife": memory}),
            inner,
        )

    @staticmethod
    def applies(table: SignalTable) -> bool:
        return bool(np.any(table.forecast_of >= 0))

    def run(self, times: F64, values: F64) -> list[tuple[int, CrossHits]]:
        raw, held = self.held.fill(times, values)
        due = self._due(times, raw[:, self._f]) if self._delayed else held[:, self._f]
        virtual = np.concatenate(
            [due - raw[:, self._a], raw[:, self._lead] - held[:, self._other]], axis=1
        )
        return self.residuals.run(times, virtual)

    def _due(self, times: F64, issued: F64) -> F64:
        """Per row: the latest forecast issued at or before t − horizon, while fresh."""
        out: F64 = np.full(issued.shape, np.nan)
        p = issued.shape[1]
        width = self.ring.shape[1]
        every = np.arange(p)
        for row, t in enumerate(times.tolist()):
            k = np.flatnonzero(~np.isnan(issued[row]))
            if k.shape[0]:
                slot = self.pushed[k] % width
                self.ring[k, slot] = issued[row, k]
                self.ring_t[k, slot] = t
                self.pushed[k] += 1
            while True:  # pop what has come due (usually nothing, at most a sample or two)
                at = self.ring_t[every, self.popped % width]
                go = np.flatnonzero((self.popped < self.pushed) & (at + self._horizon <= t))
                if not go.shape[0]:
                    break
                slot = self.popped[go] % width
                self.due[go] = self.ring[go, slot]
                self.due_t[go] = at[go]
                self.popped[go] += 1
            fresh = t - self._horizon - self.due_t <= self._age
            out[row] = np.where(fresh, self.due, np.nan)
        return out

    @property
    def active(self) -> Bools:
        return self.residuals.active

    def nbytes(self) -> int:
        own = (self.ring, self.ring_t, self.pushed, self.popped, self.due, self.due_t)
        held = self.held.state_arrays()
        return self.residuals.nbytes() + sum(a.nbytes for a in (*own, *held))
