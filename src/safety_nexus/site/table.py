"""The site's signals flattened into a `SignalTable`, the column order of every frame, with the
cross-signal declarations (forecasts, redundant sensors) as index arrays over those columns."""

from __future__ import annotations

import numpy as np

from safety_nexus.core.types import SignalTable
from safety_nexus.site.schema import SignalKind, Site


def signal_table(site: Site) -> SignalTable:
    """Signals in file order: asset by asset, signal by signal. Ids are "<asset>.<name>"."""
    ids: list[str] = []
    assets: list[str] = []
    subsystems: list[str] = []
    units: list[str] = []
    crit = []
    period: list[float] = []
    nlo: list[float] = []
    nhi: list[float] = []
    llo: list[float] = []
    lhi: list[float] = []
    plo: list[float] = []
    phi: list[float] = []
    for asset in site.assets:
        for sig in asset.signals:
            ids.append(f"{asset.id}.{sig.name}")
            assets.append(asset.id)
            subsystems.append(asset.subsystem)
            units.append(sig.unit)
            crit.append(sig.criticality or asset.criticality)
            period.append(sig.period)
            nlo.append(sig.normal.low)
            nhi.append(sig.normal.high)
            llo.append(sig.limits.low if sig.limits else -np.inf)
            lhi.append(sig.limits.high if sig.limits else np.inf)
            plo.append(sig.physical.low if sig.physical else -np.inf)
            phi.append(sig.physical.high if sig.physical else np.inf)
    index = {sid: i for i, sid in enumerate(ids)}
    forecast_of = np.full(len(ids), -1, dtype=np.intp)
    horizon = np.zeros(len(ids), dtype=np.float64)
    quantities: dict[str, int] = {}
    counter = np.zeros(len(ids), dtype=np.bool_)
    measures = np.full(len(ids), -1, dtype=np.intp)
    col = 0
    for asset in site.assets:
        for sig in asset.signals:
            if sig.forecast_of is not None:
                forecast_of[col] = index[sig.forecast_of]
                horizon[col] = sig.horizon or 0.0
            if sig.measures is not None:
                measures[col] = quantities.setdefault(sig.measures, len(quantities))
            counter[col] = sig.kind is SignalKind.COUNTER
            col += 1
    return SignalTable(
        ids=tuple(ids),
        assets=tuple(assets),
        subsystems=tuple(subsystems),
        units=tuple(units),
        period=np.asarray(period, dtype=np.float64),
        normal_lo=np.asarray(nlo, dtype=np.float64),
        normal_hi=np.asarray(nhi, dtype=np.float64),
        limit_lo=np.asarray(llo, dtype=np.float64),
        limit_hi=np.asarray(lhi, dtype=np.float64),
        physical_lo=np.asarray(plo, dtype=np.float64),
        physical_hi=np.asarray(phi, dtype=np.float64),
        criticality=tuple(crit),
        forecast_of=forecast_of,
        horizon=horizon,
        measures=measures,
        quantities=tuple(quantities),
        counter=counter,
    )
