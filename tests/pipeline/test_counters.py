"""A counter through the whole pipeline: stored as counted, judged as a rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from safety_nexus.core.types import FindingKind, Frame
from safety_nexus.detect import DetectorBank
from safety_nexus.pipeline.builder import RuntimeSettings, build_runtime
from safety_nexus.pipeline.stages import Batch, Detect
from safety_nexus.site.load import load
from safety_nexus.site.table import signal_table

SITE = """
version: 1
site: {name: Counters}
subsystems: [{id: net, name: Network}]
assets:
  - id: core-1
    subsystem: net
    type: compute-node
    signals:
      - {name: packets_total, unit: pkt, normal: [50, 150], kind: counter}
      - {name: temperature, unit: degC, normal: [10, 40]}
"""


def test_counters_are_stored_raw_and_judged_as_rates(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(SITE, encoding="utf-8")
    runtime = build_runtime(RuntimeSettings(site=site, data_dir=tmp_path / "d", source="http"))
    rows, step = 3000, 2000
    rng = np.random.default_rng(8)
    times = 1000.0 + np.arange(float(rows))
    rate = np.where(np.arange(rows) < step, 100.0, 200.0)
    counted = np.cumsum(rng.poisson(rate)).astype(np.float64)
    counted[1500:] -= counted[1499]  # the router restarts: the counter starts again from 0
    values = np.stack([counted, 25.0 + rng.normal(size=rows)], axis=1)
    findings = []
    try:
        for lo in range(0, rows, 100):
            frame = Frame(times[lo : lo + 100], values[lo : lo + 100])
            findings += runtime.process_frame("gateway", frame).findings
        t, v = runtime.history.read(
            "core-1.packets_total", times[0], times[-1] + 1, max_points=rows
        )
        assert np.array_equal(t, times)
        assert np.array_equal(v, counted.astype(np.float32))  # what the device counted
    finally:
        runtime.stop()
    # nothing on the restart; at the step, the level of the rate shifts (and, as any step,
    # it is also a fast change of rate: pkt/s per second)
    assert {(g.signal, g.kind, g.unit) for g in findings} <= {
        ("core-1.packets_total", FindingKind.LEVEL_SHIFT, "pkt/s"),
        ("core-1.packets_total", FindingKind.RATE, "pkt/s/s"),
    }
    assert all(times[step] <= g.time <= times[step] + 20 for g in findings)
    (f,) = [g for g in findings if g.kind is FindingKind.LEVEL_SHIFT]
    assert times[step] <= f.time <= times[step] + 20
    assert 80.0 < f.baseline < 120.0
    assert 170.0 < f.observed < 230.0


def test_a_lagging_sources_counter_is_rated_on_its_own_times(tmp_path: Path) -> None:
    """Rows behind the bank are moved forward by microseconds to keep it in order; the
    counter's rate must still use the samples' real times (1 count/s, not a million)."""
    table = signal_table(load(SITE))
    lagging = DetectorBank(table)
    on_time = DetectorBank(table)
    detect = Detect(lagging)
    rows = 600
    times = 1000.0 + np.arange(float(rows))
    counted = np.arange(float(rows))  # one count per second
    temps = 25.0 + np.random.default_rng(3).normal(size=rows)
    # Source A (temperature) runs ahead of source B (the counter) by 300 s: B's rows reach the
    # bank behind A's and are moved forward.
    a = np.stack([np.full(rows, np.nan), temps], axis=1)
    b = np.stack([counted, np.full(rows, np.nan)], axis=1)
    detect.run(Batch(source="a", frame=Frame(times + 300.0, a)))
    detect.run(Batch(source="b", frame=Frame(times, b)))
    on_time.process(Frame(times, b))
    (mean_lagging, _), (mean_on_time, _) = lagging.baseline(), on_time.baseline()
    assert mean_on_time[0] == pytest.approx(1.0)
    assert mean_lagging[0] == pytest.approx(mean_on_time[0])
