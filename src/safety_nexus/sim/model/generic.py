"""The fallback for anything the typed models do not know: an asset type without a model, or a
signal name its type's model does not produce. Such a signal sits at the centre of its normal
band with noise, and reads zero while its asset is tripped, so a site file with extra assets
still simulates (just without coupling for them)."""

from __future__ import annotations

import numpy as np

from safety_nexus.sim.model.base import F64, Modifiers, Noise, Plant, TypeModel


class Generic(TypeModel):
    TYPE = "*"

    def __init__(self, plant: Plant, assets: list[int]) -> None:
        super().__init__(plant, [])
        table = plant.table
        cols = np.flatnonzero(~plant.claimed)
        self.cols = cols
        self.asset_of = plant.signal_asset[cols]
        self.centre = 0.5 * (table.normal_lo[cols] + table.normal_hi[cols])
        width = table.normal_hi[cols] - table.normal_lo[cols]
        for col, w in zip(cols.tolist(), width.tolist(), strict=True):
            plant.noise[col] = Noise(w / 24.0, w / 36.0, 120.0)
            plant.claimed[col] = True

    def step(self, t: float, hour: float, z: F64, mods: Modifiers, first: bool) -> None:
        if self.cols.size:
            self.plant.truth[self.cols] = self.centre * ~mods.trip[self.asset_of]
