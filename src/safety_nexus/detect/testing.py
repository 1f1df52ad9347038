"""Small builders for examples, tests and benchmarks of the detector bank (no site file needed).

`make_table` builds a SignalTable; `labelled_stream` a seeded Gaussian stream with one kind of
anomaly injected into half of its signals, with the ground truth needed to score a detector;
`cross_stream` the same for the cross-signal families (declared forecasts, redundant sensors).
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
    forecasts: Sequence[tuple[int, int] | tuple[int, int, float]] = (),
    groups: Sequence[Sequence[int]] = (),
    ids: Sequence[str] | None = None,
) -> SignalTable:
    """A SignalTable of n signals "a<i>.s<i>" on assets "a<i>" (or the given `ids`
    "<asset>.<signal>", their assets taken from them).

    `forecasts` declares (forecast column, actual column[, horizon seconds]) pairs, `groups` the
    columns of each quantity measured by redundant sensors ("q0", "q1", ...).
    """

    def arr(v: float | Sequence[float]) -> F64:
        out = np.empty(n, dtype=np.float64)
        out[:] = v
        return out

    units = (unit,) * n if isinstance(unit, str) else tuple(unit)
    forecast_of = np.full(n, -1, dtype=np.intp)
    horizon = np.zeros(n, dtype=np.float64)
    for pair in forecasts:
        forecast_of[pair[0]] = pair[1]
        horizon[pair[0]] = pair[2] if len(pair) == 3 else 0.0
    measures = np.full(n, -1, dtype=np.intp)
    for q, members in enumerate(groups):
        measures[list(members)] = q
    names = tuple(f"a{i}.s{i}" for i in range(n)) if ids is None else tuple(ids)
    if len(names) != n:
        raise ValueError(f"{len(names)} ids for {n} signals")
    return SignalTable(
        ids=names,
        assets=tuple(i.rsplit(".", 1)[0] for i in names),
        subsystems=("sub",) * n,
        units=units,
        period=arr(period),
        normal_lo=np.full(n, -1.0),
        normal_hi=np.full(n, 1.0),
        limit_lo=arr(limit_lo),
        limit_hi=arr(limit_hi),
        criticality=(Criticality.MEDIUM,) * n,
        forecast_of=forecast_of,
        horizon=horizon,
        measures=measures,
        quantities=tuple(f"q{q}" for q in range(len(groups))),
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
    10-sample excursion beyond a hard limit 5σ out, a day turned upside down (5-minute samples
    with a daily cycle), a sensor that starts rounding to 1σ, a ramp of 0.05σ/s toward a limit
    30σ away, an oscillation of 5σ with a period of 20 samples.
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
    elif kind is FindingKind.SEASONAL:
        # A sample every 5 minutes over 5½ days, with a daily cycle of ±3σ at its low at the
        # onset; from then on the labelled signals' day runs upside down (a night like a day:
        # the values stay inside the usual range).
        step = 300.0
        times = step * np.arange(float(rows))
        phase = 2.0 * np.pi * (times - step * onset) / 86400.0 - 0.5 * np.pi
        values += 3.0 * np.sin(phase)[:, None]
        values[onset:, cols] -= 6.0 * np.sin(phase[onset:])[:, None]
        table = make_table(n, period=step)
        return LabelledStream(kind, table, times, values, labels, onset, 40)
    elif kind is FindingKind.QUANTISATION:
        values[onset:, cols] = np.round(values[onset:, cols])  # resolution 1σ
        max_delay = 150
    elif kind is FindingKind.TIME_TO_THRESHOLD:
        limit_lo, limit_hi = -20.0, 40.0  # 30σ away; the ramp reaches it 600 s after onset
        values[onset:, cols] += 0.05 * np.arange(rows - onset)[:, None]
        max_delay = 240  # the trend needs a few of its time constants (120 s) to see the ramp
    elif kind is FindingKind.OSCILLATION:
        values[onset:, cols] += 5.0 * np.sin(2.0 * np.pi * np.arange(rows - onset) / 20.0)[:, None]
        max_delay = 60  # three periods
    else:
        limit_lo, limit_hi = 5.0, 15.0
        values[onset:end, cols] = 16.0
        max_delay = 1
    table = make_table(n, limit_lo=limit_lo, limit_hi=limit_hi)
    return LabelledStream(kind, table, np.arange(float(rows)), values, labels, onset, max_delay)


def cross_stream(
    kind: FindingKind, groups: int = 8, rows: int = 3000, onset: int = 2000, seed: int = 0
) -> LabelledStream:
    """A seeded stream of declared forecasts (`FORECAST`) or redundant sensors (`DISAGREEMENT`),
    in blocks of three columns, with a fault on one column of the even blocks from `onset`.

    Every block follows a quantity that wanders by itself (an AR(1) of std 1 and a time constant
    of 300 samples). FORECAST: column 0 is the actual (the quantity plus white noise of 0.3),
    columns 1 and 2 forecasts of it whose errors wander too (AR(1), std 0.5, 10 samples); the
    fault moves the first forecast by 2 (four of its error's sigmas). DISAGREEMENT: three
    sensors of the quantity, which also has fast turbulence they all see (std 1), each with its
    own noise (std 0.2); the fault moves the second sensor's reading by 1 (five of its own noise,
    one of the turbulence). `onset` >= `rows`: no fault (labels all False).
    """
    rng = np.random.default_rng(seed)
    n = 3 * groups

    def ar(tau: float, sd: float, cols: int) -> F64:
        phi = np.exp(-1.0 / tau)
        out = np.empty((rows, cols))
        out[0] = sd * rng.normal(size=cols)
        shocks = sd * np.sqrt(1.0 - phi * phi) * rng.normal(size=(rows, cols))
        for i in range(1, rows):
            out[i] = phi * out[i - 1] + shocks[i]
        return out

    level = 10.0 + ar(300.0, 1.0, groups)
    values = np.empty((rows, n))
    labels = np.zeros(n, dtype=np.bool_)
    faulty = [3 * g + 1 for g in range(0, groups, 2)]
    if kind is FindingKind.FORECAST:
        err = ar(10.0, 0.5, 2 * groups)
        values[:, 0::3] = level + 0.3 * rng.normal(size=(rows, groups))
        values[:, 1::3] = level + err[:, :groups]
        values[:, 2::3] = level + err[:, groups:]
        table = make_table(n, forecasts=[(3 * g + j, 3 * g) for g in range(groups) for j in (1, 2)])
        # The local level absorbs part of a step in a residual that wanders (see cusum.py).
        size, max_delay = 2.0, 100
    elif kind is FindingKind.DISAGREEMENT:
        common = level + rng.normal(size=(rows, groups))
        for j in range(3):
            values[:, j::3] = common + 0.2 * rng.normal(size=(rows, groups)) + 0.1 * j
        table = make_table(n, groups=[(3 * g, 3 * g + 1, 3 * g + 2) for g in range(groups)])
        size, max_delay = 1.0, 60
    else:
        raise ValueError(f"no cross-signal stream for {kind}")
    if onset < rows:
        values[onset:, faulty] += size
        labels[faulty] = True
    return LabelledStream(kind, table, np.arange(float(rows)), values, labels, onset, max_delay)
