"""The cross-signal families (forecast consistency, redundant-sensor disagreement) keep the same
contract as the single-signal detectors (test_detect_contract.py): causal, independent of how
the stream is cut into frames, deterministic, picklable, quiet on noise with declared pairs and
groups, catching their own kind, within a kilobyte of state per signal."""

from __future__ import annotations

import doctest
import importlib
import itertools
import pickle

import numpy as np
import pytest

from safety_nexus.core.errors import DetectError
from safety_nexus.core.types import Finding, FindingKind, Frame, Recovery
from safety_nexus.detect import CROSS_REGISTRY, REGISTRY, DetectConfig, DetectorBank
from safety_nexus.detect.testing import LabelledStream, cross_stream, make_table

NAMES = sorted(CROSS_REGISTRY)


def stream_for(name: str, **kw: int) -> LabelledStream:
    return cross_stream(CROSS_REGISTRY[name].kind, **kw)


def run(
    bank: DetectorBank, times: np.ndarray, values: np.ndarray, cuts: list[int] | None = None
) -> tuple[list[Finding], list[Recovery]]:
    bounds = [0, *(cuts or []), len(times)]
    findings: list[Finding] = []
    recoveries: list[Recovery] = []
    for lo, hi in itertools.pairwise(bounds):
        if hi > lo:
            result = bank.process(Frame(times[lo:hi], values[lo:hi]))
            findings += result.findings
            recoveries += result.recoveries
    return findings, recoveries


def fresh(name: str, s: LabelledStream, **cfg: float) -> DetectorBank:
    return DetectorBank(s.table, DetectConfig(**cfg), detectors=[name])


@pytest.mark.parametrize(
    "module",
    ["safety_nexus.detect.forecast", "safety_nexus.detect.redundancy"],
)
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize("name", NAMES)
def test_registry_entry_is_consistent(name: str) -> None:
    cls = CROSS_REGISTRY[name]
    assert cls.name == name
    assert name not in REGISTRY
    assert isinstance(cls.kind, FindingKind)
    assert cls.__doc__
    assert ">>>" in (importlib.import_module(cls.__module__).__doc__ or "")


@pytest.mark.parametrize("name", NAMES)
def test_does_not_mutate_input(name: str) -> None:
    s = stream_for(name, rows=2200)
    times, values = s.times.copy(), s.values.copy()
    run(fresh(name, s), s.times, s.values, cuts=[700])
    assert np.array_equal(times, s.times)
    assert np.array_equal(values, s.values, equal_nan=True)


@pytest.mark.parametrize("name", NAMES)
def test_detects_its_kind_and_names_the_faulty_signal(name: str) -> None:
    s = stream_for(name)
    findings, _ = run(fresh(name, s), s.times, s.values)
    after = [f for f in findings if f.time >= s.onset]
    first: dict[int, Finding] = {}
    for f in after:
        assert f.kind is s.kind
        assert f.detector == name
        assert f.score >= 1.0
        assert f.context  # what the residual is against
        first.setdefault(s.table.index[f.signal], f)
    for col in np.flatnonzero(s.labels).tolist():
        assert col in first, f"{s.table.ids[col]} not detected"
        assert first[col].time <= s.onset + s.max_delay
    # The healthy partners of the faulty signals are not blamed (at most one slip).
    assert sum(1 for col in first if not s.labels[col]) <= 1
    # Before the fault: at most a slip or two in the bank's calibration.
    assert len(findings) - len(after) <= 2


@pytest.mark.parametrize("name", NAMES)
def test_active_while_the_fault_lasts_then_recovered(name: str) -> None:
    s = stream_for(name)
    clean = stream_for(name, onset=len(s.times))  # the same draws, without the fault
    values = s.values.copy()
    values[2600:] = clean.values[2600:]  # the fault ends
    faulty = np.flatnonzero(s.labels)
    bank = fresh(name, s)
    run(bank, s.times[:2500], values[:2500])
    assert bank.active(s.kind)[faulty].all()
    assert not bank.active(FindingKind.LEVEL_SHIFT).any()  # the residuals' own kinds stay inside
    _, recoveries = run(bank, s.times[2500:], values[2500:])
    assert {r.signal for r in recoveries} >= {s.table.ids[c] for c in faulty}
    assert all(r.kind is s.kind and r.time >= 2600 for r in recoveries)


@pytest.mark.parametrize("name", NAMES)
def test_pickles_to_an_equal_behaving_detector(name: str) -> None:
    s = stream_for(name)
    bank = fresh(name, s)
    half = s.onset - 5
    run(bank, s.times[:half], s.values[:half])
    clone = pickle.loads(pickle.dumps(bank))
    assert clone.state_nbytes() == bank.state_nbytes()
    a = run(bank, s.times[half:], s.values[half:])
    b = run(clone, s.times[half:], s.values[half:])
    assert a == b
    assert a[0], "the stream should produce findings after the cut"


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name: str) -> None:
    s1 = stream_for(name, seed=3)
    s2 = stream_for(name, seed=3)
    assert run(fresh(name, s1), s1.times, s1.values) == run(fresh(name, s2), s2.times, s2.values)


@pytest.mark.parametrize("name", NAMES)
def test_strictly_causal_and_batch_size_invariant(name: str) -> None:
    s = stream_for(name)
    whole = run(fresh(name, s), s.times, s.values)
    assert whole[0]
    rng = np.random.default_rng(17)
    cuts = sorted(set(rng.integers(1, len(s.times), size=40).tolist()))
    assert run(fresh(name, s), s.times, s.values, cuts=cuts) == whole
    stop = s.onset + s.max_delay // 2 + 1
    prefix = run(fresh(name, s), s.times[:stop], s.values[:stop])
    end = s.times[stop - 1]
    assert prefix[0] == [f for f in whole[0] if f.time <= end]
    assert prefix[1] == [r for r in whole[1] if r.time <= end]


@pytest.mark.parametrize("name", NAMES)
def test_future_values_change_nothing_before_them(name: str) -> None:
    s = stream_for(name)
    whole = run(fresh(name, s), s.times, s.values)
    scrambled = s.values.copy()
    scrambled[s.onset + 30 :] = np.random.default_rng(1).normal(
        size=scrambled[s.onset + 30 :].shape
    )
    other = run(fresh(name, s), s.times, scrambled)
    cut = s.times[s.onset + 29]
    assert [f for f in other[0] if f.time <= cut] == [f for f in whole[0] if f.time <= cut]


@pytest.mark.parametrize("name", NAMES)
def test_missing_samples_and_a_silent_member(name: str) -> None:
    s = stream_for(name, onset=3000)  # no fault
    values = s.values.copy()
    rng = np.random.default_rng(5)
    values[rng.random(values.shape) < 0.05] = np.nan
    values[rng.choice(len(values), size=60, replace=False)] = np.nan  # empty rows
    values[:, 4] = np.nan  # one declared signal never reports
    findings, _ = run(fresh(name, s), s.times, values, cuts=[400, 401, 900])
    assert len(findings) <= 2
    assert all(f.signal != s.table.ids[4] for f in findings)


@pytest.mark.parametrize("name", NAMES)
def test_no_findings_during_warm_up(name: str) -> None:
    s = stream_for(name, rows=100, onset=40)
    findings, recoveries = run(fresh(name, s, warmup=100), s.times, s.values)
    assert findings == []
    assert recoveries == []


@pytest.mark.parametrize("name", NAMES)
def test_few_false_alarms_on_noise_with_declarations(name: str) -> None:
    s = stream_for(name, groups=60, onset=3000, seed=11)
    findings, _ = run(fresh(name, s), s.times, s.values)
    samples = s.values.size - DetectConfig().warmup * s.values.shape[1]
    assert len(findings) < samples / 1e4


@pytest.mark.parametrize("name", NAMES)
def test_state_is_at_most_a_kilobyte_per_signal(name: str) -> None:
    s = stream_for(name, groups=100, rows=200, onset=200)
    bank = fresh(name, s)
    run(bank, s.times, s.values)
    assert bank.state_nbytes() / len(s.table) <= 1024
    whole = DetectorBank(s.table)  # every family, single-signal ones included
    run(whole, s.times, s.values)
    assert whole.state_nbytes() / len(s.table) <= 1024


def test_only_declared_tables_get_cross_detectors() -> None:
    plain = DetectorBank(make_table(4))
    assert plain._cross == []
    declared = DetectorBank(make_table(4, forecasts=[(1, 0)], groups=[(2, 3)]))
    assert [type(c).name for c in declared._cross] == ["forecast", "redundancy"]
    only = DetectorBank(make_table(4, forecasts=[(1, 0)], groups=[(2, 3)]), detectors=["cusum"])
    assert only._cross == []
    with pytest.raises(DetectError, match=r"known: .*forecast, redundancy"):
        DetectorBank(make_table(2), detectors=["nope"])


def test_a_pair_reports_both_sensors_and_says_against_which() -> None:
    rng = np.random.default_rng(2)
    n = 3000
    common = 20.0 + np.cumsum(rng.normal(0, 0.3, n))  # the quantity wanders a lot
    values = common[:, None] + 0.2 * rng.normal(size=(n, 2))
    values[2000:, 1] += 1.5
    bank = DetectorBank(make_table(2, unit="Pa", groups=[(0, 1)]), detectors=["redundancy"])
    findings = bank.process(Frame(np.arange(float(n)), values)).findings
    assert [(f.signal, f.time) for f in findings][:2] == [
        ("a0.s0", findings[0].time),
        ("a1.s1", findings[0].time),
    ]
    a, b = findings[:2]
    assert 2000 <= a.time <= 2010
    assert a.context == "against a1.s1"
    assert b.context == "against a0.s0"
    assert a.deviation == pytest.approx(-b.deviation)
    assert b.deviation == pytest.approx(1.5, rel=0.3)
    assert b.explain().startswith("a1.s1: disagreement (against a0.s0), observed ")
    assert " Pa " in b.explain()


def test_a_forecast_horizon_compares_what_was_forecast_for_now() -> None:
    # The forecast of column 1 is issued 30 s ahead: its sample at t is the actual at t + 30.
    rng = np.random.default_rng(3)
    n = 3000
    actual = 50.0 + 5.0 * np.sin(np.arange(n + 30) / 40.0) + 0.1 * rng.normal(size=n + 30)
    values = np.column_stack([actual[:n], actual[30:] + 0.2 * rng.normal(size=n)])
    values[2000:, 1] += 1.0
    bank = DetectorBank(make_table(2, forecasts=[(1, 0, 30.0)]), detectors=["forecast"])
    findings = bank.process(Frame(np.arange(float(n)), values)).findings
    # Aligned by the horizon, the error is small noise until the forecast issued at 2000 comes
    # due at 2030; compared without it, the sine would make the error swing by ±5 all along.
    assert [f.signal for f in findings] == ["a1.s1"]
    assert 2030 <= findings[0].time <= 2040
    assert findings[0].context == "error against a0.s0, 30s ahead"
    unaligned = DetectorBank(make_table(2, forecasts=[(1, 0)]), detectors=["forecast"])
    assert unaligned.process(Frame(np.arange(float(n)), values)).findings != findings


def test_signal_table_rejects_bad_declarations() -> None:
    with pytest.raises(DetectError, match="another column"):
        make_table(2, forecasts=[(1, 1)])
    with pytest.raises(DetectError, match="forecast of a forecast"):
        make_table(3, forecasts=[(1, 0), (2, 1)])
    with pytest.raises(DetectError, match="at least two"):
        make_table(3, groups=[(0,)])
