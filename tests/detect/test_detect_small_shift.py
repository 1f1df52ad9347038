"""Level shifts at the statistical limit: the bank configured as the optimal CUSUM.

The settings that make it so (`cusum_sides`, `local_cusum`, `vif_gate`), a baseline started from
a long history (`DetectorBank.prime`), re-arming after a finding (`DetectorBank.rearm`), and the
response-time example of benchmarks/shift_delay.py in small.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from safety_nexus.core.errors import DetectError
from safety_nexus.core.types import FindingKind, Frame
from safety_nexus.detect import DetectConfig, DetectorBank
from safety_nexus.detect.design import cusum_threshold, markov_arl
from safety_nexus.detect.testing import make_table

WHITE = DetectConfig(halflife=1e12, local_cusum=False, vif_gate=False)


def config(**fields: object) -> DetectConfig:
    return DetectConfig(**{**WHITE.model_dump(), **fields})


def first_alarms(bank: DetectorBank, values: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Per signal: the sample number (1-based) of its first level-shift finding, 0 if none."""
    n = values.shape[1]
    index = {sid: i for i, sid in enumerate(bank.table.ids)}
    first = np.zeros(n)
    for lo in range(0, values.shape[0], chunk):
        rows = values[lo : lo + chunk]
        times = np.arange(lo + 1, lo + rows.shape[0] + 1, dtype=np.float64)
        for f in bank.process(Frame(times, rows)).findings:
            i = index[f.signal]
            if f.kind is FindingKind.LEVEL_SHIFT and first[i] == 0:
                first[i] = f.time
    return first


@pytest.mark.slow
def test_response_time_rise_of_three_parts_per_million_is_found_as_fast_as_optimal() -> None:
    # A 2 s response time with 0.1 % noise rises by 0.0003 % (δ = 0.003σ). The bank knows the
    # level from a history of 10⁷ samples and watches upwards with k = δ/2 and h for a false
    # alarm every 10⁴ samples (at that rate the rise is right at the limit of what can be
    # told from noise). Half the streams rise from the first sample, half stay in control: the
    # shifted ones must be found as fast as the optimal CUSUM (the Brook–Evans chain's delay),
    # and the others must raise false alarms as rarely as it does.
    level, sigma, delta, arl, history = 2.0, 2e-3, 0.003, 1e4, 1e7
    k = delta / 2.0
    h = cusum_threshold(k, arl, method="markov")
    expected_delay = markov_arl(k, h, shift=delta)
    expected_arl = markov_arl(k, h)
    n = 128
    rng = np.random.default_rng(7)
    table = make_table(2 * n, unit="s")
    bank = DetectorBank(
        table, config(cusum_k=(k,), cusum_h=(h,), cusum_sides="up"), detectors=["cusum"]
    )
    bank.prime(level + sigma * rng.normal(0.0, 1.0 / math.sqrt(history), 2 * n), sigma, history)
    rows = int(5 * arl)
    values = level + sigma * rng.normal(size=(rows, 2 * n))
    values[:, :n] += delta * sigma
    first = first_alarms(bank, values)
    shifted, control = first[:n], first[n:]
    assert np.count_nonzero(shifted) >= n - 2  # (≈ 1 in 300 runs lasts beyond 5γ)
    found = shifted[shifted > 0]
    se = found.std(ddof=1) / math.sqrt(found.shape[0])
    assert abs(found.mean() - expected_delay) < 4.0 * se
    in_control = control[control > 0]
    assert in_control.shape[0] >= n - 4  # (e⁻⁵: ≈ 1 in 150 lasts beyond 5γ)
    se0 = in_control.std(ddof=1) / math.sqrt(in_control.shape[0])
    assert abs(in_control.mean() - expected_arl) < 4.0 * se0


def test_sides_watch_only_the_direction_asked_for() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=(4000, 2))
    values[1000:, 0] += 1.0
    values[1000:, 1] -= 1.0
    for sides, expect in (("up", [True, False]), ("down", [False, True]), ("both", [True, True])):
        bank = DetectorBank(
            make_table(2), config(cusum_k=(0.5,), cusum_h=(8.0,), cusum_sides=sides), ["cusum"]
        )
        found = first_alarms(bank, values)
        assert list(found > 1000) == expect, sides
        assert not np.any((found > 0) & (found <= 1000)), sides


def test_without_the_vif_gate_the_classic_cusums_run_from_warm_up() -> None:
    # Right after warm-up, the gated bank still measures whether the residual is white; the
    # ungated one is already watching.
    # (The gate needs vif_mature·h/k = 64 samples of a white-looking residual first.)
    rng = np.random.default_rng(4)
    values = rng.normal(size=(400, 1))
    values[100:] += 1.0
    base = {"warmup": 100, "cusum_k": (0.5,), "cusum_h": (8.0,), "local_cusum": False}
    gated = DetectorBank(make_table(1), DetectConfig(**base), ["cusum"])
    ungated = DetectorBank(make_table(1), DetectConfig(**base, vif_gate=False), ["cusum"])
    late = first_alarms(gated, values)[0]
    assert late == 0 or late > 164
    assert 100 < first_alarms(ungated, values)[0] < 140


def test_defaults_keep_the_gate_the_local_pair_and_both_sides() -> None:
    cfg = DetectConfig()
    assert (cfg.cusum_sides, cfg.local_cusum, cfg.vif_gate) == ("both", True, True)


def test_prime_is_the_history_it_summarises() -> None:
    # A bank primed with the mean and scale of a history, and its length, goes on as one that
    # streamed it: the running mean is the same to rounding (it is a sufficient statistic).
    rng = np.random.default_rng(5)
    history = 50.0 + 2.0 * rng.normal(size=(3000, 3))
    more = 50.0 + 2.0 * rng.normal(size=(500, 3))
    cfg = config(warmup=10)
    streamed = DetectorBank(make_table(3), cfg, ["cusum"])
    streamed.process(Frame(np.arange(1.0, 3001.0), history))
    primed = DetectorBank(make_table(3), cfg, ["cusum"])
    primed.prime(history.mean(axis=0), history.std(axis=0), 3000)
    assert primed.warm().all()
    for bank in (streamed, primed):
        bank.process(Frame(np.arange(3001.0, 3501.0), more))
    full = np.vstack([history, more]).mean(axis=0)
    assert primed.baseline()[0] == pytest.approx(full, abs=1e-5)
    assert streamed.baseline()[0] == pytest.approx(full, abs=1e-3)  # winsorised learning
    assert primed.baseline()[1] == pytest.approx(streamed.baseline()[1], rel=0.05)


def test_prime_rejects_bad_statistics() -> None:
    bank = DetectorBank(make_table(2), WHITE, ["cusum"])
    with pytest.raises(DetectError, match="shape"):
        bank.prime(np.zeros(3), np.ones(3), 10)
    with pytest.raises(DetectError, match="std > 0"):
        bank.prime(np.zeros(2), np.array([1.0, 0.0]), 10)
    with pytest.raises(DetectError, match="finite"):
        bank.prime(np.array([0.0, np.nan]), np.ones(2), 10)
    with pytest.raises(DetectError, match="count >= 1"):
        bank.prime(np.zeros(2), np.ones(2), 0)


def test_rearm_forgets_the_finding_and_restores_the_level() -> None:
    rng = np.random.default_rng(6)
    cfg = config(cusum_k=(0.5,), cusum_h=(10.0,), cusum_sides="up")
    bank = DetectorBank(make_table(2), cfg, ["cusum"])
    bank.prime(np.zeros(2), np.ones(2), 1e6)
    values = rng.normal(size=(300, 2))
    values[100:, 0] += 2.0
    found = first_alarms(bank, values)
    assert found[0] > 100
    assert found[1] == 0
    assert bank.active(FindingKind.LEVEL_SHIFT).tolist() == [True, False]
    moved = bank.baseline()[0][0]
    assert moved > 1.0  # re-centred on the new level
    bank.rearm([0])
    assert bank.active(FindingKind.LEVEL_SHIFT).tolist() == [False, False]
    assert abs(bank.baseline()[0][0]) < 0.05  # back to the level before the finding
    # Still 2σ up: found again, as a new finding.
    more = rng.normal(size=(100, 2))
    more[:, 0] += 2.0
    result = bank.process(Frame(np.arange(301.0, 401.0), more))
    assert [f.signal for f in result.findings] == ["a0.s0"]
    with pytest.raises(DetectError, match="out of range"):
        bank.rearm([5])


def test_per_signal_design_overrides_the_config_where_given() -> None:
    # The config's statistic never fires (h = 10⁶); the two signals with their own design do,
    # the one without (NaN) does not, and each reports the shift it saw.
    rng = np.random.default_rng(8)
    values = rng.normal(size=(600, 3))
    values[200:] += 1.0
    k = np.array([0.5, 0.25, np.nan])
    h = np.array([8.0, 12.0, np.nan])
    cfg = config(cusum_k=(1.0,), cusum_h=(1e6,), cusum_sides="up")
    bank = DetectorBank(make_table(3), cfg, ["cusum"], cusum_design=(k, h))
    bank.prime(0.0, 1.0, 1e6)
    result = bank.process(Frame(np.arange(1.0, 601.0), values))
    assert [f.signal for f in result.findings] == ["a0.s0", "a1.s1"]
    assert all(200 < f.time < 300 for f in result.findings)
    assert all(0.5 < f.deviation < 2.5 for f in result.findings)  # (biased up when quick)


def test_per_signal_design_is_checked() -> None:
    table = make_table(2)
    with pytest.raises(DetectError, match="shape"):
        DetectorBank(table, WHITE, ["cusum"], cusum_design=(np.ones(3), np.ones(3)))
    with pytest.raises(DetectError, match="both NaN"):
        DetectorBank(table, WHITE, ["cusum"], cusum_design=(np.array([0.5, np.nan]), np.ones(2)))
    with pytest.raises(DetectError, match="h > 0"):
        DetectorBank(table, WHITE, ["cusum"], cusum_design=(np.ones(2), np.zeros(2)))
