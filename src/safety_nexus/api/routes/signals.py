from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Query

from safety_nexus.api.deps import RuntimeDep
from safety_nexus.api.schemas import HistoryPublic, Point, SignalPublic
from safety_nexus.core.errors import NotFoundError, RequestError
from safety_nexus.pipeline.runtime import Runtime

router = APIRouter(tags=["signals"])


def _signal(runtime: Runtime, i: int, latest_t: float, latest_v: float) -> SignalPublic:
    t = runtime.table
    lo, hi = float(t.limit_lo[i]), float(t.limit_hi[i])
    return SignalPublic(
        id=t.ids[i],
        asset=t.assets[i],
        subsystem=t.subsystems[i],
        unit=t.units[i],
        normal=(float(t.normal_lo[i]), float(t.normal_hi[i])),
        limits=(lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None,
        period=float(t.period[i]),
        latest=Point(time=latest_t, value=latest_v) if math.isfinite(latest_v) else None,
    )


def _index(runtime: Runtime, signal: str) -> int:
    i = runtime.table.index.get(signal)
    if i is None:
        raise NotFoundError(f"unknown signal '{signal}'")
    return i


@router.get("/signals")
def list_signals(runtime: RuntimeDep) -> list[SignalPublic]:
    times, values = runtime.latest()
    return [
        _signal(runtime, i, float(times[i]), float(values[i])) for i in range(len(runtime.table))
    ]


@router.get("/signals/{signal}")
def get_signal(runtime: RuntimeDep, signal: str) -> SignalPublic:
    i = _index(runtime, signal)
    times, values = runtime.latest()
    return _signal(runtime, i, float(times[i]), float(values[i]))


@router.get("/signals/{signal}/history")
def signal_history(
    runtime: RuntimeDep,
    signal: str,
    since: Annotated[float | None, Query(description="epoch seconds; default 15 min ago")] = None,
    until: Annotated[float | None, Query(description="epoch seconds; default now")] = None,
    max_points: Annotated[int, Query(ge=2, le=20_000)] = 2000,
) -> HistoryPublic:
    i = _index(runtime, signal)
    now = runtime.clock.now()
    until_ = now if until is None else until
    since_ = until_ - 900.0 if since is None else since
    if since_ >= until_:
        raise RequestError("empty time range: 'since' must be before 'until'")
    times, values = runtime.history.read(signal, since_, until_, max_points=max_points)
    base = _signal(runtime, i, math.nan, math.nan)
    return HistoryPublic(
        signal=signal,
        unit=base.unit,
        normal=base.normal,
        limits=base.limits,
        times=[float(x) for x in times],
        values=[float(v) if math.isfinite(v) else None for v in values],
    )
