"""A restart does not open a new warm-up blind period: detector state is saved and restored."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from safety_nexus.core.types import Finding, Frame
from safety_nexus.ingest.json_batch import ParsedBatch
from safety_nexus.ingest.wide import read_frame
from safety_nexus.pipeline.builder import (
    STATE_FILE,
    RuntimeSettings,
    SimulatorSettings,
    build_runtime,
)
from safety_nexus.pipeline.runtime import Runtime
from safety_nexus.pipeline.sources import ReplaySource
from safety_nexus.sim import DEFAULT_START, Simulator
from safety_nexus.site.load import load_file
from safety_nexus.site.table import signal_table

ROWS = 20  # rows per frame
WARM = 900  # seconds before the restart
AFTER = 240  # seconds after it; the fault starts right at the restart


def _frames(site_path: Path) -> tuple[list[Frame], list[Frame]]:
    """Seeded telemetry: WARM seconds of normal operation, then S1 (latency steps up)."""
    sim = Simulator(load_file(site_path), seed=3, start=DEFAULT_START)
    before = [sim.step(ROWS) for _ in range(WARM // ROWS)]
    sim.inject("S1")
    after = [sim.step(ROWS) for _ in range(AFTER // ROWS)]
    return before, after


def _http(data_dir: Path, site: Path, **kw: object) -> Runtime:
    return build_runtime(
        RuntimeSettings.model_validate({"site": site, "data_dir": data_dir, "source": "http", **kw})
    )


def _feed(runtime: Runtime, frames: list[Frame]) -> list[Finding]:
    out: list[Finding] = []
    for frame in frames:
        out += runtime.process_frame("replay", frame).findings
    return out


def _kinds(runtime: Runtime) -> list[str]:
    return [e.kind for e in runtime.store.events(limit=1000)]


@pytest.mark.slow
def test_restart_gives_the_findings_of_an_uninterrupted_run(
    tmp_path: Path, demo_city: Path
) -> None:
    before, after = _frames(demo_city)

    whole = _http(tmp_path / "whole", demo_city)
    try:
        _feed(whole, before)
        expected = _feed(whole, after)
    finally:
        whole.stop()
    assert expected, "the fault after the restart should be found"

    first = _http(tmp_path / "cut", demo_city)
    _feed(first, before)
    first.stop()
    assert (tmp_path / "cut" / STATE_FILE).exists()

    again = _http(tmp_path / "cut", demo_city)
    try:
        assert "detect.state_restored" in _kinds(again)
        got = _feed(again, after)
    finally:
        again.stop()
    assert got == expected  # same times, signals, kinds, scores: no blind period

    # Without the state, the same telemetry after a restart is seen by cold detectors.
    cold = _http(tmp_path / "cold", demo_city, detector_state=False)
    try:
        blind = _feed(cold, after)
    finally:
        cold.stop()
    assert blind != expected
    assert not (tmp_path / "cold" / STATE_FILE).exists()


def _sim(data_dir: Path, site: Path, **kw: object) -> Runtime:
    settings = RuntimeSettings(
        site=site,
        data_dir=data_dir,
        source="simulator",
        simulator=SimulatorSettings(seed=5, scenarios=[]),
        **kw,
    )
    return build_runtime(settings)


def _drive(runtime: Runtime, seconds: int) -> None:
    source = runtime.simulator
    assert source is not None
    for _ in range(seconds // ROWS):
        runtime.process_frame(source.name, source.sim.step(ROWS))


def test_state_is_saved_periodically_on_the_runtime_clock(tmp_path: Path, demo_city: Path) -> None:
    runtime = _sim(tmp_path, demo_city, state_interval=100.0)
    path = tmp_path / STATE_FILE
    try:
        assert "detect.state_fresh" in _kinds(runtime)
        _drive(runtime, 80)
        assert not path.exists()  # 80 simulated seconds: not due yet
        _drive(runtime, 40)
        assert path.exists()
        with np.load(path, allow_pickle=False) as npz:
            header = json.loads(npz["header"].tobytes())
        # saved by the first batch at least 100 s (simulated) after the start
        start = runtime.bank.last_time - 120
        assert header["saved_at"] == header["last_time"]  # the clock follows the frames
        assert 100 <= header["last_time"] - start < 100 + ROWS
    finally:
        runtime.stop()
    # periodic saves are not journalled (one a minute would flood it); the one on stop is
    again = _sim(tmp_path, demo_city)
    try:
        assert _kinds(again).count("detect.state_saved") == 1
        assert "detect.state_restored" in _kinds(again)
        assert again.bank.warm().sum() == runtime.bank.warm().sum() > 0
    finally:
        again.stop()


def test_a_corrupt_state_file_means_a_fresh_start_with_a_warning(
    tmp_path: Path, demo_city: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / STATE_FILE).write_bytes(b"PK\x03\x04 truncated")
    runtime = _sim(tmp_path, demo_city)
    try:
        events = runtime.store.events(kind="detect.state_discarded")
        assert len(events) == 1
        assert "corrupt detector state" in str(events[0].data["reason"])
        assert (tmp_path / "detector-state.rejected.npz").exists()
        assert not runtime.bank.warm().any()
        assert "detectors start fresh" in caplog.text
        _drive(runtime, 40)  # and it runs
    finally:
        runtime.stop()
    assert (tmp_path / STATE_FILE).exists()  # a good state replaces the bad one


def test_a_state_saved_under_another_config_is_not_restored(
    tmp_path: Path, demo_city: Path
) -> None:
    runtime = _sim(tmp_path, demo_city)
    _drive(runtime, 200)
    runtime.stop()
    again = _sim(tmp_path, demo_city, detect={"warmup": 50})
    try:
        (event,) = again.store.events(kind="detect.state_discarded")
        assert "field 'warmup' was 100, is 50" in str(event.data["reason"])
        assert not again.bank.warm().any()
    finally:
        again.stop()


def test_a_restarted_replay_carries_on_after_what_the_detectors_have_seen(
    tmp_path: Path, demo_city: Path
) -> None:
    sig = signal_table(load_file(demo_city)).ids[0]
    path = tmp_path / "rec.csv"
    rows = [f"{1000 + i},{4.0 + 0.01 * (i % 7)}" for i in range(300)]
    path.write_text("\n".join(["timestamp," + sig, *rows]) + "\n", encoding="utf-8")
    settings = RuntimeSettings(
        site=demo_city, data_dir=tmp_path / "d", source="replay", replay=path
    )
    first = build_runtime(settings)
    (source,) = first.live_sources
    assert isinstance(source, ReplaySource)
    whole = read_frame(path, first.table)
    first.process_frame("replay", Frame(whole.times[:120], whole.values[:120]))
    first.stop()
    again = build_runtime(settings)
    try:
        (source,) = again.live_sources
        assert isinstance(source, ReplaySource)
        assert source.start_after == 1119.0
        sent: list[ParsedBatch] = []

        class Collect:
            table = again.table

            def ingest_parsed(
                self, parsed: ParsedBatch, *, wait: bool = False, log: bool = True
            ) -> int:
                sent.append(parsed)
                return len(parsed)

            def phantom(self, source: str, seen: str, detail: str) -> None:
                raise AssertionError(seen)

            def reject(self, reason: str, count: int = 1) -> None:
                raise AssertionError(reason)

        source.run(Collect(), threading.Event())
        times = np.concatenate([b.times for b in sent])
        assert times[0] == 1120.0
        assert times.size == 180
    finally:
        again.stop()
