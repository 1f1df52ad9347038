from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from safety_nexus.core.types import Criticality, SignalTable


def _table(ids: list[str]) -> SignalTable:
    n = len(ids)
    return SignalTable(
        ids=tuple(ids),
        assets=tuple(i.split(".")[0] for i in ids),
        subsystems=("power",) * n,
        units=("kV",) * n,
        period=np.ones(n),
        normal_lo=np.zeros(n),
        normal_hi=np.ones(n),
        limit_lo=np.full(n, -np.inf),
        limit_hi=np.full(n, np.inf),
        criticality=(Criticality.HIGH,) * n,
    )


@pytest.fixture
def make_table() -> Callable[[list[str]], SignalTable]:
    return _table


@pytest.fixture
def table() -> SignalTable:
    return _table(["sub-1.voltage", "sub-1.load", "pump-1.flow", "gen-1.fuel"])
