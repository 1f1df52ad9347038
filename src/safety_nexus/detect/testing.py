"""Small builders for examples, tests and benchmarks of the detector bank (no site file needed)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from safety_nexus.core.types import Criticality, SignalTable


def make_table(
    n: int,
    *,
    period: float | Sequence[float] = 1.0,
    limit_lo: float | Sequence[float] = -np.inf,
    limit_hi: float | Sequence[float] = np.inf,
    unit: str = "V",
) -> SignalTable:
    """A SignalTable of n signals "a<i>.s<i>" on assets "a<i>", all in `unit`."""

    def arr(v: float | Sequence[float]) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
        out = np.empty(n, dtype=np.float64)
        out[:] = v
        return out

    return SignalTable(
        ids=tuple(f"a{i}.s{i}" for i in range(n)),
        assets=tuple(f"a{i}" for i in range(n)),
        subsystems=("sub",) * n,
        units=(unit,) * n,
        period=arr(period),
        normal_lo=np.full(n, -1.0),
        normal_hi=np.full(n, 1.0),
        limit_lo=arr(limit_lo),
        limit_hi=arr(limit_hi),
        criticality=(Criticality.MEDIUM,) * n,
    )
