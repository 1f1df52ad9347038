"""The record discord: equal to its definition computed directly, causal, undoable, skipping."""

from __future__ import annotations

import doctest
import math
import pickle

import numpy as np
import pytest

from safety_nexus.detect import record
from safety_nexus.detect.record import RecordDiscord

F = np.ndarray
D, W, M, TAU, FLOOR, WARM = 4, 5, 12, 20.0, 0.02, 10


def make(n: int) -> RecordDiscord:
    return RecordDiscord(n, block=D, window=W, lookback=M, tau=TAU, floor=FLOOR, warm=WARM)


def data(seed: int, t: int = 1600, n: int = 3) -> F:
    rng = np.random.default_rng(seed)
    i = np.arange(t)
    x = np.sin(2 * np.pi * i / 48)[:, None] + 0.2 * rng.standard_normal((t, n))
    x[900:1000, 1] = 0.0  # a day without its wave
    x[rng.random((t, n)) < 0.1] = np.nan
    x[400:420, 2] = np.nan  # whole blocks without a sample
    return x


def feed(rec: RecordDiscord, x: F, step: int) -> F:
    count = np.cumsum(~np.isnan(x), axis=0).astype(np.float64)
    return np.concatenate(
        [
            rec.block(x[lo : lo + step], lo, count[lo : lo + step], True)
            for lo in range(0, len(x), step)
        ]
    )


def reference(x: F) -> F:
    """The module doc's definition, one signal, by brute force over the kept block means."""
    out = np.zeros(len(x))
    means: list[float] = []
    rec, decay = 0.0, math.exp(-1.0 / TAU)
    for k in range(len(x) // D):
        part = x[k * D : (k + 1) * D]
        if np.isnan(part).all():
            continue
        means.append(float(np.nanmean(part)))
        seen = x[: (k + 1) * D]
        span = max(float(np.nanmax(seen) - np.nanmin(seen)), 1e-12)
        j = len(means) - 1
        if j + 1 < M + W:
            continue
        now = np.array(means[j - W + 1 : j + 1])
        dist = (
            min(
                math.sqrt(
                    float(np.mean((now - np.array(means[j - W + 1 - lag : j + 1 - lag])) ** 2))
                )
                for lag in range(W, M + 1)
            )
            / span
        )
        row = (k + 1) * D - 1
        if np.count_nonzero(~np.isnan(x[: row + 1])) > WARM * D and not np.isnan(x[row]):
            out[row] = max(dist - rec, 0.0) / max(rec, FLOOR)
        rec = max(rec * decay, dist)
    return out


def test_module_example_runs() -> None:
    result = doctest.testmod(record)
    assert result.attempted > 0
    assert result.failed == 0


def test_equals_its_definition() -> None:
    x = data(1)
    got = feed(make(x.shape[1]), x, 64)
    for k in range(x.shape[1]):
        want = reference(x[:, k])
        assert np.allclose(got[:, k], want, rtol=1e-7, atol=1e-7), k
    assert got[900:1100, 1].max() > 1.0  # the missing wave is a record


def test_blocks_of_any_whole_size_give_the_same_values() -> None:
    x = data(2)
    whole = feed(make(3), x, 1600)
    for step in (4, 12, 256):
        assert np.array_equal(feed(make(3), x, step), whole), step


def test_an_uncommitted_block_changes_nothing_and_pickles() -> None:
    x = data(3)
    count = np.cumsum(~np.isnan(x), axis=0).astype(np.float64)
    rec = make(3)
    rec.block(x[:800], 0, count[:800], True)
    before = pickle.dumps(rec)
    look = rec.block(x[800:1000], 800, count[800:1000], False)
    assert pickle.dumps(rec) == before
    again = pickle.loads(before).block(x[800:1000], 800, count[800:1000], True)
    assert np.array_equal(look, again)


def test_signal_subsets_advance_alone() -> None:
    x = data(4)
    count = np.cumsum(~np.isnan(x), axis=0).astype(np.float64)
    both = make(3)
    alone = make(3)
    sel = np.array([0, 2])
    for lo in range(0, 1600, 80):
        a = both.block(x[lo : lo + 80], lo, count[lo : lo + 80], True)
        b = alone.block(x[lo : lo + 80][:, sel], lo, count[lo : lo + 80][:, sel], True, sel)
        assert np.array_equal(a[:, sel], b)


def test_bad_geometry_is_rejected() -> None:
    with pytest.raises(ValueError, match="window"):
        RecordDiscord(1, block=4, window=13, lookback=12, tau=1.0, floor=0.1, warm=0)
