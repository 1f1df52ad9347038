"""CUSUM design helpers: run lengths, thresholds, the optimal delay, the configs they build."""

from __future__ import annotations

import doctest
import itertools
import math

import numpy as np
import pytest

from safety_nexus.core.errors import DetectError
from safety_nexus.detect import DetectConfig, design
from safety_nexus.detect.design import (
    cusum_threshold,
    level_shift_config,
    markov_arl,
    optimal_delay,
    shift_grid,
    siegmund_arl,
)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(design)
    assert result.attempted > 0
    assert result.failed == 0


def simulated_run_lengths(k: float, h: float, shift: float, n: int, seed: int) -> np.ndarray:
    """S ← max(0, S + x − k) from 0, x ~ N(shift, 1): samples until S > h, per stream."""
    rng = np.random.default_rng(seed)
    s = np.zeros(n)
    hit = np.zeros(n)
    t = 0
    while not hit.all():
        t += 1
        s = np.maximum(0.0, s + rng.normal(shift, 1.0, n) - k)
        new = (s > h) & (hit == 0)
        hit[new] = t
    return hit


@pytest.mark.parametrize(("k", "h", "shift"), [(0.5, 3.0, 0.0), (0.25, 4.0, 0.0), (0.5, 4.0, 1.0)])
def test_markov_chain_matches_simulation(k: float, h: float, shift: float) -> None:
    runs = simulated_run_lengths(k, h, shift, 4000, seed=1)
    se = runs.std(ddof=1) / math.sqrt(runs.shape[0])
    assert abs(runs.mean() - markov_arl(k, h, shift)) < 4.0 * se


def test_chain_converges_and_agrees_with_siegmund_for_small_allowances() -> None:
    # The chain with twice the cells barely moves; Siegmund's approximation is close to it
    # where the walk is nearly a diffusion (small k, long h).
    a = markov_arl(0.05, 20.0, cells=400)
    b = markov_arl(0.05, 20.0, cells=800)
    assert abs(a / b - 1.0) < 2e-3
    assert abs(siegmund_arl(0.05, 20.0) / b - 1.0) < 0.01


def test_siegmund_closed_forms() -> None:
    # Δ = 0: (h + 1.166)²; in control: (exp(2kb) − 2kb − 1)/(2k²).
    assert siegmund_arl(0.5, 3.0, shift=0.5) == pytest.approx(4.166**2)
    b = 3.0 + 1.166
    assert siegmund_arl(0.5, 3.0) == pytest.approx((math.exp(b) - b - 1.0) / 0.5)
    with pytest.raises(DetectError):
        siegmund_arl(0.5, 0.0)


@pytest.mark.parametrize("method", ["siegmund", "markov"])
@pytest.mark.parametrize(("k", "arl"), [(0.05, 1e4), (0.5, 1e4), (1.0, 1e5)])
def test_threshold_inverts_the_run_length(k: float, arl: float, method: str) -> None:
    h = cusum_threshold(k, arl, method=method)  # type: ignore[arg-type]
    got = siegmund_arl(k, h) if method == "siegmund" else markov_arl(k, h)
    assert got == pytest.approx(arl, rel=1e-3)


def test_optimal_delay_formula_and_where_it_means_nothing() -> None:
    assert optimal_delay(0.5, 1e4) == pytest.approx(8.0 * (math.log(1250.0) - 1.0))
    # γδ²/2 = 0.045 for a 0.003σ shift at γ = 10⁴: below e, the formula is meaningless.
    assert math.isnan(optimal_delay(0.003, 1e4))
    # Where it is meaningful it agrees with the chain's delay of the CUSUM with k = δ/2.
    h = cusum_threshold(0.25, 1e6, method="markov")
    assert optimal_delay(0.5, 1e6) == pytest.approx(markov_arl(0.25, h, shift=0.5), rel=0.02)


def test_shift_grid_covers_the_range() -> None:
    grid = shift_grid(0.1, 2.0, 2.5)
    assert grid[0] == 0.1
    assert all(b / a == pytest.approx(2.5) for a, b in itertools.pairwise(grid))
    assert grid[-1] * math.sqrt(2.5) >= 2.0 > grid[-2] * math.sqrt(2.5)
    with pytest.raises(DetectError):
        shift_grid(0.1, 2.0, 1.0)


def test_level_shift_config_known_and_unknown() -> None:
    base = DetectConfig(halflife=1e9, local_cusum=False, vif_gate=False)
    known = level_shift_config(1e5, shift=0.2, sides="up", base=base)
    assert known.cusum_k == (0.1,)
    assert len(known.cusum_h) == 1
    assert known.cusum_h[0] == pytest.approx(cusum_threshold(0.1, 1e5))
    assert known.cusum_sides == "up"
    assert known.halflife == 1e9
    assert not known.vif_gate
    unknown = level_shift_config(1e4, shifts=(0.1, 2.0), ratio=2.0)
    grid = shift_grid(0.1, 2.0, 2.0)
    assert unknown.cusum_k == tuple(d / 2.0 for d in grid)
    # Bonferroni: every statistic and side gets 1/(2m) of the false-alarm budget.
    share = 2 * len(grid)
    assert unknown.cusum_h == pytest.approx([cusum_threshold(d / 2.0, 1e4 * share) for d in grid])
    assert unknown.local_cusum
    assert unknown.vif_gate
    with pytest.raises(DetectError):
        level_shift_config(1e4, shift=-1.0)
