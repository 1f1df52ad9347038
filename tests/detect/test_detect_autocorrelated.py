"""Real residuals are autocorrelated and wander with the day: the bank stays quiet on them and
still finds what it should (the i.i.d. behaviour is covered by the other test modules)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from safety_nexus.core.types import FindingKind, Frame
from safety_nexus.detect import DetectorBank
from safety_nexus.detect.base import Vif
from safety_nexus.detect.testing import make_table

TAUS = (5.0, 30.0, 200.0)  # time constants of the AR(1) component, in samples


def wandering(n: int, rows: int, seed: int, *, cycle: float = 3.0) -> np.ndarray:
    """White noise (std 1) + an AR(1) component (std 1, time constant from TAUS, by column) + a
    slow cycle of amplitude `cycle` (period 6000 samples, a compressed day, random phase)."""
    rng = np.random.default_rng(seed)
    tau = np.asarray(TAUS)[np.arange(n) % len(TAUS)]
    phi = np.exp(-1.0 / tau)
    innovation = np.sqrt(1.0 - phi * phi)
    ar = np.zeros(n)
    values = np.empty((rows, n))
    for i in range(rows):
        ar = phi * ar + innovation * rng.standard_normal(n)
        values[i] = ar
    values += rng.standard_normal((rows, n))
    phase = rng.uniform(0.0, 2.0 * math.pi, n)
    values += cycle * np.sin(2.0 * math.pi * np.arange(rows)[:, None] / 6000.0 + phase)
    return 20.0 + values


def test_a_wandering_stream_without_fault_stays_quiet() -> None:
    # The bank before variance inflation was measured raised 331 findings on this stream (seed
    # 1): a CUSUM calibrated for independent noise fires on the wander and on the cycle.
    n, rows = 30, 12000
    values = wandering(n, rows, seed=1)
    result = DetectorBank(make_table(n)).process(Frame(np.arange(float(rows)), values))
    assert len(result.findings) <= 2  # 360 thousand samples


def test_a_step_on_a_wandering_stream_is_found_at_once() -> None:
    # A step of 6, about 2.4 standard deviations of the whole stream (cycle and wander
    # included), which the cycle alone covers in an hour: against the local level it stands
    # out at once. What the local level sees as noise is the white noise plus what the wander
    # does within a dozen samples (about 2 here, √VIF included), and a step needs to be about
    # 2.5 times that; smaller ones drown in the wander without a model of it.
    n, rows, onset = 30, 12000, 9000
    values = wandering(n, rows, seed=2)
    values[onset:, ::2] += 6.0
    result = DetectorBank(make_table(n)).process(Frame(np.arange(float(rows)), values))
    first: dict[int, float] = {}
    for f in result.findings:
        if f.time >= onset and f.kind is FindingKind.LEVEL_SHIFT:
            first.setdefault(int(f.asset[1:]), f.time)
    stepped = [i for i in first if i % 2 == 0]
    assert len(stepped) >= 0.9 * (n // 2)
    assert np.median([first[i] - onset for i in stepped]) <= 10
    untouched = {f.signal for f in result.findings if int(f.asset[1:]) % 2}
    assert len(untouched) <= 1  # the other half stays (almost) quiet


def test_more_noise_on_an_autocorrelated_signal_is_a_variance_change() -> None:
    # AR(1) (time constant 30, std 1) plus white noise of std 0.5; the white noise grows to
    # std 1.1 on half the signals. The variance test whitens the residual first, so the AR
    # component neither fires it nor hides the change.
    rng = np.random.default_rng(3)
    n, rows, onset = 20, 6000, 4000
    phi = math.exp(-1.0 / 30.0)
    ar = np.zeros(n)
    values = np.empty((rows, n))
    for i in range(rows):
        ar = phi * ar + math.sqrt(1.0 - phi * phi) * rng.standard_normal(n)
        values[i] = ar
    values += 0.5 * rng.standard_normal((rows, n))
    values[onset:, ::2] += rng.standard_normal((rows - onset, n // 2))
    bank = DetectorBank(make_table(n), detectors=["variance"])
    result = bank.process(Frame(np.arange(float(rows)), values))
    assert not [f for f in result.findings if f.time < onset]
    first: dict[int, float] = {}
    for f in result.findings:
        first.setdefault(int(f.asset[1:]), f.time - onset)
    assert sorted(i for i in first if i % 2 == 0) == list(range(0, n, 2))
    assert max(first[i] for i in range(0, n, 2)) < 200
    assert len(first) <= n // 2 + 1


@pytest.mark.parametrize("phi", [0.0, math.exp(-1.0 / 30.0)])
def test_vif_estimates_match_theory(phi: float) -> None:
    # For AR(1) input with coefficient φ, the variance of its EWMA (weight λ) over that of
    # independent input is (1 + φ(1 − λ)) / (1 − φ(1 − λ)).
    rng = np.random.default_rng(4)
    n, rows = 200, 20000
    scales = [7.5, 100.0]
    vif = Vif(scales, n, memory=50.0, min_memory=400.0, mature=4.0, cap=16.0)
    learn = np.ones((len(scales), n), dtype=np.bool_)
    weight = np.ones(n, dtype=np.float32)
    u = np.zeros(n)
    for _ in range(rows):
        u = phi * u + math.sqrt(1.0 - phi * phi) * rng.standard_normal(n)
        np.subtract(u.astype(np.float32), vif.s, out=vif.delta)
        vif.smooth(weight)
        if vif.due:
            vif.learn(learn)
    for j, t in enumerate(scales):
        lam = 2.0 / (t + 1.0)
        theory = (1.0 + phi * (1.0 - lam)) / (1.0 - phi * (1.0 - lam))
        assert np.mean(vif.v[j]) == pytest.approx(theory, rel=0.1)
    assert vif.mature.all()
