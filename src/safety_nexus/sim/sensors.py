"""From true values to what the sensors report: noise, quantisation, sampling and sensor faults.

Each signal has white noise plus an AR(1) component (real sensors drift a little, slowly, and
that correlation is what makes naive detectors over-alarm), then rounds to its resolution. A
signal is reported on the ticks of its sample period, at a phase fixed by its id (so not every
10-second signal lands on the same tick). Sensor faults act here, after the physics: a stale
sensor reports nothing, a flatlined one repeats its last report, a spike adds to one sample, a
drifting clock reports what it measured some seconds ago.

A digital signal (`Noise.digital`: a controller's readback of the setpoint in effect) has no
sensor: it reports the plant's value exactly and draws no random numbers, so the noise of every
other signal is the same whether or not a site declares readbacks.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from safety_nexus.core.types import SignalTable
from safety_nexus.sim.model.base import F64, Modifiers, Noise

MAX_CLOCK_LAG = 900.0  # seconds a drifting sensor clock may fall behind before it is capped


class SensorBank:
    def __init__(
        self, table: SignalTable, noise: list[Noise], rng: np.random.Generator, tick: float
    ) -> None:
        n = len(table)
        self.n = n
        self.rng = rng
        self.tick = tick
        self.white = np.asarray([s.white for s in noise])
        ar = np.asarray([s.ar for s in noise])
        self.phi = np.asarray([math.exp(-tick / s.tau) for s in noise])
        self.innovation = ar * np.sqrt(1.0 - self.phi**2)
        self.res = np.asarray([s.resolution for s in noise])
        self.quantised = np.flatnonzero(self.res > 0)
        res_q = self.res[self.quantised]
        # Fine resolutions divide by an integer (round(y * 1000) / 1000) so that a reading of
        # 10.949 is the double nearest 10.949 and prints as such; coarse ones multiply.
        self.fine = res_q < 1.0
        self.scale = np.where(self.fine, np.round(1.0 / np.where(self.fine, res_q, 1.0)), res_q)
        self.floor = np.asarray([s.floor for s in noise])
        self.sd = np.asarray([s.sd for s in noise])
        self.every = np.maximum(1, np.floor(table.period / tick + 0.5)).astype(np.int64)
        self.phase = np.asarray(
            [
                zlib.crc32(sid.encode()) % int(e)
                for sid, e in zip(table.ids, self.every, strict=True)
            ],
            dtype=np.int64,
        )
        # Only analogue sensors draw noise (see the module doc).
        self.analog = np.flatnonzero(~np.asarray([s.digital for s in noise], dtype=np.bool_))
        self.all_analog = self.analog.size == n
        # Start the AR components in their stationary distribution, not at zero.
        self.ar = np.zeros(n)
        self.ar[self.analog] = ar[self.analog] * rng.standard_normal(self.analog.size)
        self.depth = math.ceil(MAX_CLOCK_LAG / tick) + 2
        self.history = np.full((self.depth, n), np.nan)
        self.pos = 0
        self.last = np.full(n, np.nan)  # last reported value, what a flatline repeats
        self.hold = np.full(n, np.nan)
        self.was_flat = np.zeros(n, dtype=np.bool_)

    def measure(self, k: int, truth: F64, mods: Modifiers) -> F64:
        """The row reported on tick `k` (NaN where nothing is reported)."""
        n = self.n
        if self.all_analog:
            z = self.rng.standard_normal(2 * n)
            self.ar = self.phi * self.ar + self.innovation * z[:n]
            noise = self.white * z[n:] + self.ar
        else:
            a, m = self.analog, self.analog.size
            z = self.rng.standard_normal(2 * m)
            self.ar[a] = self.phi[a] * self.ar[a] + self.innovation[a] * z[:m]
            noise = np.zeros(n)
            noise[a] = self.white[a] * z[m:] + self.ar[a]
        if mods.dirty:
            y = truth + noise * mods.noise_mul + mods.sensor_add + mods.spike
        else:
            y = truth + noise
        q = self.quantised
        yq = y[q]
        y[q] = np.where(
            self.fine,
            np.round(yq * self.scale) / self.scale,
            np.round(yq / self.scale) * self.scale,
        )
        if mods.dirty:
            coarse = np.flatnonzero(mods.coarse > 0)
            if coarse.size:  # a sensor that lost resolution (an ADC that dropped bits)
                res = mods.coarse[coarse]
                y[coarse] = np.round(y[coarse] / res) * res
        np.maximum(y, self.floor, out=y)
        self.pos = (self.pos + 1) % self.depth
        self.history[self.pos] = y
        sampled = (k % self.every) == self.phase
        if mods.dirty:
            lagging = np.flatnonzero(mods.delay > 0)
            if lagging.size:
                back = np.minimum(
                    np.floor(mods.delay[lagging] / self.tick + 0.5).astype(np.int64),
                    self.depth - 1,
                )
                y[lagging] = self.history[(self.pos - back) % self.depth, lagging]
            started = mods.flat & ~self.was_flat
            self.hold[started] = self.last[started]
            y = np.where(mods.flat, self.hold, y)
            self.was_flat = mods.flat.copy()
            sampled &= ~mods.stale
        elif self.was_flat.any():
            self.was_flat[:] = False
        row = np.where(sampled, y, np.nan)
        np.copyto(self.last, row, where=sampled & ~np.isnan(row))
        return row
