"""The seasonal, quantisation, time-to-threshold and oscillation families: what each must catch,
what it must report, and what it must leave alone (the generic contract is in
test_detect_contract.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from safety_nexus.core.types import Finding, FindingKind, Frame
from safety_nexus.detect import DetectConfig, DetectorBank
from safety_nexus.detect.oscillation import OscillationDetector
from safety_nexus.detect.quantisation import allowance, toggle_rate
from safety_nexus.detect.testing import make_table


def first_by_signal(findings: list[Finding]) -> dict[str, Finding]:
    out: dict[str, Finding] = {}
    for f in findings:
        out.setdefault(f.signal, f)
    return out


def ar1(rng: np.random.Generator, rows: int, n: int, tau: float) -> np.ndarray:
    """Unit-variance AR(1) noise with time constant `tau` samples (a sensor that wanders)."""
    phi = math.exp(-1.0 / tau)
    e = rng.normal(size=(rows, n)) * math.sqrt(1.0 - phi * phi)
    x = np.empty((rows, n))
    x[0] = rng.normal(size=n)
    for i in range(1, rows):
        x[i] = phi * x[i - 1] + e[i]
    return x


# -- oscillation -------------------------------------------------------------------------------


@pytest.mark.parametrize(("amplitude", "period"), [(5.0, 10), (5.0, 20), (8.0, 40), (4.0, 20)])
def test_oscillation_is_flagged_within_three_periods_with_its_period_and_amplitude(
    amplitude: float, period: int
) -> None:
    rng = np.random.default_rng(31)
    n, onset = 40, 1000
    rows = onset + 8 * period
    values = 7.0 + rng.normal(size=(rows, n))  # noise sigma 1: the amplitude is in sigmas
    phase = rng.uniform(0.0, 2.0 * np.pi, size=n)
    k = np.arange(rows - onset)[:, None]
    values[onset:] += amplitude * np.sin(2.0 * np.pi * k / period + phase)
    bank = DetectorBank(make_table(n), detectors=["oscillation"])
    result = bank.process(Frame(np.arange(float(rows)), values))
    first = first_by_signal(result.findings)
    assert len(first) == n
    for f in first.values():
        assert f.kind is FindingKind.OSCILLATION
        assert onset <= f.time <= onset + 3 * period
        assert f.period == pytest.approx(period, rel=0.15)
        # the amplitude is rough for short periods: a half-wave of a few samples is coarse
        assert f.observed == pytest.approx(amplitude, rel=0.35)
        assert 0.8 <= f.sigma <= 1.5  # the local noise sigma (the swing inflates it slowly)
        assert "period" in f.explain()


def test_oscillation_leaves_white_and_wandering_noise_alone() -> None:
    rng = np.random.default_rng(32)
    n, rows = 100, 5000
    white = rng.normal(size=(rows, n))
    wander = 0.5 * rng.normal(size=(rows, n)) + ar1(rng, rows, n, 20.0)
    for values in (white, wander):
        bank = DetectorBank(make_table(n), detectors=["oscillation"])
        assert bank.process(Frame(np.arange(float(rows)), values)).findings == []


def test_oscillation_clears_when_the_loop_settles() -> None:
    rng = np.random.default_rng(33)
    rows, period = 2000, 20
    values = rng.normal(size=(rows, 1))
    values[1000:1400, 0] += 6.0 * np.sin(2.0 * np.pi * np.arange(400) / period)
    bank = DetectorBank(make_table(1), detectors=["oscillation"])
    result = bank.process(Frame(np.arange(float(rows)), values))
    assert [f.time for f in result.findings] == [pytest.approx(1040.0, abs=20.0)]
    assert len(result.recoveries) == 1
    # "osc_clear" half-periods without a crossing, after the last swing
    assert 1400 <= result.recoveries[0].time <= 1400 + 4 * period
    assert not bank.active(FindingKind.OSCILLATION)[0]


def test_oscillation_gain_is_one_for_fast_swings_and_falls_for_slow_ones() -> None:
    det = OscillationDetector.__new__(OscillationDetector)
    det.config = DetectConfig()
    gain = det.gain(np.array([2.0, 10.0, 400.0]))
    assert gain[0] == pytest.approx(1.0, abs=0.05)
    assert gain[2] < gain[1] <= 1.05


# -- quantisation ------------------------------------------------------------------------------


@pytest.mark.parametrize("resolution", [0.5, 1.0, 2.0])
def test_a_sensor_that_starts_rounding_is_found_and_its_step_reported(resolution: float) -> None:
    rng = np.random.default_rng(41)
    n, rows, onset = 30, 3000, 2000
    values = 50.0 + rng.normal(size=(rows, n))
    values[onset:] = np.round(values[onset:] / resolution) * resolution
    bank = DetectorBank(make_table(n), detectors=["quantisation"])
    first = first_by_signal(bank.process(Frame(np.arange(float(rows)), values)).findings)
    assert len(first) == n
    assert all(onset <= f.time <= onset + 500 for f in first.values())
    steps = np.array([f.observed for f in first.values()]) / resolution
    assert np.allclose(steps, np.round(steps))
    assert (steps >= 1).all()


def test_a_sensor_stuck_toggling_between_two_values_is_found_quickly() -> None:
    rng = np.random.default_rng(42)
    rows, onset = 1500, 1000
    values = 5.0 + rng.normal(size=(rows, 2))
    values[onset:, 1] = np.where(np.arange(rows - onset) % 2 == 0, 5.0, 5.3)
    bank = DetectorBank(make_table(2), detectors=["quantisation"])
    result = bank.process(Frame(np.arange(float(rows)), values))
    assert [(f.signal, f.time <= onset + 20) for f in result.findings] == [("a1.s1", True)]
    assert result.findings[0].observed == pytest.approx(0.3)


def test_a_sensor_quantised_from_the_start_and_a_flatline_are_left_alone() -> None:
    rng = np.random.default_rng(43)
    rows = 4000
    values = 50.0 + rng.normal(size=(rows, 3))
    values[:, 0] = np.round(values[:, 0] / 0.5) * 0.5  # always had this resolution
    values[:, 1] = np.round(values[:, 1] * 10.0) / 10.0
    values[2000:2100, 2] = values[2000, 2]  # a flatline (the flatline detector's business)
    bank = DetectorBank(make_table(3), detectors=["quantisation"])
    assert bank.process(Frame(np.arange(float(rows)), values)).findings == []


def test_toggle_rate_and_allowance_follow_their_definitions() -> None:
    # Σ p_v²(1 − p_v) over the values of N(0, 1) rounded to 1: simulated, the same.
    rng = np.random.default_rng(44)
    x = np.round(rng.normal(size=400_000))
    d = np.diff(x)
    simulated = float(np.mean((d[1:] == -d[:-1]) & (d[1:] != 0)))
    assert toggle_rate(1.0, 1.0) == pytest.approx(simulated, rel=0.03)
    assert toggle_rate(0.0, 1.0) == 0.0
    # Page's allowance lies between the two rates it separates.
    k = float(allowance(0.01, 0.2))
    assert 0.01 < k < 0.2


# -- time to threshold -------------------------------------------------------------------------


def test_a_steady_climb_gets_a_forecast_whose_interval_holds_the_crossing() -> None:
    rng = np.random.default_rng(51)
    n, rows, onset = 30, 4000, 1000
    slope = rng.uniform(0.01, 0.05, size=n)  # σ per second; limit 40σ above the mean
    values = 10.0 + rng.normal(size=(rows, n))
    values[onset:] += np.arange(rows - onset)[:, None] * slope
    crossing = onset + 40.0 / slope
    bank = DetectorBank(make_table(n, limit_hi=50.0), detectors=["time_to_threshold"])
    half = 2000
    result = bank.process(Frame(np.arange(float(half)), values[:half]))
    first = first_by_signal(result.findings)
    for f in first.values():
        assert f.eta is not None
        assert f.eta_low is not None
        assert f.eta_high is not None
        assert f.eta_low <= f.eta <= f.eta_high
        assert f.eta <= DetectConfig().ttt_horizon
        assert "crosses its limit" in f.explain()
        col = int(f.signal.split(".s")[1])
        assert f.time < crossing[col]
    # Once the trend has settled, the forecast brackets the true crossing almost always.
    eta, lo, hi = bank.time_to_threshold()
    now = half - 1.0
    ahead = crossing > now
    inside = (now + lo <= crossing + 5.0) & (crossing - 5.0 <= now + hi)
    assert ahead.sum() >= 5
    assert inside[ahead].mean() >= 0.85
    error = np.abs(now + eta[ahead] - crossing[ahead]) / (crossing[ahead] - now)
    assert np.median(error) < 0.25


def test_no_forecast_without_a_limit_away_from_it_or_on_a_flat_signal() -> None:
    rng = np.random.default_rng(52)
    rows = 3000
    values = 10.0 + rng.normal(size=(rows, 4))
    ramp = 0.02 * np.arange(rows)
    values[:, 0] += ramp  # no limit declared
    values[:, 1] -= ramp  # moving away from its upper limit, no lower one
    table = make_table(4, limit_hi=[np.inf, 50.0, 50.0, 50.0])
    bank = DetectorBank(table, detectors=["time_to_threshold"])
    assert np.isnan(bank.time_to_threshold()[0][1:]).all()  # no trend yet
    result = bank.process(Frame(np.arange(float(rows)), values))
    assert result.findings == []
    eta, lo, hi = bank.time_to_threshold()
    assert eta[0] == lo[0] == hi[0] == np.inf  # no limit
    assert eta[1] == np.inf  # moving away
    # flat signals: no significant slope, or a crossing far beyond the horizon
    assert (eta[2:] > 10 * DetectConfig().ttt_horizon).all()


def test_the_forecast_clears_once_the_limit_is_crossed() -> None:
    rng = np.random.default_rng(53)
    rows = 3000
    values = 10.0 + rng.normal(size=(rows, 1))
    values[1000:, 0] += 0.05 * np.arange(rows - 1000)  # crosses 50 at t = 1800
    bank = DetectorBank(make_table(1, limit_hi=50.0), detectors=["time_to_threshold", "limit"])
    result = bank.process(Frame(np.arange(float(rows)), values))
    ttt = [f for f in result.findings if f.kind is FindingKind.TIME_TO_THRESHOLD]
    lim = [f for f in result.findings if f.kind is FindingKind.LIMIT]
    assert len(ttt) == 1
    assert ttt[0].time < lim[0].time
    cleared = [r for r in result.recoveries if r.kind is FindingKind.TIME_TO_THRESHOLD]
    assert len(cleared) == 1
    assert lim[0].time <= cleared[0].time <= lim[0].time + 60.0
    eta, _, _ = bank.time_to_threshold()
    assert eta[0] == 0.0  # beyond the limit


def test_ttt_config_rejects_a_minimum_the_window_cannot_hold() -> None:
    with pytest.raises(ValueError, match="ttt_min_points"):
        DetectConfig(ttt_every=10.0, ttt_window=10.0)


# -- seasonal ----------------------------------------------------------------------------------

DAY = 86400.0


def daily(times: np.ndarray, amplitude: float, peak_hour: float) -> np.ndarray:
    out: np.ndarray = amplitude * np.cos(2.0 * np.pi * (times / DAY - peak_hour / 24.0))
    return out


def test_a_night_that_looks_like_a_day_is_found_and_normal_days_are_not() -> None:
    rng = np.random.default_rng(61)
    step, n = 120.0, 12
    times = step * np.arange(float(int(8 * DAY / step)))
    base = 100.0 + daily(times, 20.0, 15.0)[:, None]
    values = base + ar1(rng, times.shape[0], n, 10.0) + 0.5 * rng.normal(size=(times.size, n))
    # Night 6, 01:00–05:00: half of the signals run at their afternoon level.
    night = (times >= 6 * DAY + 3600.0) & (times < 6 * DAY + 5 * 3600.0)
    odd = np.arange(n) % 2 == 0
    values[np.ix_(night, odd)] += 30.0  # 80 → 110: inside the daily range 80..120
    assert values[:, odd].max() < 125.0
    bank = DetectorBank(make_table(n, period=step), detectors=["seasonal"])
    result = bank.process(Frame(times, values))
    first = first_by_signal(result.findings)
    found = {int(s.split(".s")[1]) for s in first}
    assert found == set(np.flatnonzero(odd).tolist())
    for f in first.values():
        assert 6 * DAY + 3600.0 <= f.time <= 6 * DAY + 3 * 3600.0
        assert f.observed > f.baseline + 15.0  # level now vs what the hour expects
    # The same values at the same time of day are normal for the plain detectors: no level
    # shift, no limit, no spike stands out (the point of a seasonal baseline).
    plain = DetectorBank(
        make_table(n, period=step, limit_lo=60.0, limit_hi=140.0), detectors=["limit", "spike"]
    )
    assert plain.process(Frame(times, values)).findings == []


def test_seasonal_learns_a_weekday_pattern_and_stays_quiet_on_it() -> None:
    rng = np.random.default_rng(62)
    step, n = 300.0, 6
    times = step * np.arange(float(int(21 * DAY / step)))
    weekday = ((times / DAY + 3.0) % 7.0) < 5.0  # Monday..Friday (the epoch was a Thursday)
    values = 50.0 + daily(times, 10.0, 14.0)[:, None] * np.where(weekday, 1.0, 0.6)[:, None]
    values = values + 0.5 * rng.normal(size=(times.size, n))
    bank = DetectorBank(make_table(n, period=step), detectors=["seasonal"])
    result = bank.process(Frame(times, values))
    late = [f for f in result.findings if f.time > 14 * DAY]
    assert late == []


def test_seasonal_waits_for_its_warm_up_days() -> None:
    rng = np.random.default_rng(63)
    step = 60.0
    times = step * np.arange(float(int(2.5 * DAY / step)))
    values = 10.0 + daily(times, 3.0, 12.0)[:, None] + 0.2 * rng.normal(size=(times.size, 2))
    values[times > 2 * DAY, 0] += 5.0
    bank = DetectorBank(make_table(2, period=step), detectors=["seasonal"])
    assert bank.process(Frame(times, values)).findings == []


def test_finding_explain_mentions_eta_and_period() -> None:
    f = Finding(
        time=0.0,
        signal="a.b",
        asset="a",
        kind=FindingKind.TIME_TO_THRESHOLD,
        score=2.0,
        observed=0.1,
        baseline=0.0,
        sigma=0.01,
        unit="°C/s",
        eta=300.0,
        eta_low=200.0,
        eta_high=float("inf"),
    )
    assert f.explain().endswith("crosses its limit in ~300 s (200–∞ s)")
    g = Finding(0.0, "a.b", "a", FindingKind.OSCILLATION, 1.0, 2.0, 0.0, 0.5, period=20.0)
    assert g.explain().endswith("; period 20 s")
