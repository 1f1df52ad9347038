"""The bank as the pipeline uses it: frames in, findings and recoveries out, state kept."""

from __future__ import annotations

import doctest
import importlib
import pickle

import numpy as np
import pytest
from pydantic import ValidationError

from safety_nexus.core.errors import DetectError
from safety_nexus.core.types import FindingKind, Frame
from safety_nexus.detect import REGISTRY, DetectConfig, DetectorBank
from safety_nexus.detect.testing import make_table

MODULES = [
    "safety_nexus.detect.bank",
    "safety_nexus.detect.baseline",
    "safety_nexus.detect.cusum",
    "safety_nexus.detect.variance",
    "safety_nexus.detect.spike",
    "safety_nexus.detect.stale",
    "safety_nexus.detect.rate",
    "safety_nexus.detect.limit",
]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def stream(rows: int = 2000, n: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.arange(float(rows)), 100.0 + rng.normal(size=(rows, n))


def test_findings_carry_signal_asset_unit_and_detector() -> None:
    times, values = stream()
    values[1500:, 4] += 3.0
    table = make_table(6, unit=["V", "A", "bar", "°C", "kPa", "m3/h"])
    result = DetectorBank(table).process(Frame(times, values))
    (f,) = result.findings
    assert (f.signal, f.asset, f.unit, f.kind, f.detector) == (
        "a4.s4",
        "a4",
        "kPa",
        FindingKind.LEVEL_SHIFT,
        "cusum",
    )
    assert 1500 <= f.time <= 1510
    assert f.baseline == pytest.approx(100.0, abs=0.2)


def test_findings_are_ordered_by_time_signal_and_detector() -> None:
    times, values = stream()
    values[1200, 3] += 9.0
    values[1200:, 1] += 5.0
    values[1400:, 0] += 2.0 * np.arange(600)
    table = make_table(6, limit_lo=90.0, limit_hi=110.0)
    result = DetectorBank(table).process(Frame(times, values))
    keys = [
        (f.time, table.index[f.signal], list(REGISTRY).index(f.detector)) for f in result.findings
    ]
    assert keys == sorted(keys)
    kinds = {(f.signal, f.kind) for f in result.findings}
    assert ("a3.s3", FindingKind.SPIKE) in kinds
    assert ("a1.s1", FindingKind.LEVEL_SHIFT) in kinds
    assert ("a0.s0", FindingKind.RATE) in kinds
    assert ("a0.s0", FindingKind.LIMIT) in kinds


def test_recoveries_follow_a_return_to_normal_and_active_masks_agree() -> None:
    times, values = stream(3000)
    values[1000:1800, 2] += 2.0
    values[1000:1100, 5] = np.nan
    bank = DetectorBank(make_table(6))
    during = bank.process(Frame(times[:1200], values[:1200]))
    assert {(f.signal, f.kind) for f in during.findings} == {
        ("a2.s2", FindingKind.LEVEL_SHIFT),
        ("a5.s5", FindingKind.STALE),
    }
    assert [(r.signal, r.kind) for r in during.recoveries] == [("a5.s5", FindingKind.STALE)]
    assert bank.active(FindingKind.LEVEL_SHIFT).tolist() == [False, False, True] + [False] * 3
    assert not bank.active(FindingKind.STALE).any()
    after = bank.process(Frame(times[1200:], values[1200:]))
    assert after.findings == []
    assert [(r.signal, r.kind) for r in after.recoveries] == [("a2.s2", FindingKind.LEVEL_SHIFT)]
    for kind in FindingKind:
        assert not bank.active(kind).any()


def test_active_of_a_kind_without_detector_is_all_false() -> None:
    bank = DetectorBank(make_table(3), detectors=["spike"])
    assert bank.active(FindingKind.LEVEL_SHIFT).tolist() == [False, False, False]


def test_results_do_not_depend_on_shard_size_or_frame_cuts() -> None:
    times, values = stream(1500, n=23, seed=4)
    values[900:, ::3] += 1.0
    values[1000, 1::4] += 10.0
    values[700:760, 2] = np.nan
    table = make_table(23)
    big = DetectorBank(table).process(Frame(times, values))
    small_bank = DetectorBank(table, DetectConfig(block=5))
    assert len(small_bank._shards) == 5
    parts = [small_bank.process(Frame(times[a:b], values[a:b])) for a, b in [(0, 333), (333, 1500)]]
    assert big.findings == parts[0].findings + parts[1].findings
    assert big.recoveries == parts[0].recoveries + parts[1].recoveries
    assert len(big.findings) > 10


def test_process_arrays_counts_the_same_onsets() -> None:
    times, values = stream(1500, n=10, seed=5)
    values[800:, :5] += 1.5
    table = make_table(10)
    expected = len(DetectorBank(table).process(Frame(times, values)).findings)
    assert expected >= 5
    assert DetectorBank(table).process_arrays(times, values) == expected


def test_state_survives_a_restart_through_pickle() -> None:
    times, values = stream(2500, seed=6)
    values[2000:, 1] += 1.0
    bank = DetectorBank(make_table(6))
    bank.process(Frame(times[:1500], values[:1500]))
    blob = pickle.dumps(bank)
    restored = pickle.loads(blob)
    assert len(blob) < 6 * 1024 + 200_000  # state, config and table; no per-row scratch
    a = bank.process(Frame(times[1500:], values[1500:]))
    b = restored.process(Frame(times[1500:], values[1500:]))
    assert a == b
    assert [f.signal for f in a.findings] == ["a1.s1"]


def test_baseline_follows_each_signal() -> None:
    rng = np.random.default_rng(7)
    values = np.array([5.0, -3.0, 1e6]) + rng.normal(size=(3000, 3)) * [0.1, 2.0, 1e-3]
    bank = DetectorBank(make_table(3))
    bank.process(Frame(np.arange(3000.0), values))
    mean, std = bank.baseline()
    assert mean == pytest.approx([5.0, -3.0, 1e6], abs=0.1)
    assert abs(mean[2] - 1e6) < 1e-4  # a large offset keeps its precision
    assert std == pytest.approx([0.1, 2.0, 1e-3], rel=0.1)
    assert bank.warm().all()


def test_frames_are_checked() -> None:
    bank = DetectorBank(make_table(3))
    with pytest.raises(DetectError, match="the bank has 3"):
        bank.process_arrays(np.arange(2.0), np.zeros((2, 4)))
    with pytest.raises(DetectError, match="shape"):
        bank.process_arrays(np.arange(3.0), np.zeros((2, 3)))
    bank.process_arrays(np.array([1.0, 2.0]), np.zeros((2, 3)))
    with pytest.raises(DetectError, match="increase"):
        bank.process_arrays(np.array([2.0, 3.0]), np.zeros((2, 3)))
    with pytest.raises(DetectError, match="increase"):
        bank.process_arrays(np.array([5.0, 5.0]), np.zeros((2, 3)))
    with pytest.raises(DetectError, match="finite"):
        bank.process_arrays(np.array([np.nan]), np.zeros((1, 3)))
    with pytest.raises(DetectError, match="values must be finite"):
        bank.process_arrays(np.array([9.0]), np.array([[0.0, np.inf, np.nan]]))
    assert bank.process_arrays(np.empty(0), np.empty((0, 3))) == 0


def test_construction_is_checked() -> None:
    with pytest.raises(DetectError, match="unknown detector 'nope'"):
        DetectorBank(make_table(2), detectors=["nope"])
    with pytest.raises(DetectError, match="twice"):
        DetectorBank(make_table(2), detectors=["spike", "spike"])
    with pytest.raises(DetectError, match="period"):
        DetectorBank(make_table(2, period=0.0))


def test_config_is_strict() -> None:
    with pytest.raises(ValidationError, match="extra"):
        DetectConfig(warmup=10, hysteresis_typo=1.0)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="warmup"):
        DetectConfig(warmup=1)
    with pytest.raises(ValidationError, match="same"):
        DetectConfig(cusum_k=(0.1, 0.5), cusum_h=(10.0,))
    cfg = DetectConfig()
    assert 0 < cfg.alpha < 1e-3
    assert cfg.variance_k_up > 1.0 > cfg.variance_k_down


def test_an_empty_site_is_fine() -> None:
    bank = DetectorBank(make_table(0))
    result = bank.process(Frame(np.arange(3.0), np.empty((3, 0))))
    assert result.findings == []
    assert result.recoveries == []
    assert bank.state_nbytes() == 0
