"""Designing the level-shift CUSUMs for a target false-alarm rate: thresholds, delays, allowances.

Page's one-sided CUSUM S ← max(0, S + x − k), alarm when S > h, on standardised independent
Gaussian residuals x ~ N(μ, 1), has two figures of merit: the mean run length in control (μ = 0),
ARL₀ or γ, the mean number of samples between false alarms; and the mean run length after a
shift to μ = δ, the detection delay. For a known δ the CUSUM with k = δ/2 is optimal (Lorden,
Moustakides): no detector has a smaller worst-case delay at the same γ. Its delay is, after
Siegmund (1985),

    D*(γ) ≈ (2/δ²)·(ln(γδ²/2) − 1),

which is meaningful only while γδ²/2 is well above e: a smaller shift is not seen before a false
alarm is expected anyway (then only a simulation, or `markov_arl`, says what the delay is).

This module gives the numbers to configure `DetectConfig.cusum_k`/`cusum_h` with:

* `siegmund_arl` — the closed-form corrected-diffusion approximation of either run length;
* `markov_arl` — the Brook–Evans (1972) Markov chain on a grid over [0, h], with Richardson
  extrapolation in the cell width: accurate to well under 1 % where it is cheap (h/k moderate);
* `cusum_threshold` — h for a target ARL₀ (Siegmund's approximation, inverted);
* `optimal_delay` — D*(γ) by the formula above (NaN where it is meaningless);
* `level_shift_config` — a DetectConfig for a known shift (one allowance, k = δ/2) or for a range
  of unknown shifts (a geometric grid of allowances sharing the false-alarm budget).

The thresholds are design values for white Gaussian residuals; the benchmark
`benchmarks/shift_delay.py` measures the bank's real run lengths and calibrates to them.

Example: a CUSUM for a 0.5σ shift with a false alarm every 10⁴ samples on average.

>>> from safety_nexus.detect.design import cusum_threshold, markov_arl, optimal_delay
>>> h = cusum_threshold(0.25, 1e4)
>>> round(h, 2)
13.11
>>> round(markov_arl(0.25, h) / 1e4, 3)  # the approximation is good to a fraction of a per cent
0.999
>>> round(markov_arl(0.25, h, shift=0.5)), round(optimal_delay(0.5, 1e4))
(49, 49)
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from safety_nexus.core.errors import DetectError
from safety_nexus.detect.config import DetectConfig

Sides = Literal["both", "up", "down"]

# Siegmund's correction: the overshoot of a Gaussian random walk over a boundary is 2·0.583σ
# (−ζ(1/2)/√(2π) ≈ 0.5826) on the scale of the diffusion approximation.
OVERSHOOT = 1.166


def siegmund_arl(k: float, h: float, shift: float = 0.0) -> float:
    """Mean run length of S ← max(0, S + x − k), alarm at S > h, on x ~ N(shift, 1): with
    Δ = shift − k and b = h + 1.166, (exp(−2Δb) + 2Δb − 1)/(2Δ²), and b² for Δ = 0."""
    if h <= 0 or k < 0:
        raise DetectError("siegmund_arl needs h > 0 and k >= 0")
    d = shift - k
    b = h + OVERSHOOT
    if abs(d) * b < 1e-6:
        return b * b
    return (math.exp(-2.0 * d * b) + 2.0 * d * b - 1.0) / (2.0 * d * d)


def _phi(x: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Standard normal CDF (NumPy has no erf; the chain needs it on ~4 thousand points)."""
    root = x / math.sqrt(2.0)
    erf = np.fromiter((math.erf(v) for v in root.tolist()), dtype=np.float64, count=root.size)
    out: np.ndarray[Any, np.dtype[np.float64]] = 0.5 * (1.0 + erf.reshape(root.shape))
    return out


def _chain_arl(k: float, h: float, shift: float, m: int) -> float:
    # m transient states; state j stands for S in [(j − ½)w, (j + ½)w) (j = 0: [0, ½w), the
    # mass at 0 included), w = 2h/(2m − 1) so that the last cell ends at h.
    w = 2.0 * h / (2.0 * m - 1.0)
    d = np.arange(-m, m + 1, dtype=np.float64)  # j − i
    upper = _phi((d + 0.5) * w + k - shift)  # P(S' < (j + ½)w | S = iw)
    cell = np.diff(np.concatenate([[0.0], upper]))  # P(S' in cell j), j ≥ 1
    i = np.arange(m)
    j = np.arange(m)
    p = cell[(j[None, :] - i[:, None]) + m]
    p[:, 0] = upper[(0 - i) + m]  # everything below ½w goes to state 0
    a = np.eye(m) - p
    run: np.ndarray[Any, np.dtype[np.float64]] = np.linalg.solve(a, np.ones(m))
    return float(run[0])


def markov_arl(k: float, h: float, shift: float = 0.0, cells: int | None = None) -> float:
    """Mean run length of the one-sided CUSUM (as `siegmund_arl`) by the Brook–Evans Markov
    chain, Richardson-extrapolated from `cells` and `cells`/2 states (the error of the chain
    falls as the square of the cell width). The default uses cells of about σ/20, at most 1600
    (a dense solve); for very long thresholds (h ≫ 80σ, allowances ≪ 0.05σ) prefer simulation
    or `siegmund_arl`, which is accurate there."""
    if h <= 0 or k < 0:
        raise DetectError("markov_arl needs h > 0 and k >= 0")
    m = cells if cells is not None else int(min(1600, max(100, math.ceil(20.0 * h))))
    m += m % 2
    fine = _chain_arl(k, h, shift, m)
    coarse = _chain_arl(k, h, shift, m // 2)
    return (4.0 * fine - coarse) / 3.0


def cusum_threshold(
    k: float, arl: float, method: Literal["siegmund", "markov"] = "siegmund"
) -> float:
    """Threshold h of a one-sided CUSUM with allowance k whose in-control mean run length is
    `arl` samples, by Siegmund's approximation (bisection), or refined on the Markov chain
    (`markov_arl`, a few Newton steps from there; slower, more accurate for k ≳ 0.5)."""
    if arl <= 1.0 or k < 0:
        raise DetectError("cusum_threshold needs arl > 1 and k >= 0")
    h = _siegmund_threshold(k, arl)
    if method == "markov":
        target = math.log(arl)
        for _ in range(6):
            # d ln ARL / dh from Siegmund's formula: the chain's ARL has the same shape.
            eps = 1e-3 * max(h, 1.0)
            slope = (math.log(siegmund_arl(k, h + eps)) - math.log(siegmund_arl(k, h))) / eps
            step = (target - math.log(markov_arl(k, h))) / slope
            h = max(h + step, 0.5 * h)
            if abs(step) < 1e-4 * h:
                break
    return h


def _siegmund_threshold(k: float, arl: float) -> float:
    lo, hi = 1e-6, 1.0
    while siegmund_arl(k, hi) < arl:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if siegmund_arl(k, mid) < arl:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-9 * hi:
            break
    return 0.5 * (lo + hi)


def optimal_delay(delta: float, arl: float) -> float:
    """D*(γ) ≈ (2/δ²)·(ln(γδ²/2) − 1): the delay of the optimal CUSUM (k = δ/2) for a shift of
    δ sigmas at an in-control run length of γ = `arl` (Siegmund's approximation). NaN where
    ln(γδ²/2) ≤ 1, where the approximation means nothing (the shift is too small to be told
    from noise before a false alarm is expected)."""
    if delta <= 0 or arl <= 1:
        raise DetectError("optimal_delay needs delta > 0 and arl > 1")
    log = math.log(arl * delta * delta / 2.0)
    return 2.0 / (delta * delta) * (log - 1.0) if log > 1.0 else math.nan


def shift_grid(lo: float, hi: float, ratio: float = 2.5) -> tuple[float, ...]:
    """Shift sizes lo, lo·ratio, … up to the first that reaches hi/√ratio. The CUSUM for δⱼ
    (k = δⱼ/2) has a delay of about 4h/(δ²·r(2 − r)) on a shift δ, r = 2k/δ: between two
    neighbours the better one stays within about 22 % of the optimum for ratio 2.5 (12 % for
    2), before the price of sharing the false-alarm budget among more statistics."""
    if not 0 < lo <= hi or ratio <= 1:
        raise DetectError("shift_grid needs 0 < lo <= hi and ratio > 1")
    grid = [lo]
    while grid[-1] * math.sqrt(ratio) < hi:
        grid.append(grid[-1] * ratio)
    return tuple(grid)


def level_shift_config(
    arl: float,
    *,
    shift: float | None = None,
    shifts: tuple[float, float] = (0.1, 2.0),
    ratio: float = 2.5,
    sides: Sides = "both",
    base: DetectConfig | None = None,
    **overrides: Any,
) -> DetectConfig:
    """A DetectConfig whose long-baseline CUSUMs are designed for an in-control mean run length
    of `arl` samples per signal on white residuals.

    With `shift` (in sigmas) known: one allowance k = shift/2, the optimal CUSUM. Without: one
    allowance per shift of `shift_grid(*shifts, ratio)`, each statistic (and side) given an
    equal share of the false-alarm budget (Bonferroni: the statistics are correlated, so the
    combined run length comes out longer than `arl`; calibrate on real run lengths, as the
    benchmark does). `sides` watched: "up", "down" or "both" (each side then gets half the
    budget). Everything else comes from `base` (default: DetectConfig()) and `overrides`; this
    does not switch off the local-level pair or the VIF gate: do that (`local_cusum=False`,
    `vif_gate=False`) only for residuals known to be white, and give the baseline a memory far
    longer than the delays it must serve (`halflife`)."""
    if arl <= 1:
        raise DetectError("level_shift_config needs arl > 1")
    if shift is not None and shift <= 0:
        raise DetectError("level_shift_config needs shift > 0")
    deltas = (shift,) if shift is not None else shift_grid(shifts[0], shifts[1], ratio)
    share = len(deltas) * (2 if sides == "both" else 1)
    ks = tuple(d / 2.0 for d in deltas)
    hs = tuple(cusum_threshold(k, arl * share) for k in ks)
    fields = (base or DetectConfig()).model_dump()
    fields.update(cusum_k=ks, cusum_h=hs, cusum_sides=sides)
    fields.update(overrides)
    return DetectConfig(**fields)
