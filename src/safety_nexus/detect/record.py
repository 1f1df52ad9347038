"""Shape records: a left discord judged against its own forgetting record.

`detect.discord` asks "is the recent stretch far from every earlier one, compared with how far
stretches usually are?" through the scorer's epoch maximum. This module asks the same question
at the scale of days with a memory that fades smoothly, for N signals at once (after a
colleague's NAB prototype for this project): it finds day-scale pattern changes (a missing daily
peak, denser spikes) that the fine discord, tuned for shorter shapes, does not.

* Block means: the mean of the samples in each `block`-row block (blocks aligned to absolute
  row numbers; a block without a sample is skipped: it neither enters the memory nor scores).
* Distance: D = the RMS distance between the last `window` block means and the nearest of the
  windows that ended `window` to `lookback` blocks earlier (non-overlapping neighbours only),
  divided by the range of all the signal's samples so far. Kept incrementally: one running
  sum of squared differences per lag, so a block costs O(lookback) per signal.
* Record: R ← max(λR, D) after each block, λ = exp(−1/`tau`): the most novel shape of the last
  ~`tau` blocks. The channel is (D − R)⁺ / max(R, `floor`) with the R of before the block: a
  shape counts when it is more novel than anything seen lately. It speaks only once every lag
  has a full window and after `warm` blocks' worth of samples.

The output sits on the last row of each block (0 on the other rows). State per signal:
`lookback + window + 1` block means, `lookback − window + 1` running sums and four scalars.

Example (seeded): a daily pattern that loses its peak is a record when the peak goes missing.

>>> import numpy as np
>>> rng = np.random.default_rng(3)
>>> t = np.arange(16 * 24 * 60)
>>> x = np.sin(2 * np.pi * t / 384)[:, None] + 0.05 * rng.standard_normal((t.size, 1))
>>> x[16 * 24 * 50 :] = 0.05 * rng.standard_normal((16 * 24 * 10, 1))
>>> rec = RecordDiscord(1, block=16, window=24, lookback=64, tau=100.0, floor=0.02, warm=156)
>>> out = np.concatenate(
...     [rec.block(x[i : i + 256], i, np.arange(i + 1, i + 257.0)[:, None], True)
...      for i in range(0, t.size, 256)]
... )
>>> first = int(np.argmax(out[:, 0] > 1.0))
>>> 16 * 24 * 50 <= first < 16 * 24 * 51, bool((out[: 16 * 24 * 50, 0] < 1.0).all())
(True, True)
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from safety_nexus.detect.base import F64

__all__ = ["RecordDiscord"]

_ALL = slice(None)
# Smallest range a distance is divided by (a constant signal has range 0).
_MIN_RANGE = 1e-12


class RecordDiscord:
    """Forgetting-record discord over block means, N signals (see the module doc)."""

    def __init__(
        self,
        n: int,
        block: int,
        window: int,
        lookback: int,
        tau: float,
        floor: float,
        warm: int,
    ) -> None:
        if not 1 <= window <= lookback:
            raise ValueError("a record discord needs 1 <= window <= lookback")
        self.n, self.block_rows, self.window, self.lookback = n, block, window, lookback
        self.decay = math.exp(-1.0 / tau)
        self.floor, self.warm = floor, warm
        self.ring = np.zeros((n, lookback + window + 1))  # block means, latest last
        self.ssq = np.zeros((n, lookback - window + 1))  # per lag window..lookback
        self.blocks = np.zeros(n)  # blocks with a sample so far
        self.record = np.zeros(n)
        self.hi = np.full(n, -np.inf)  # all-time value range
        self.lo = np.full(n, np.inf)

    def block(
        self,
        x: F64,
        t0: int,
        count: F64,
        commit: bool,
        sel: slice | NDArray[np.intp] = _ALL,
    ) -> F64:
        """Channel values for the rows `x` (b, n_sel) starting at absolute row `t0`, a multiple
        of `block`; count: (b, n_sel) samples of each signal up to and including each row.
        Only whole blocks produce values; only with `commit` does the state move on."""
        d, w, m = self.block_rows, self.window, self.lookback
        b, n = x.shape
        out = np.zeros((b, n))
        nb = b // d
        if nb == 0:
            return out
        xb = x[: nb * d].reshape(nb, d, n)
        here = ~np.isnan(xb)
        cnt = here.sum(axis=1)
        means = np.where(here, xb, 0.0).sum(axis=1) / np.maximum(cnt, 1)
        top = np.vstack([self.hi[sel], np.where(here, xb, -np.inf).max(axis=1)])
        bottom = np.vstack([self.lo[sel], np.where(here, xb, np.inf).min(axis=1)])
        hi = np.maximum.accumulate(top, axis=0)[1:]  # range up to each block's end
        lo = np.minimum.accumulate(bottom, axis=0)[1:]
        span = np.maximum(np.where(np.isfinite(hi - lo), hi - lo, 0.0), _MIN_RANGE)
        ring, ssq = self.ring[sel].copy(), self.ssq[sel].copy()
        blocks, record = self.blocks[sel].copy(), self.record[sel].copy()
        size = m + w + 1
        lags = np.arange(w, m + 1)
        i_lag = size - lags  # x(t − lag), positions before the ring shifts
        i_old = size - w  # x(t − window)
        i_oldlag = size - w - lags  # x(t − window − lag)
        live_after = m + w  # every lag's window is filled
        for k in range(nb):
            valid = cnt[k] > 0
            mean = means[k]
            first = valid & (blocks == 0)
            if first.any():  # the first block fills the ring: no special case later
                ring[first] = mean[first, None]
            add = mean[:, None] - ring[:, i_lag]
            sub = ring[:, i_old][:, None] - ring[:, i_oldlag]
            shifted = np.concatenate([ring[:, 1:], mean[:, None]], axis=1)
            vc = valid[:, None]
            ring = np.where(vc, shifted, ring)
            ssq = np.where(vc, ssq + (add * add - sub * sub), ssq)
            blocks = blocks + valid
            live = valid & (blocks >= live_after)
            if not live.any():
                continue
            dist = np.sqrt(np.maximum(ssq.min(axis=1), 0.0) / w) / span[k]
            dist = np.where(live, dist, 0.0)
            row = k * d + d - 1
            gain = np.maximum(dist - record, 0.0) / np.maximum(record, self.floor)
            out[row] = np.where(live & (count[row] > self.warm * d), gain, 0.0)
            record = np.where(live, np.maximum(record * self.decay, dist), record)
        out *= ~np.isnan(x)
        if commit:
            self.ring[sel], self.ssq[sel] = ring, ssq
            self.blocks[sel], self.record[sel] = blocks, record
            self.hi[sel], self.lo[sel] = hi[-1], lo[-1]
        return out
