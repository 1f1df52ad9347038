"""The contract every registered detector keeps (after River's generic estimator checks).

Each test runs a bank holding only the detector under test (plus the baseline every detector
needs), on seeded streams from `safety_nexus.detect.testing`.
"""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest

from safety_nexus.core.types import Finding, FindingKind, Frame, Recovery
from safety_nexus.detect import REGISTRY, BankResult, DetectConfig, DetectorBank
from safety_nexus.detect.testing import LabelledStream, labelled_stream, make_table

NAMES = sorted(REGISTRY)


def stream_for(name: str, **kw: int) -> LabelledStream:
    return labelled_stream(REGISTRY[name].kind, **kw)


def run(
    bank: DetectorBank, times: np.ndarray, values: np.ndarray, cuts: list[int] | None = None
) -> tuple[list[Finding], list[Recovery]]:
    """Process a stream cut into frames at `cuts` (row indices); return everything emitted."""
    bounds = [0, *(cuts or []), len(times)]
    findings: list[Finding] = []
    recoveries: list[Recovery] = []
    for lo, hi in itertools.pairwise(bounds):
        if hi > lo:
            result: BankResult = bank.process(Frame(times[lo:hi], values[lo:hi]))
            findings += result.findings
            recoveries += result.recoveries
    return findings, recoveries


def fresh(name: str, s: LabelledStream, **cfg: float) -> DetectorBank:
    return DetectorBank(s.table, DetectConfig(**cfg), detectors=[name])


@pytest.mark.parametrize("name", NAMES)
def test_registry_entry_is_consistent(name: str) -> None:
    cls = REGISTRY[name]
    assert cls.name == name
    assert isinstance(cls.kind, FindingKind)
    assert cls.__doc__
    assert ">>>" in (__import__(cls.__module__, fromlist=["_"]).__doc__ or "")


@pytest.mark.parametrize("name", NAMES)
def test_does_not_mutate_input(name: str) -> None:
    s = stream_for(name)
    times, values = s.times.copy(), s.values.copy()
    run(fresh(name, s), s.times, s.values, cuts=[700])
    assert np.array_equal(times, s.times)
    assert np.array_equal(values, s.values, equal_nan=True)


@pytest.mark.parametrize("name", NAMES)
def test_pickles_to_an_equal_behaving_detector(name: str) -> None:
    s = stream_for(name)
    bank = fresh(name, s)
    half = s.onset - 5  # mid-stream, just before the anomaly, when state matters most
    run(bank, s.times[:half], s.values[:half])
    clone = pickle.loads(pickle.dumps(bank))
    assert clone.state_nbytes() == bank.state_nbytes()
    (det,) = bank._shards[0].detectors
    det_clone = pickle.loads(pickle.dumps(det))
    assert type(det_clone) is type(det)
    for a, b in zip(det.state_arrays(), det_clone.state_arrays(), strict=True):  # type: ignore[attr-defined]
        assert np.array_equal(a, b, equal_nan=True)
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
def test_strictly_causal(name: str) -> None:
    s = stream_for(name)
    whole = run(fresh(name, s), s.times, s.values)
    assert whole[0]
    rng = np.random.default_rng(17)
    cuts = sorted(set(rng.integers(1, len(s.times), size=40).tolist()))
    assert run(fresh(name, s), s.times, s.values, cuts=cuts) == whole
    # A prefix of the stream gives exactly the prefix of the findings.
    stop = s.onset + s.max_delay // 2 + 1
    prefix = run(fresh(name, s), s.times[:stop], s.values[:stop])
    end = s.times[stop - 1]
    assert prefix[0] == [f for f in whole[0] if f.time <= end]
    assert prefix[1] == [r for r in whole[1] if r.time <= end]


@pytest.mark.parametrize("name", NAMES)
def test_nan_rows_and_nan_columns(name: str) -> None:
    rng = np.random.default_rng(5)
    n, rows = 8, 1500
    values = rng.normal(size=(rows, n))
    values[rng.choice(rows, size=60, replace=False)] = np.nan  # isolated empty rows
    values[:, 3] = np.nan  # a signal that never reports
    table = make_table(n, limit_lo=-6.0, limit_hi=6.0)
    bank = DetectorBank(table, detectors=[name])
    findings, recoveries = run(bank, np.arange(float(rows)), values, cuts=[400, 401, 900])
    assert findings == []
    assert recoveries == []
    mean, std = bank.baseline()
    assert np.isfinite(mean[[0, 1, 2, 4, 5, 6, 7]]).all()
    assert np.isfinite(std).all()
    assert not bank.warm()[3]


@pytest.mark.parametrize("name", NAMES)
def test_no_findings_during_warm_up(name: str) -> None:
    warmup = 100
    s = stream_for(name, onset=40, rows=warmup)  # the anomaly lies inside the warm-up
    findings, recoveries = run(fresh(name, s, warmup=warmup), s.times, s.values)
    assert findings == []
    assert recoveries == []


@pytest.mark.parametrize("name", NAMES)
def test_detects_its_kind(name: str) -> None:
    s = stream_for(name)
    findings, _ = run(fresh(name, s), s.times, s.values)
    hit_rows: dict[int, float] = {}
    for f in findings:
        assert f.kind is s.kind
        assert f.detector == name
        assert f.score >= 1.0
        col = s.table.index[f.signal]
        hit_rows.setdefault(col, f.time)
    for col in np.flatnonzero(s.labels).tolist():
        assert col in hit_rows, f"{s.table.ids[col]} not detected"
        last = min(s.onset + s.max_delay, len(s.times) - 1)
        assert s.times[s.onset] <= hit_rows[col] <= s.times[last]
    # The clean signals of the same stream stay (almost: the false-alarm rate is not 0) quiet.
    assert sum(1 for col in hit_rows if not s.labels[col]) <= 1


@pytest.mark.parametrize("name", NAMES)
def test_few_false_alarms_on_gaussian_noise(name: str) -> None:
    rng = np.random.default_rng(11)
    n, rows = 200, 3000
    values = 10.0 + rng.normal(size=(rows, n))
    table = make_table(n, limit_lo=0.0, limit_hi=20.0)  # 10σ away: never crossed
    findings, _ = run(DetectorBank(table, detectors=[name]), np.arange(float(rows)), values)
    samples = n * (rows - DetectConfig().warmup)
    assert len(findings) < samples / 1e4


@pytest.mark.parametrize("name", NAMES)
def test_state_is_at_most_a_kilobyte_per_signal(name: str) -> None:
    n = 1000
    bank = DetectorBank(make_table(n), detectors=[name])
    assert bank.state_nbytes() / n <= 1024
    for det in bank._shards[0].detectors:
        assert det.nbytes() / n <= 1024


def test_whole_bank_state_is_at_most_a_kilobyte_per_signal() -> None:
    n = 1000
    bank = DetectorBank(make_table(n))
    rng = np.random.default_rng(0)
    bank.process(Frame(np.arange(200.0), rng.normal(size=(200, n))))
    assert bank.state_nbytes() / n <= 1024
