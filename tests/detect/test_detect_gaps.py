"""Real telemetry habits: gaps, irregular sampling, random drops, mixed periods.

The bank must stay quiet on them (they are not anomalies of the process), say "stale" on a real
outage and clear it on resume, and still find what changes across a gap. "Quiet" is judged
against a control run on the same values sampled cleanly: the habits must add no finding (the
wandering test signals give the variance detector the odd false alarm of its own, which is not
what these tests are about).
"""

from __future__ import annotations

import numpy as np
import pytest

from safety_nexus.core.types import Finding, FindingKind, Frame
from safety_nexus.detect import DetectorBank
from safety_nexus.detect.testing import make_table

STALE = FindingKind.STALE


def _wander(rng: np.random.Generator, rows: int, tau: float = 200.0) -> np.ndarray:
    """An AR(1) level of std 1 with time constant `tau` samples."""
    phi = np.exp(-1.0 / tau)
    eps = rng.normal(size=rows) * np.sqrt(1.0 - phi * phi)
    out = np.empty(rows)
    out[0] = eps[0] / np.sqrt(1.0 - phi * phi)
    for i in range(1, rows):
        out[i] = phi * out[i - 1] + eps[i]
    return out


def _added(findings: list[Finding], control: list[Finding]) -> list[tuple[str, str]]:
    """(signal, kind) of the non-stale findings that the control run did not have."""
    seen = {(f.signal, f.kind.value) for f in control}
    return sorted({(f.signal, f.kind.value) for f in findings if f.kind is not STALE} - seen)


def _signals(seed: int, rows: int) -> np.ndarray:
    """Three white signals and three that wander by themselves (level std 3, noise 0.5)."""
    rng = np.random.default_rng(seed)
    white = 10.0 + rng.normal(size=(rows, 3))
    wander = np.stack([20.0 + 3.0 * _wander(rng, rows) for _ in range(3)], axis=1)
    return np.concatenate([white, wander + 0.5 * rng.normal(size=(rows, 3))], axis=1)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_gaps_resuming_at_the_same_level_raise_only_stale(seed: int) -> None:
    rows = 12_000
    values = _signals(seed, rows)
    gaps = {0: (3000, 3600), 1: (3000, 10_200), 4: (4000, 4600), 5: (3000, 10_200)}
    for col, (a, b) in gaps.items():
        values[a:b, col] = np.nan  # 10 minutes, 2 hours
    times = np.arange(float(rows))
    control = DetectorBank(make_table(6)).process(Frame(times, _signals(seed, rows))).findings
    result = DetectorBank(make_table(6)).process(Frame(times, values))
    assert _added(result.findings, control) == []
    got = sorted((f.signal, f.time) for f in result.findings if f.kind is STALE)
    assert got == sorted((f"a{c}.s{c}", a + 3.0) for c, (a, _) in gaps.items())  # 3 periods
    back = sorted((r.signal, r.time) for r in result.recoveries if r.kind is STALE)
    assert back == sorted((f"a{c}.s{c}", float(b)) for c, (_, b) in gaps.items())


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "drop"), [(0, 0.0), (1, 0.05), (2, 0.1), (3, 0.2)])
def test_jitter_and_random_drops_are_quiet(seed: int, drop: float) -> None:
    rows = 8000
    rng = np.random.default_rng(100 + seed)
    times = np.cumsum(rng.uniform(0.6, 1.4, size=rows))  # period 1 s ± 40 %
    clean = _signals(seed, rows)
    values = clean.copy()
    values[rng.random(values.shape) < drop] = np.nan
    findings = DetectorBank(make_table(6)).process(Frame(times, values)).findings
    # Jitter changes nothing but time: the same samples at regular times give the same.
    regular = DetectorBank(make_table(6)).process(Frame(np.arange(float(rows)), values))
    assert _added(findings, regular.findings) == []
    # Drops are not outages, and on white signals they add nothing at all (on a wandering
    # one, which samples are missing can tip a borderline statistic either way).
    assert [f.signal for f in findings if f.kind is STALE] == []
    control = DetectorBank(make_table(6)).process(Frame(np.arange(float(rows)), clean))
    white = {"a0.s0", "a1.s1", "a2.s2"}
    assert [a for a in _added(findings, control.findings) if a[0] in white] == []


def _mixed(seed: int, seconds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signals with periods 1, 5, 30 and 60 s, each on its own jittered clock, in one frame
    whose rows are the union of their sample times."""
    rng = np.random.default_rng(seed)
    periods = np.array([1.0, 5.0, 5.0, 10.0, 30.0, 60.0])
    stamps = []
    for p in periods:
        k = int(seconds / p)
        stamps.append(np.round(p * np.arange(1, k + 1) + rng.uniform(-0.3, 0.3, size=k) * p, 3))
    times = np.unique(np.concatenate(stamps))
    values = np.full((times.shape[0], periods.shape[0]), np.nan)
    for j, st in enumerate(stamps):
        rows = np.searchsorted(times, st)
        values[rows, j] = 5.0 + rng.normal(size=st.shape[0])
    return periods, times, values


@pytest.mark.slow
def test_mixed_periods_are_quiet_and_a_slow_signal_going_silent_is_stale() -> None:
    periods, times, values = _mixed(seed=7, seconds=3 * 3600)
    table = make_table(6, period=periods.tolist())
    quiet = DetectorBank(table).process(Frame(times, values))
    assert quiet.findings == []
    # the 60 s signal (warm after its 100th sample, 100 minutes in) stops for 40 minutes at 2 h
    start = 2.0 * 3600
    out = (times > start) & (times < start + 2400)
    values[out, 5] = np.nan
    result = DetectorBank(table).process(Frame(times, values))
    assert [(f.signal, f.kind) for f in result.findings] == [("a5.s5", STALE)]
    last = times[(times <= start) & np.isfinite(values[:, 5])][-1]
    assert last + 180.0 < result.findings[0].time <= last + 180.0 + 5.0  # 3 periods, next row
    resumed = times[(times >= start + 2400) & np.isfinite(values[:, 5])][0]
    assert [(r.signal, r.time) for r in result.recoveries] == [("a5.s5", resumed)]


@pytest.mark.parametrize("gap", [600, 7200])
def test_a_step_across_a_gap_is_still_found(gap: int) -> None:
    a = 4000
    rows = a + gap + 1000
    values = _signals(4, rows)
    values[a : a + gap, [0, 3]] = np.nan
    values[a + gap :, 0] += 3.0  # 3 sigma on a white signal
    # On a wandering signal (level std 3, time constant 200 samples) the level across a gap
    # of many time constants differs by N(0, 3·√2) anyway: a step must be well beyond that.
    values[a + gap :, 3] += 25.0
    result = DetectorBank(make_table(6)).process(Frame(np.arange(float(rows)), values))
    shifts = {f.signal: f for f in result.findings if f.kind is FindingKind.LEVEL_SHIFT}
    assert set(shifts) == {"a0.s0", "a3.s3"}
    for f in shifts.values():
        assert a + gap <= f.time <= a + gap + 30
    assert {f.signal for f in result.findings if f.kind is STALE} == {"a0.s0", "a3.s3"}


def test_an_outage_on_a_lossy_link_is_still_stale_and_clears() -> None:
    rows = 12_000
    rng = np.random.default_rng(9)
    times = np.cumsum(rng.uniform(0.6, 1.4, size=rows))
    values = _signals(9, rows)
    values[rng.random(values.shape) < 0.1] = np.nan  # 10 % of samples never arrive
    values[7000:7600, 2] = np.nan  # and one sensor is down for ten minutes
    result = DetectorBank(make_table(6)).process(Frame(times, values))
    stale = [f for f in result.findings if f.kind is STALE]
    assert [f.signal for f in stale] == ["a2.s2"]
    last = times[:7000][np.isfinite(values[:7000, 2])][-1]
    # at 10 % drops, six more missing samples are needed to be as sure as three on a clean link
    assert last + 3.0 < stale[0].time < last + 12.0
    resumed = times[7600:][np.isfinite(values[7600:, 2])][0]
    assert [(r.signal, r.time) for r in result.recoveries if r.kind is STALE] == [
        ("a2.s2", resumed)
    ]


@pytest.mark.parametrize("drop", [0.0, 0.3])
def test_a_ramp_is_reported_per_second_of_real_time(drop: float) -> None:
    """The rate detector's slope is per second of real time, whatever the sampling."""
    rows = 4000
    rng = np.random.default_rng(12)
    times = np.cumsum(rng.uniform(0.6, 1.4, size=rows))
    values = 10.0 + 0.1 * rng.normal(size=(rows, 2))
    start = 2000
    values[start:, 1] += 0.2 * (times[start:] - times[start])  # 0.2 units per second
    values[rng.random(values.shape) < drop] = np.nan
    bank = DetectorBank(make_table(2), detectors=["rate"])
    (det,) = bank._shards[0].detectors
    findings: list[Finding] = []
    slopes = []
    for lo in range(0, rows, 10):
        findings += bank.process(Frame(times[lo : lo + 10], values[lo : lo + 10])).findings
        if lo >= start + 1000:
            slopes.append(float(det._slope[1]))  # type: ignore[attr-defined]
    (f,) = findings
    assert f.signal == "a1.s1"
    assert f.unit == "V/s"
    assert times[start] < f.time < times[start] + 60.0
    # Long after the onset the slope (an EWMA of differences per period of real time) has
    # settled on the ramp's rate; per sample it would read 1/(1 − drop) times too high.
    assert np.mean(slopes) == pytest.approx(0.2, rel=0.1)
