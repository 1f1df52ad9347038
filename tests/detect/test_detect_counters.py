"""Counters are watched as rates per second: resets, wraps, gaps and irregular sampling."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest

from safety_nexus.core.errors import DetectError
from safety_nexus.core.types import Finding, FindingKind, Frame, SignalTable
from safety_nexus.detect import DetectorBank
from safety_nexus.detect.counters import CounterRates
from safety_nexus.detect.testing import make_table
from safety_nexus.site.load import load
from safety_nexus.site.schema import SignalKind
from safety_nexus.site.table import signal_table


def _reference(times: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Prometheus's rule sample by sample: increase (the new value after a decrease) over the
    real time since the counter's previous sample; no rate for its first sample."""
    out = np.full(raw.shape, np.nan)
    for j in range(raw.shape[1]):
        prev_v, prev_t = None, None
        for i, t in enumerate(times):
            v = raw[i, j]
            if np.isnan(v):
                continue
            if prev_v is not None and prev_t is not None:
                inc = v - prev_v if v >= prev_v else v
                out[i, j] = inc / (t - prev_t)
            prev_v, prev_t = v, t
    return out


def _counters(seed: int, rows: int = 400, m: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.uniform(0.6, 1.4, size=rows))  # period 1 s ± 40 %
    inc = rng.poisson(50.0, size=(rows, m)).astype(np.float64)
    raw = np.cumsum(inc, axis=0) + rng.integers(0, 10_000, size=m)
    for j in range(m):  # resets to a small value, a few per counter
        for at in sorted(set(rng.integers(1, rows, size=3).tolist())):
            raw[at:, j] -= raw[at - 1, j] - rng.integers(0, 20)
    raw[rng.random(raw.shape) < 0.15] = np.nan  # random drops
    raw[100:160, 1] = np.nan  # a gap
    return times, raw


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rates_follow_the_definition_across_frames(seed: int) -> None:
    times, raw = _counters(seed)
    gauge = np.random.default_rng(seed).normal(size=(times.shape[0], 1))
    values = np.concatenate([gauge, raw], axis=1)
    rates = CounterRates(np.arange(1, 6))
    cuts = [0, 1, 37, 38, 200, 333, times.shape[0]]
    got = np.concatenate(
        [rates.apply(times[a:b], values[a:b]) for a, b in itertools.pairwise(cuts)]
    )
    assert np.array_equal(got[:, 1:], _reference(times, raw), equal_nan=True)
    assert np.array_equal(got[:, :1], gauge)  # gauges untouched
    assert not (got[:, 1:] < 0).any()


def test_input_is_not_modified_and_no_counters_is_a_no_op() -> None:
    times, raw = _counters(3, rows=50, m=2)
    kept = raw.copy()
    CounterRates(np.arange(2)).apply(times, raw)
    assert np.array_equal(raw, kept, equal_nan=True)
    assert CounterRates(np.empty(0, dtype=np.intp)).apply(times, raw) is raw


def test_a_wrap_is_a_reset_never_a_negative_rate() -> None:
    top = 2.0**32
    times = np.arange(6.0)
    raw = np.array([[top - 300.0], [top - 200.0], [top - 100.0], [0.0 + 50.0], [150.0], [250.0]])
    rate = CounterRates(np.array([0])).apply(times, raw)[:, 0]
    # the 100 counted up to the wrap are lost for one sample, as Prometheus loses them
    assert rate[1:].tolist() == [100.0, 100.0, 50.0, 100.0, 100.0]


def test_a_rate_over_a_gap_uses_the_real_time() -> None:
    times = np.array([0.0, 1.0, 601.0, 602.0])
    raw = np.array([[0.0], [10.0], [6010.0], [6020.0]])
    assert CounterRates(np.array([0])).apply(times, raw)[1:, 0].tolist() == [10.0, 10.0, 10.0]


def _traffic(
    seed: int, rows: int = 8000, step_at: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Two counters at ~100/s with Poisson noise, sampled at 1 s ± 40 % with drops and a reboot
    (reset to 0) of each; one gauge. Optionally the first counter's rate doubles at `step_at`."""
    rng = np.random.default_rng(seed)
    dt = rng.uniform(0.6, 1.4, size=rows)
    times = 1000.0 + np.cumsum(dt)
    lam = np.full((rows, 2), 100.0)
    if step_at is not None:
        lam[step_at:, 0] = 200.0
    inc = rng.poisson(lam * dt[:, None]).astype(np.float64)
    raw = np.cumsum(inc, axis=0) + 5e6
    for j, at in enumerate((3000, 5000)):
        raw[at:, j] -= raw[at - 1, j]  # reboot: restarts from 0
    raw[rng.random(raw.shape) < 0.05] = np.nan
    gauge = 20.0 + rng.normal(size=(rows, 1))
    return times, np.concatenate([raw, gauge], axis=1)


def _table(n: int = 3) -> SignalTable:
    return dataclasses.replace(
        make_table(n, unit=["pkt", "pkt", "degC"]),
        counter=np.array([True, True, False]),
    )


def test_counters_with_resets_and_irregular_sampling_are_quiet() -> None:
    times, values = _traffic(seed=4)
    bank = DetectorBank(_table(), detectors=["cusum", "variance", "spike", "rate", "flatline"])
    findings = bank.process(Frame(times, values)).findings
    assert findings == []
    mean, _ = bank.baseline()
    assert mean[:2] == pytest.approx([100.0, 100.0], rel=0.05)  # the baseline is a rate


def test_a_change_of_rate_is_found_in_unit_per_second() -> None:
    times, values = _traffic(seed=5, step_at=6000)
    bank = DetectorBank(_table(), detectors=["cusum"])
    findings: list[Finding] = bank.process(Frame(times, values)).findings
    assert [(f.signal, f.kind) for f in findings] == [("a0.s0", FindingKind.LEVEL_SHIFT)]
    f = findings[0]
    assert times[6000] <= f.time <= times[6030]
    assert f.unit == "pkt/s"
    assert f.observed - f.baseline == pytest.approx(100.0, rel=0.3)


def test_counter_state_survives_a_restart(tmp_path: Path) -> None:
    times, values = _traffic(seed=6, step_at=4500)
    table = _table()
    whole = DetectorBank(table)
    expected = whole.process(Frame(times, values)).findings
    assert any(f.signal == "a0.s0" for f in expected)
    bank = DetectorBank(table)
    got = bank.process(Frame(times[:4400], values[:4400])).findings
    bank.save_state(tmp_path / "s.npz")
    again = DetectorBank(table)
    again.load_state(tmp_path / "s.npz")
    got += again.process(Frame(times[4400:], values[4400:])).findings
    assert got == expected
    # a state saved for gauges does not restore into the same signals declared as counters
    gauges = DetectorBank(make_table(3, unit=["pkt", "pkt", "degC"]))
    with pytest.raises(DetectError, match=r"signal kinds \(gauge/counter\) differ"):
        gauges.load_state(tmp_path / "s.npz")


SITE = """
version: 1
site: {name: Counters}
subsystems: [{id: net, name: Network}]
assets:
  - id: core-1
    subsystem: net
    type: compute-node
    signals:
      - {name: packets_total, unit: pkt, normal: [0, 1000], kind: counter}
      - {name: temperature, unit: degC, normal: [10, 40]}
"""


def test_site_kind_reaches_the_table() -> None:
    site = load(SITE)
    signals = site.assets[0].signals
    assert [s.kind for s in signals] == [SignalKind.COUNTER, SignalKind.GAUGE]
    table = signal_table(site)
    assert table.counter.tolist() == [True, False]
    assert make_table(2).counter.tolist() == [False, False]  # default: gauges
