"""Window features of the anomaly scorer and the normaliser that makes them comparable.

Everything here works on one *block* of rows (all signals at once) plus a short history buffer,
so that the per-row Python overhead of a streaming scorer disappears: features are differences
of cumulative sums over the buffer and the block, and running maxima are `maximum.accumulate`.
Blocks are aligned to absolute row numbers and the arithmetic of a row depends only on its
block's start, which is what makes the scorer's output independent of how callers cut the
stream into calls (the scorer recomputes an unfinished block from its start).

* `window_features`: for each window length w, how far the mean of the last w rows sits from
  the mean of the R rows before it, in that reference's standard deviations (a level shift
  at several time scales; w = 1 is a spike); and |log| of the ratio of the last `std_window`
  rows' standard deviation to the reference's (variance change, flatline).
* `EpochExtremes`: the running maximum (or minimum) over the current and the previous epoch
  of `memory` rows, strictly before each row; the memory is therefore between one and two
  epochs, and an old extreme is forgotten in one step rather than decaying (measured on NAB:
  a decaying maximum scored 10 points lower).
* `value_novelty`: how far a value lies outside everything seen in that memory, relative to
  the range seen ("a value never seen before").
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from safety_nexus.detect.base import F64

__all__ = ["HUGE", "RANGE_EPS", "TINY", "EpochExtremes", "value_novelty", "window_features"]

# Scale-free floor of a standard deviation: this fraction of the value range seen (a signal
# that has been constant so far has range 0 and gets the smallest positive float instead).
RANGE_EPS = 1e-9
TINY = 1e-300
# Features are clipped here so that ratios of two of them stay finite.
HUGE = 1e150
_ALL = slice(None)


def window_features(
    xb: F64,
    first: F64,
    age: F64,
    windows: tuple[int, ...],
    std_window: int,
    reference: int,
    min_reference: int,
    rel_floor: float,
    span: F64,
) -> F64:
    """Features for the last `b` rows of `xb` (L history rows + b block rows, forward-filled).

    first: per signal, the index in `xb` of its first sample (0 if before the buffer); age:
    (b, n) rows since the signal's first sample, inclusive (0 = not seen yet); span: (b, n)
    the value range seen before each row, for the scale-free floor. Returns
    (b, len(windows) + 1, n): one |z| per window, then the standard-deviation log ratio.
    Rows without enough history are 0.
    """
    total, n = xb.shape
    b = age.shape[0]
    hist = total - b
    anchor = xb[0]
    xc = xb - anchor
    c1 = np.zeros((total + 1, n))
    c2 = np.zeros((total + 1, n))
    np.cumsum(xc, axis=0, out=c1[1:])
    np.cumsum(xc * xc, axis=0, out=c2[1:])
    end = hist + 1 + np.arange(b)  # exclusive end of the window ending at each block row
    out = np.zeros((b, len(windows) + 1, n))
    floor_abs = RANGE_EPS * span + TINY
    cols = np.arange(n)
    # Every signal has a full reference for every row (the usual case): plain row slices.
    mature = bool(np.all(first <= hist - max(windows) - reference)) and bool(
        np.all(age > max(windows) + min_reference)
    )
    # A zero standard deviation has the floor TINY: quotients may overflow to inf (clipped by
    # the caller), which is what "a constant signal moved" deserves.
    with np.errstate(over="ignore", divide="ignore"):
        for k, w in enumerate(windows):
            m = (c1[end] - c1[end - w]) / w
            e = end - w
            cnt: F64 | float
            if mature:
                s1 = c1[e] - c1[e - reference]
                s2 = c2[e] - c2[e - reference]
                cnt = float(reference)
            else:
                s = np.maximum(e[:, None] - reference, first[None, :]).astype(np.intp)
                cnt = np.maximum(e[:, None] - s, 1).astype(np.float64)
                s1 = c1[e] - c1[s, cols]
                s2 = c2[e] - c2[s, cols]
            mu = s1 / cnt
            var = np.maximum(s2 / cnt - mu * mu, 0.0)
            floor = rel_floor * np.abs(mu + anchor) + floor_abs
            sd = np.maximum(np.sqrt(var), floor)
            z = np.abs(m - mu) / sd
            if not mature:
                z = np.where(age > w + min_reference, z, 0.0)
            out[:, k] = z
            if w == std_window:
                v_w = np.maximum((c2[end] - c2[end - w]) / w - m * m, 0.0)
                ratio = np.abs(np.log((np.sqrt(v_w) + floor) / sd))
                if not mature:
                    ratio = np.where(age > w + min_reference, ratio, 0.0)
                out[:, -1] = ratio
    return out


class EpochExtremes:
    """Running extreme over the current and the previous epoch, strictly before each row.

    `maximum=True` keeps maxima (init −inf), otherwise minima. State: `prev`, `cur` (shape of a
    row). Epochs are `memory` rows long, aligned to absolute row 0.
    """

    def __init__(self, shape: tuple[int, ...], memory: int, maximum: bool = True) -> None:
        self.memory = memory
        self.maximum = maximum
        fill = -np.inf if maximum else np.inf
        self.prev = np.full(shape, fill)
        self.cur = np.full(shape, fill)

    def block(self, f: F64, t0: int, commit: bool, sel: slice | NDArray[np.intp] = _ALL) -> F64:
        """The extreme of the rows before each row of `f` (rows t0, t0+1, ...; NaN ignored)
        for the signals `sel` (last axis). With `commit` the block's values enter the state."""
        op = np.fmax if self.maximum else np.fmin
        fill = -np.inf if self.maximum else np.inf
        prev, cur = self.prev[..., sel], self.cur[..., sel]
        out = np.empty_like(f)
        b = f.shape[0]
        lo = 0
        while lo < b:
            t = t0 + lo
            hi = min(b, lo + self.memory - t % self.memory)
            if t % self.memory == 0 and t > 0:
                prev, cur = cur, np.full_like(cur, fill)
            seg = op.accumulate(f[lo:hi], axis=0)
            base = op(prev, cur)
            out[lo] = base
            if hi - lo > 1:
                out[lo + 1 : hi] = op(base, seg[:-1])
            cur = op(cur, seg[-1])
            lo = hi
        if commit:
            # The switch at a boundary that ends this block happens when the next block starts.
            self.prev[..., sel] = prev
            self.cur[..., sel] = cur
        return out


def value_novelty(x: F64, hi: F64, lo: F64, enough: F64) -> F64:
    """Distance of x beyond [lo, hi] relative to hi − lo; 0 where `enough` is false or x NaN."""
    span = hi - lo
    span = np.where(np.isfinite(span), span, np.inf)
    span = np.maximum(span, TINY)  # a constant signal that moves: as novel as it gets
    with np.errstate(invalid="ignore", over="ignore"):
        beyond = np.fmax(np.fmax(x - hi, lo - x), 0.0)
        v = np.nan_to_num(beyond / span, nan=0.0, posinf=HUGE)
    return np.where(enough, np.minimum(v, HUGE), 0.0)
