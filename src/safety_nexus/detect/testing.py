"""Small builders for examples, tests and benchmarks of the detector bank (no site file needed).

`make_table` builds a SignalTable; `labelled_stream` a seeded Gaussian stream with one kind of
anomaly injected into half of its signals, with the ground truth needed to score a detector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from safety_nexus.core.types import Criticality, FindingKind, SignalTable

F64 = np.ndarray[tuple[int, ...], np.dtype[np.float64]]


def make_table(
    n: int,
    *,
    period: float | Sequence[float] = 1.0,
    limit_lo: float | Sequence[float] = -np.inf,
    limit_hi: float | Sequence[float] = np.inf,
    unit: str | Sequence[str] = "V",
) -> SignalTable:
    """A SignalTable of n signals "a<i>.s<i>" on assets "a<i>"."""

    def arr(v: float | Sequence[float]) -> F64:
        out = np.empty(n, dtype=np.float64)
        out[:] = v
        return out

    units = (unit,) * n if isinstance(unit, str) else tuple(unit)
    return SignalTable(
        ids=tuple(f"a{i}.s{i}" for i in range(n)),
        assets=tuple(f"a{i}" for i in range(n)),
        subsystems=("sub",) * n,
        units=units,
        period=arr(period),
        normal_lo=np.full(n, -1.0),
        normal_hi=np.full(n, 1.0),
        limit_lo=arr(limit_lo),
        limit_hi=arr(limit_hi),
        criticality=(Criticality.MEDIUM,) * n,
    )


@dataclass(frozen=True)
class LabelledStream:
    """A stream with one kind of anomaly on the signals where `labels` is True, from `onset`."""

    kind: FindingKind
    table: SignalTable
    times: F64
    values: F64
    labels: np.ndarray[tuple[int], np.dtype[np.bool_]]
    onset: int  # row of the anomaly's start
    max_delay: int  # rows within which a decent detector reports it


def labelled_stream(
    kind: FindingKind, n: int = 20, rows: int = 1600, onset: int = 1200, seed: int = 0
) -> LabelledStream:
    """Gaussian noise (mean 10, std 1, period 1 s) with `kind` injected into the even signals.

    The anomalies are sized so that each is plainly of its kind: a 1σ level shift, a 2.5× std
    increase, one 8σ spike, 20 missing samples, 20 frozen samples, a 2σ-per-sample ramp, a
    10-sample excursion beyond a hard limit 5σ out.
    """
    rng = np.random.default_rng(seed)
    values = 10.0 + rng.normal(size=(rows, n))
    labels = np.zeros(n, dtype=np.bool_)
    labels[::2] = True
    cols = np.flatnonzero(labels)
    limit_lo, limit_hi = -np.inf, np.inf
    end = min(rows, onset + 20)
    if kind is FindingKind.LEVEL_SHIFT:
        values[onset:, cols] += 1.0
        max_delay = 100
    elif kind is FindingKind.VARIANCE:
        values[onset:, cols] = 10.0 + (values[onset:, cols] - 10.0) * 2.5
        max_delay = 100
    elif kind is FindingKind.SPIKE:
        values[onset, cols] += 8.0
        max_delay = 2
    elif kind is FindingKind.STALE:
        values[onset:end, cols] = np.nan
        max_delay = 5
    elif kind is FindingKind.FLATLINE:
        values[onset:end, cols] = values[onset, cols]
        max_delay = 12
    elif kind is FindingKind.RATE:
        values[onset:, cols] += 2.0 * np.arange(rows - onset)[:, None]
        max_delay = 20
    else:
        limit_lo, limit_hi = 5.0, 15.0
        values[onset:end, cols] = 16.0
        max_delay = 1
    table = make_table(n, limit_lo=limit_lo, limit_hi=limit_hi)
    return LabelledStream(kind, table, np.arange(float(rows)), values, labels, onset, max_delay)
