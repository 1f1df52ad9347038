"""Ground truth: which signals a scenario moves, from when to when, and why.

Signal faults say themselves what they touch. For physical faults the answer depends on the
physics (which pumps a substation trip stops, whether a main with one pump left still holds
pressure, how long a tank takes to settle), so it is measured rather than guessed: the twin is
copied, run once as it is and once with the new faults, on the same random draws, and every
signal whose true value differs by more than its sensor noise (or by 0.2 % of its band) is
labelled from the first tick it does to the last. The lags of the dependencies are in the
physics, so they are in the labels' start times too.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import numpy as np

from safety_nexus.sim.faults import Effect, Fault
from safety_nexus.sim.model.base import F64
from safety_nexus.sim.twin import Twin

Kind = Literal["cascade", "deliberate", "sensor-fault", "benign"]


@dataclass(frozen=True, slots=True)
class Label:
    """One signal a scenario made abnormal. `end` None: still abnormal when labelling stopped."""

    scenario: str  # scenario id, e.g. "S4"
    run: int  # the run number within the simulator (1, 2, ...)
    signal: str
    start: float
    end: float | None
    kind: Kind
    root_cause: str  # asset id
    effect: Effect


@dataclass(frozen=True, slots=True)
class Moved:
    col: int
    start: int  # first tick the signal differs
    end: int | None  # first tick it no longer does; None: still differs at the horizon
    effect: Effect


def consequences(
    twin: Twin,
    faults: list[Fault],
    horizon: int,
    threshold: F64,
    limit_lo: F64,
    limit_hi: F64,
) -> list[Moved]:
    """What `faults` (not yet added to `twin`) change in the true values, up to tick `horizon`."""
    first = min(f.start for f in faults)
    plain = copy.deepcopy(twin)
    for k in range(plain.k + 1, first):
        plain.advance(k)
    faulty = copy.deepcopy(plain)
    for f in faults:
        faulty.add(f)
    n = threshold.shape[0]
    first_dev = np.full(n, -1, dtype=np.int64)
    last_dev = np.full(n, -1, dtype=np.int64)
    went_dark = np.zeros(n, dtype=np.bool_)
    over_limit = np.zeros(n, dtype=np.bool_)
    for k in range(first, horizon + 1):
        plain.advance(k)
        faulty.advance(k)
        a = plain.plant.truth
        b = faulty.plant.truth
        dark = np.isnan(b) & ~np.isnan(a)
        dev = (np.abs(b - a) > threshold) | dark | (np.isnan(a) & ~np.isnan(b))
        if dev.any():
            idx = np.flatnonzero(dev)
            new = idx[first_dev[idx] < 0]
            first_dev[new] = k
            last_dev[idx] = k
            went_dark |= dark
            over_limit |= dev & ((b < limit_lo) | (b > limit_hi))
    out: list[Moved] = []
    for col in np.flatnonzero(first_dev >= 0).tolist():
        end = None if last_dev[col] >= horizon else int(last_dev[col]) + 1
        effect: Effect = (
            "stale" if went_dark[col] else "limit" if over_limit[col] else "level_shift"
        )
        out.append(Moved(col, int(first_dev[col]), end, effect))
    return out
