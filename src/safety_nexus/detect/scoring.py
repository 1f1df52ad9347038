"""Continuous anomaly scores: one number in [0, 1] per signal and row, vectorised over signals.

The detector bank answers "what started, and when" with findings; some users need a score for
every row instead: NAB-style evaluations, `nexus replay` on their own data, trend shading. An
`AnomalyScorer` advances N signals together, strictly causally (the score of row t uses nothing
after t), and its state can be pickled so a restart resumes where it stopped.

Interface (stable; the model behind it may change):

    scorer = AnomalyScorer(n_signals, ScoreConfig())
    scorer.learn(times, values)          # warm up on reference data, no output
    scores = scorer.score(times, values) # (T, N) float64 in [0, 1]; NaN input -> score 0

Times are seconds (float64, strictly increasing across calls); values (T, N) float64 with NaN for
"no sample".

NOTE: this first model is a placeholder (an EWMA z-score squashed into [0, 1]); the detection
science issue replaces it with the NAB-grade model behind the same interface.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from safety_nexus.core.errors import DetectError
from safety_nexus.detect.base import F64

__all__ = ["AnomalyScorer", "ScoreConfig"]


class ScoreConfig(BaseModel):
    """Strict: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    halflife: float = Field(500.0, gt=1.0, description="memory of the baseline (samples)")
    warmup: int = Field(30, ge=2, description="samples before a signal scores anything")


class AnomalyScorer:
    """Per-signal anomaly scores in [0, 1], N signals advanced together."""

    def __init__(self, n: int, config: ScoreConfig | None = None) -> None:
        if n < 0:
            raise DetectError("a scorer needs a non-negative number of signals")
        self.n = n
        self.config = config or ScoreConfig()
        self._alpha = 1.0 - math.exp(-math.log(2.0) / self.config.halflife)
        self._mean = np.zeros(n)
        self._var = np.zeros(n)
        self._count = np.zeros(n)
        self._last_t = -math.inf

    def learn(self, times: F64, values: F64) -> None:
        """Advance over reference data without producing scores."""
        self.score(times, values)

    def score(self, times: F64, values: F64) -> F64:
        times, values = self._check(times, values)
        out = np.zeros(values.shape)
        warm = self.config.warmup
        for row in range(values.shape[0]):
            x = values[row]
            present = ~np.isnan(x)
            xs = np.where(present, x, self._mean)
            std = np.sqrt(self._var) + 1e-12
            z = np.abs(xs - self._mean) / std
            ready = present & (self._count >= warm)
            out[row] = np.where(ready, 1.0 - np.exp(-0.5 * (z / 3.0) ** 2), 0.0)
            a = np.where(self._count < 1.0 / self._alpha, 1.0 / (self._count + 1.0), self._alpha)
            a = np.where(present, a, 0.0)
            delta = xs - self._mean
            self._mean += a * delta
            self._var = (1.0 - a) * (self._var + a * delta * delta)
            self._count += present
        if times.shape[0]:
            self._last_t = float(times[-1])
        return out

    def _check(self, times: F64, values: F64) -> tuple[F64, F64]:
        times = np.asarray(times, dtype=np.float64)
        values = np.asarray(values, dtype=np.float64)
        if times.ndim != 1 or values.ndim != 2 or values.shape != (times.shape[0], self.n):
            raise DetectError(f"need times (T,) and values (T, {self.n})")
        if times.shape[0] and (times[0] <= self._last_t or np.any(np.diff(times) <= 0)):
            raise DetectError("times must increase strictly, also across calls")
        return times, values
