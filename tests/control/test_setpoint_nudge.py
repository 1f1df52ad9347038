"""The demo city under C1 (setpoint-nudge), through the whole runtime: quiet while the
controllers hold what is authorised, then one unauthorised change per touched asset, in the
order they were touched, each with its alarm and journal entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from safety_nexus.core.types import Finding, FindingKind
from safety_nexus.pipeline.builder import RuntimeSettings, SimulatorSettings, build_runtime

READBACKS = ("pressure_setpoint", "supply_setpoint", "mode")


@pytest.mark.slow
def test_c1_names_the_touched_assets_in_order(tmp_path: Path, demo_city: Path) -> None:
    settings = RuntimeSettings(
        site=demo_city,
        data_dir=tmp_path,
        source="simulator",
        simulator=SimulatorSettings(seed=3, scenarios=[], warmup=300),
    )
    runtime = build_runtime(settings)
    try:
        source = runtime.simulator
        assert source is not None

        def drive(seconds: int) -> list[Finding]:
            out: list[Finding] = []
            for _ in range(seconds // 20):
                out += runtime.process_frame(source.name, source.sim.step(20)).findings
            return out

        before = drive(600)
        assert not [f for f in before if f.signal.split(".")[1] in READBACKS]
        run = source.sim.inject("C1")
        after = drive(600)
        changes = [f for f in after if f.kind is FindingKind.UNAUTHORISED_CHANGE]
        assert [(f.asset, f.signal) for f in changes] == [
            ("pump-2", "pump-2.pressure_setpoint"),
            ("chiller-1", "chiller-1.supply_setpoint"),
            ("gen-2", "gen-2.mode"),
        ]
        starts = {lb.signal: lb.start for lb in run.labels if lb.effect == "config"}
        for f in changes:
            assert 0.0 <= f.time - starts[f.signal] <= 10.0  # the readbacks report every 10 s
        assert [f.context for f in changes] == [
            "setpoint pump-2-pressure reads 5.3 bar, authorised 5 bar",
            "setpoint chiller-1-supply-temp reads 8.5 °C, authorised 7.5 °C",
            "directive gen-2-mode reads off, authorised auto",
        ]
        # Only config integrity speaks about the readbacks; the bank's findings on them go.
        assert not [
            f
            for f in after
            if f.signal.split(".")[1] in READBACKS and f.kind is not FindingKind.UNAUTHORISED_CHANGE
        ]
        for asset in ("pump-2", "chiller-1", "gen-2"):
            assert runtime.alarms.get(f"{asset}:unauthorised_change").active
        observed = runtime.store.events(kind="config.observed_change")
        assert sorted(e.subject for e in observed) == [
            "directive:gen-2-mode",
            "setpoint:chiller-1-supply-temp",
            "setpoint:pump-2-pressure",
        ]
    finally:
        runtime.stop()


@pytest.mark.slow
def test_an_authorised_change_reaches_the_twin_and_raises_nothing(
    tmp_path: Path, demo_city: Path
) -> None:
    settings = RuntimeSettings(
        site=demo_city,
        data_dir=tmp_path,
        source="simulator",
        simulator=SimulatorSettings(seed=4, scenarios=[], warmup=300),
    )
    runtime = build_runtime(settings)
    try:
        source, registry = runtime.simulator, runtime.configuration
        assert source is not None
        assert registry is not None
        for _ in range(15):
            runtime.process_frame(source.name, source.sim.step(20))
        registry.change("pump-4-pressure", 5.4, "alice", "more pressure on main 2")
        registry.change("gen-1-mode", "manual", "alice", "generator service")
        findings: list[Finding] = []
        for _ in range(30):  # ten minutes, well past the grace for the old values
            findings += runtime.process_frame(source.name, source.sim.step(20)).findings
        assert not [f for f in findings if f.kind is FindingKind.UNAUTHORISED_CHANGE]
        pump = registry.get("pump-4-pressure")
        assert (pump.reported, pump.in_effect) == (5.4, True)
        assert registry.get("gen-1-mode").reported_state == "manual"
    finally:
        runtime.stop()
