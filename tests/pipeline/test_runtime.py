from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from safety_nexus.cli import app
from safety_nexus.core.errors import ConfigError, IngestError
from safety_nexus.core.types import Frame
from safety_nexus.pipeline.builder import RuntimeSettings, SimulatorSettings, build_runtime
from safety_nexus.pipeline.runtime import Runtime


def _sim_settings(data_dir: Path, site: Path, **sim: object) -> RuntimeSettings:
    return RuntimeSettings(
        site=site,
        data_dir=data_dir,
        source="simulator",
        simulator=SimulatorSettings.model_validate({"seed": 5, "scenarios": [], **sim}),
    )


def _drive(runtime: Runtime, seconds: int, rows: int = 10) -> None:
    source = runtime.simulator
    assert source is not None
    for _ in range(seconds // rows):
        runtime.process_frame(source.name, source.sim.step(rows))


def test_everything_survives_a_restart(tmp_path: Path, demo_city: Path) -> None:
    runtime = build_runtime(_sim_settings(tmp_path, demo_city))
    _drive(runtime, 300)
    source = runtime.simulator
    assert source is not None
    source.sim.inject("S4")
    _drive(runtime, 120)
    open_before = {a.id: a.state for a in runtime.alarms.alarms()}
    findings_before = runtime.store.count_findings()
    last_time = runtime.clock.now()
    probe = "pump-1.pressure"
    hist_before = runtime.history.read(probe, last_time - 400, last_time + 1)[0].size
    runtime.stop()
    assert open_before, "the scenario should have left open alarms"

    again = build_runtime(_sim_settings(tmp_path, demo_city))
    try:
        assert {a.id: a.state for a in again.alarms.alarms()} == open_before
        assert again.store.count_findings() == findings_before
        assert again.history.read(probe, last_time - 400, last_time + 1)[0].size == hist_before
        kinds = {e.kind for e in again.store.events(limit=1000)}
        assert {"runtime.stopped", "config.changed"} <= kinds
        # simulated time resumes after the last recorded event instead of starting over
        assert again.clock.now() > last_time
    finally:
        again.stop()


def test_worker_thread_processes_simulator_source(tmp_path: Path, demo_city: Path) -> None:
    runtime = build_runtime(
        _sim_settings(tmp_path, demo_city, speed=float("inf"), rows_per_batch=30)
    )
    runtime.start()
    try:
        deadline = time.monotonic() + 30
        signals_seen = 0
        while time.monotonic() < deadline and signals_seen <= 300:
            time.sleep(0.05)
            times, _ = runtime.latest()
            signals_seen = int(np.isfinite(times).sum())
        assert signals_seen > 300  # most signals have a latest sample
    finally:
        runtime.stop()


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    lines = [",".join(header)] + [",".join(str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def test_replay_goes_through_the_intake_like_a_live_source(tmp_path: Path, demo_city: Path) -> None:
    path = tmp_path / "rec.csv"
    _write_csv(
        path,
        ["timestamp", "pump-1.pressure", "fan-2.speed", "bogus.x"],
        [
            ["2026-06-01T00:00:00+00:00", 4.8, 1000, 1],
            ["2026-06-01T00:00:01+00:00", 4.9, "", 2],
        ],
    )
    settings = RuntimeSettings(
        site=demo_city, data_dir=tmp_path / "d", source="replay", replay=path
    )
    runtime = build_runtime(settings)
    runtime.start()
    try:
        deadline = time.monotonic() + 20
        while (
            runtime.metrics.registry.get_sample_value(
                "nexus_ingest_accepted_samples_total", {"source": "replay"}
            )
            != 3
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        runtime.wait_idle()
    finally:
        runtime.stop()
    runtime = build_runtime(RuntimeSettings(site=demo_city, data_dir=tmp_path / "d", source="http"))
    try:
        _, values = runtime.history.read("pump-1.pressure", -np.inf, np.inf)
        assert values.tolist() == pytest.approx([4.8, 4.9])  # history keeps float32
        _, values = runtime.history.read("fan-2.speed", -np.inf, np.inf)
        assert values.tolist() == [1000.0]  # the empty cell is a gap
        phantoms = runtime.store.events(kind="ingest.phantom")
        assert [e.subject for e in phantoms] == ["bogus.x"]  # reported, not silently dropped
        assert not (tmp_path / "d" / "wal").exists() or not any(
            p.stat().st_size > 4096 for p in (tmp_path / "d" / "wal").iterdir()
        )
    finally:
        runtime.stop()


def test_replay_source_needs_a_file(tmp_path: Path, demo_city: Path) -> None:
    with pytest.raises(ConfigError, match="replay"):
        build_runtime(RuntimeSettings(site=demo_city, data_dir=tmp_path, source="replay"))


def test_settings_are_strict(tmp_path: Path, demo_city: Path) -> None:
    with pytest.raises(ValueError, match="colour"):
        RuntimeSettings.model_validate({"site": demo_city, "data_dir": tmp_path, "colour": 1})


def test_frames_of_the_wrong_width_are_refused(tmp_path: Path, demo_city: Path) -> None:
    runtime = build_runtime(RuntimeSettings(site=demo_city, data_dir=tmp_path, source="http"))
    try:
        with pytest.raises(IngestError, match="columns"):
            runtime.process_frame("x", Frame(np.array([1.0]), np.zeros((1, 3))))
    finally:
        runtime.stop()


def test_full_queue_answers_503_without_losing_accepted_data(
    tmp_path: Path, demo_city: Path
) -> None:
    settings = RuntimeSettings(site=demo_city, data_dir=tmp_path, source="http", queue_size=2)
    runtime = build_runtime(settings)  # worker not started: nothing drains the queue
    try:

        def body(t: float) -> bytes:
            return json.dumps(
                {"samples": [{"signal": "pump-1.pressure", "time": t, "value": 4.8}]}
            ).encode()

        assert runtime.ingest_json(body(1.0)) == 1
        assert runtime.ingest_json(body(2.0)) == 1
        with pytest.raises(IngestError) as info:
            runtime.ingest_json(body(3.0))
        assert info.value.status == 503
        assert runtime.metrics.rejected_count("busy") == 1
        runtime.start()
        assert runtime.wait_idle()
        times, _ = runtime.latest()
        assert times[runtime.table.index["pump-1.pressure"]] == 2.0
    finally:
        runtime.stop()


@pytest.mark.slow
def test_headless_demo_prints_a_summary(demo_city: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "demo",
            "--headless",
            "--scenario",
            "S4",
            "--duration",
            "60",
            "--speed",
            "1000",
            "--site",
            str(demo_city),
            "--warmup",
            "300",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "S4" in result.output
    assert "findings" in result.output
    assert "detection delay" in result.output
    assert "sub-1" in result.output


def test_demo_rejects_unknown_scenario(demo_city: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--headless", "--scenario", "S42", "--site", str(demo_city)]
    )
    assert result.exit_code == 2
    assert "unknown scenario 'S42'" in result.output


def _batch(signal: str, times: list[float], value: float = 4.8) -> bytes:
    return json.dumps(
        {"samples": [{"signal": signal, "time": t, "value": value} for t in times]}
    ).encode()


def test_sources_with_skewed_clocks_interleave_without_loss(
    tmp_path: Path, demo_city: Path
) -> None:
    runtime = build_runtime(RuntimeSettings(site=demo_city, data_dir=tmp_path, source="http"))
    runtime.start()
    try:
        # gateway A runs 100 s ahead of gateway B; each is in order on its own signals
        assert runtime.ingest_json(_batch("pump-1.pressure", [1100.0, 1101.0])) == 2
        assert runtime.ingest_json(_batch("pump-2.pressure", [1000.0, 1001.0])) == 2
        assert runtime.ingest_json(_batch("pump-2.pressure", [1002.0])) == 1
        assert runtime.wait_idle()
        assert runtime.metrics.rejected_count("pipeline_error") == 0
        times, _ = runtime.latest()
        assert times[runtime.table.index["pump-2.pressure"]] == 1002.0
        assert (
            runtime.metrics.registry.get_sample_value(
                "nexus_samples_processed_total", {"source": "http"}
            )
            == 5
        )
    finally:
        runtime.stop()


@pytest.mark.slow
def test_silence_is_noticed_on_idle_ticks(tmp_path: Path, demo_city: Path) -> None:
    settings = RuntimeSettings(site=demo_city, data_dir=tmp_path, source="http", idle_tick=0.2)
    runtime = build_runtime(settings)
    runtime.start()
    try:
        now = runtime.clock.now()
        rng = np.random.default_rng(0)
        samples = [
            {"signal": "pump-1.pressure", "time": now - 300 + i, "value": 4.8 + 0.05 * v}
            for i, v in enumerate(rng.normal(size=300))
        ]
        assert runtime.ingest_json(json.dumps({"samples": samples}).encode()) == 300
        deadline = time.monotonic() + 15
        stale: list[str] = []
        while time.monotonic() < deadline and not stale:
            time.sleep(0.2)
            stale = [a.id for a in runtime.alarms.alarms() if a.kind.value == "stale"]
        assert "pump-1:stale" in stale
    finally:
        runtime.stop()


def test_queued_frames_merge_into_one_batch_and_nothing_is_lost(
    tmp_path: Path, demo_city: Path
) -> None:
    """A backlog of one-row frames goes through the chain as a few many-row batches; a frame
    that does not follow in time (another gateway's, behind) is processed after, not merged."""
    settings = RuntimeSettings(
        site=demo_city, data_dir=tmp_path, source="http", reorder_tolerance=0.0
    )
    runtime = build_runtime(settings)  # worker not started: the frames queue up
    runtime.merge_rows = 8
    try:
        for t in range(1, 21):
            assert runtime.ingest_json(_batch("pump-1.pressure", [float(t)])) == 1
        assert runtime.ingest_json(_batch("pump-2.pressure", [5.5])) == 1  # behind: no merge
        assert runtime.queue_depth == 21
        runtime.start()
        assert runtime.wait_idle()
        registry = runtime.metrics.registry
        assert registry.get_sample_value("nexus_samples_processed_total", {"source": "http"}) == 21
        # 20 rows in batches of at most 8 (3), then the frame that could not join (1)
        assert registry.get_sample_value("nexus_pipeline_batch_seconds_count") == 4
        times, _ = runtime.latest()
        assert times[runtime.table.index["pump-1.pressure"]] == 20.0
        assert times[runtime.table.index["pump-2.pressure"]] == 5.5
    finally:
        runtime.stop()


def test_a_second_stop_does_nothing(tmp_path: Path, demo_city: Path) -> None:
    runtime = build_runtime(_sim_settings(tmp_path, demo_city))
    _drive(runtime, 10)
    runtime.stop()
    runtime.stop()  # a server and a fixture may both stop it; the store is closed already
    again = build_runtime(_sim_settings(tmp_path, demo_city))
    try:
        assert len(again.store.events(kind="runtime.stopped")) == 1
    finally:
        again.stop()
