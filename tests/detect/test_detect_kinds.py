"""What each detector family must catch, and what it must leave alone."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from safety_nexus.core.types import Finding, FindingKind, Frame
from safety_nexus.detect import BankResult, DetectConfig, DetectorBank
from safety_nexus.detect.testing import make_table


def process(
    values: np.ndarray,
    detectors: list[str],
    *,
    table_kw: Mapping[str, object] | None = None,
    times: np.ndarray | None = None,
    **cfg: float,
) -> tuple[DetectorBank, BankResult]:
    n = values.shape[1]
    table = make_table(n, **(table_kw or {}))  # type: ignore[arg-type]
    bank = DetectorBank(table, DetectConfig(**cfg), detectors=detectors)
    t = np.arange(float(values.shape[0])) if times is None else times
    return bank, bank.process(Frame(t, values))


def first_by_signal(findings: list[Finding]) -> dict[str, Finding]:
    out: dict[str, Finding] = {}
    for f in findings:
        out.setdefault(f.signal, f)
    return out


# -- level shift -------------------------------------------------------------------------------


def test_cusum_catches_a_quarter_sigma_step_with_a_shift_estimate() -> None:
    rng = np.random.default_rng(21)
    n, rows, onset = 40, 3000, 1000
    values = 50.0 + 2.0 * rng.normal(size=(rows, n))  # std 2: the estimate must come in units
    values[onset:] += 0.25 * 2.0
    _, result = process(values, ["cusum"])
    first = first_by_signal([f for f in result.findings if f.time >= onset])
    assert len(first) >= 0.95 * n
    delays = np.array([f.time - onset for f in first.values()])
    # Optimal CUSUM delay for 0.25σ at this false-alarm rate is about 400 samples.
    assert np.median(delays) < 700
    assert delays.max() < 2000
    shifts = np.array([f.deviation for f in first.values()])
    assert 0.3 < np.median(shifts) < 0.8  # truth 0.5 V
    sigmas = np.array([f.sigma for f in first.values()])
    assert np.allclose(sigmas, 2.0, rtol=0.1)


def test_cusum_catches_a_tenth_sigma_sustained_shift() -> None:
    # On a mature baseline: in its first thousands of samples the baseline is still a running
    # average, which absorbs a shift this small before the CUSUM can accumulate it.
    rng = np.random.default_rng(22)
    n, rows, onset = 30, 14000, 8000
    values = rng.normal(size=(rows, n))
    values[onset:] += 0.1
    _, result = process(values, ["cusum"])
    first = first_by_signal([f for f in result.findings if f.time >= onset])
    assert len(first) >= 0.8 * n


def test_cusum_reports_large_steps_quickly_and_in_size() -> None:
    rng = np.random.default_rng(23)
    values = rng.normal(size=(600, 4))
    values[400:, 0] += 2.0
    values[400:, 1] -= 10.0
    _, result = process(values, ["cusum"])
    first = first_by_signal(result.findings)
    assert set(first) == {"a0.s0", "a1.s1"}
    assert first["a0.s0"].time - 400 <= 15
    assert first["a1.s1"].time - 400 <= 3
    assert first["a1.s1"].sigmas == pytest.approx(-10.0, abs=2.5)


def test_level_shift_stays_active_then_recovers_when_the_level_returns() -> None:
    rng = np.random.default_rng(24)
    values = rng.normal(size=(3000, 3))
    values[1000:2000, 0] += 1.5
    bank, result = process(values[:1500], ["cusum"])
    assert [f.signal for f in result.findings] == ["a0.s0"]
    assert bank.active(FindingKind.LEVEL_SHIFT).tolist() == [True, False, False]
    rest = bank.process(Frame(np.arange(1500.0, 3000.0), values[1500:]))
    assert rest.findings == []
    assert [(r.signal, r.kind) for r in rest.recoveries] == [("a0.s0", FindingKind.LEVEL_SHIFT)]
    assert 2000 <= rest.recoveries[0].time < 2300
    assert not bank.active(FindingKind.LEVEL_SHIFT).any()
    mean, _ = bank.baseline()
    assert abs(mean[0]) < 0.2  # back on the reference level


def test_a_shift_does_not_chatter_or_leak_into_other_kinds() -> None:
    rng = np.random.default_rng(25)
    n = 50
    values = rng.normal(size=(4000, n))
    values[1000:, :] += np.linspace(0.5, 5.0, n)  # permanent steps of every size
    _, result = process(values, ["cusum", "variance", "spike"])
    onsets = [f for f in result.findings if f.kind is FindingKind.LEVEL_SHIFT and f.time >= 1000]
    assert len({f.signal for f in onsets}) == n
    assert len(onsets) <= n + 3  # one each, give or take a rare second one
    assert result.recoveries == [] or len(result.recoveries) <= 3
    others = [f for f in result.findings if f.kind is not FindingKind.LEVEL_SHIFT]
    assert len(others) <= 3


# -- variance --------------------------------------------------------------------------------


def test_variance_catches_a_doubling_and_a_halving_of_the_std() -> None:
    rng = np.random.default_rng(31)
    n, onset = 30, 1500
    values = 5.0 + rng.normal(size=(3000, n))
    values[onset:, :10] = 5.0 + (values[onset:, :10] - 5.0) * 2.0
    values[onset:, 10:20] = 5.0 + (values[onset:, 10:20] - 5.0) * 0.5
    bank, result = process(values, ["variance"])
    first = first_by_signal([f for f in result.findings if f.time >= onset])
    up = [first[f"a{i}.s{i}"] for i in range(10)]
    down = [first[f"a{i}.s{i}"] for i in range(10, 20)]
    assert not any(f"a{i}.s{i}" in first for i in range(20, 30))
    assert max(f.time for f in up) - onset < 100
    assert max(f.time for f in down) - onset < 200
    assert np.median([f.observed / f.baseline for f in up]) == pytest.approx(2.0, rel=0.3)
    assert np.median([f.observed / f.baseline for f in down]) == pytest.approx(0.5, rel=0.3)
    active = bank.active(FindingKind.VARIANCE)
    assert active[:20].all()
    assert not active[20:].any()


def test_variance_ignores_a_single_spike_and_a_level_step() -> None:
    rng = np.random.default_rng(32)
    values = rng.normal(size=(1500, 3))
    values[800, 0] += 12.0
    values[800:, 1] += 3.0
    _, result = process(values, ["variance", "cusum"])
    assert [f.kind for f in result.findings] == [FindingKind.LEVEL_SHIFT]


# -- spike -----------------------------------------------------------------------------------


def test_spike_catches_an_isolated_8_sigma_sample_and_not_a_step() -> None:
    rng = np.random.default_rng(41)
    values = rng.normal(size=(1000, 3))
    values[600, 0] += 8.0
    values[600:, 1] += 8.0
    values[600:605, 2] += 8.0  # a burst, not a spike
    _, result = process(values, ["spike"])
    assert [(f.signal, f.time) for f in result.findings] == [("a0.s0", 601.0)]
    f = result.findings[0]
    assert f.observed == values[600, 0]
    assert f.sigmas == pytest.approx(8.0, abs=1.5)
    assert f.score >= 1.0
    assert [(r.signal, r.time) for r in result.recoveries] == [("a0.s0", 612.0)]


def test_spike_decision_waits_for_the_next_sample_of_that_signal() -> None:
    rng = np.random.default_rng(42)
    values = rng.normal(size=(400, 2))
    values[300, 0] += 9.0
    values[301:305, 0] = np.nan  # the confirming sample comes four rows later
    _, result = process(values, ["spike"])
    assert [(f.signal, f.time) for f in result.findings] == [("a0.s0", 305.0)]


# -- stale and flatline --------------------------------------------------------------------------


def test_stale_fires_after_factor_times_period_and_recovers() -> None:
    rng = np.random.default_rng(51)
    rows = 1000
    values = rng.normal(size=(rows, 2))
    values[1::2, 1] = np.nan  # signal 1 has a 2 s period
    values[500:600, :] = np.nan
    values[600:640, 1] = np.nan
    table_kw = {"period": [1.0, 2.0]}
    bank, result = process(values, ["stale"], table_kw=table_kw, stale_factor=3.0)
    got = [(f.signal, f.time) for f in result.findings]
    # Last samples at 499 (period 1) and 498 (period 2): stale once older than 3 s and 6 s.
    assert got == [("a0.s0", 503.0), ("a1.s1", 505.0)]
    assert result.findings[0].observed == 4.0
    assert result.findings[0].unit == "s"
    assert [(r.signal, r.time) for r in result.recoveries] == [("a0.s0", 600.0), ("a1.s1", 640.0)]
    assert not bank.active(FindingKind.STALE).any()


def test_tick_notices_staleness_without_frames() -> None:
    rng = np.random.default_rng(52)
    bank = DetectorBank(make_table(2), detectors=["stale"])
    bank.process(Frame(np.arange(200.0), rng.normal(size=(200, 2))))
    assert bank.tick(201.0).findings == []
    stale = bank.tick(203.5).findings
    assert [f.signal for f in stale] == ["a0.s0", "a1.s1"]


def test_flatline_fires_on_a_frozen_noisy_signal_only() -> None:
    rng = np.random.default_rng(61)
    rows = 1500
    values = rng.normal(size=(rows, 4))
    values[900:1000, 0] = values[900, 0]  # frozen sensor
    values[:, 1] = 3.0  # a set point: never moves, never "flatlines"
    values[:, 2] = np.round(values[:, 2] * 0.6)  # quantised: repeats itself ~ 40% of the time
    values[1000:1005, 3] = values[1000, 3]  # 5 equal samples: below the count
    _, result = process(values, ["flatline"])
    assert [(f.signal, f.time) for f in result.findings] == [("a0.s0", 909.0)]
    assert result.findings[0].observed == values[900, 0]
    assert [(r.signal, r.time) for r in result.recoveries] == [("a0.s0", 1000.0)]


def test_flatline_run_survives_missing_samples() -> None:
    rng = np.random.default_rng(62)
    values = rng.normal(size=(600, 1))
    values[400:430, 0] = values[400, 0]
    values[402:420:2, 0] = np.nan
    _, result = process(values, ["flatline"])
    assert len(result.findings) == 1
    assert 409 <= result.findings[0].time <= 420


# -- rate --------------------------------------------------------------------------------------


def test_rate_fires_on_a_fast_ramp_and_not_on_a_slow_drift() -> None:
    rng = np.random.default_rng(71)
    rows, onset = 2000, 1500
    values = rng.normal(size=(rows, 3))
    values[onset:, 0] += 1.0 * np.arange(rows - onset)  # 1σ per sample
    values[:, 1] += 0.0005 * np.arange(rows)  # slow drift
    values[onset : onset + 3, 2] += 6.0  # a short burst is not a ramp
    bank, result = process(values, ["rate"], table_kw={"period": 0.5})
    assert [f.signal for f in result.findings] == ["a0.s0"]
    f = result.findings[0]
    assert onset < f.time < onset + 20
    assert f.unit == "V/s"
    assert f.observed > 0.5  # a slope of 1 V per 0.5 s sample is 2 V/s
    assert bank.active(FindingKind.RATE).tolist() == [True, False, False]


def test_rate_recovers_when_the_ramp_stops() -> None:
    rng = np.random.default_rng(72)
    values = rng.normal(size=(1500, 1))
    values[1000:1050, 0] += 2.0 * np.arange(50)
    values[1050:, 0] += 100.0
    _, result = process(values, ["rate"])
    assert len(result.findings) == 1
    assert len(result.recoveries) == 1
    assert 1050 < result.recoveries[0].time < 1100


# -- limit -----------------------------------------------------------------------------------


def test_limit_fires_outside_the_limits_and_clears_with_hysteresis() -> None:
    rng = np.random.default_rng(81)
    values = 50.0 + rng.normal(size=(800, 3))
    values[400:410, 0] = 61.0
    values[410:420, 0] = 59.9  # back inside, but not by the hysteresis margin
    values[500, 1] = 38.0
    table_kw = {"limit_lo": [40.0, 40.0, -np.inf], "limit_hi": [60.0, 60.0, np.inf]}
    _, result = process(values, ["limit"], table_kw=table_kw)
    assert [(f.signal, f.time, f.baseline) for f in result.findings] == [
        ("a0.s0", 400.0, 60.0),
        ("a1.s1", 500.0, 40.0),
    ]
    assert result.findings[0].score == pytest.approx(1.0 + 1.0 / result.findings[0].sigma)
    assert [(r.signal, r.time) for r in result.recoveries] == [("a0.s0", 420.0), ("a1.s1", 501.0)]


# -- explanations ------------------------------------------------------------------------------


def test_findings_explain_themselves_in_units_and_sigmas() -> None:
    rng = np.random.default_rng(91)
    values = 20.0 + 0.5 * rng.normal(size=(1000, 1))
    values[600:, 0] += 1.0  # +2σ
    _, result = process(values, ["cusum"], table_kw={"unit": "°C"})
    f = result.findings[0]
    assert f.baseline == pytest.approx(20.0, abs=0.1)
    assert f.observed == pytest.approx(21.0, abs=0.35)
    assert f.sigma == pytest.approx(0.5, rel=0.15)
    assert f.sigmas == pytest.approx(2.0, abs=0.7)
    text = f.explain()
    assert text.startswith("a0.s0: level shift, observed 2")
    assert "°C vs baseline 20" in text
    assert "σ)" in text
