"""The configuration-integrity stage on hand-made frames: one finding per change (not per
sample), recoveries, the grace after an authorised change, directives, and the bank's findings on
readbacks dropped."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from safety_nexus.control.config_integrity import APPLY_GRACE, ConfigurationRegistry
from safety_nexus.core.clock import ManualClock
from safety_nexus.core.types import Finding, FindingKind, Frame, Recovery
from safety_nexus.pipeline.stages import Batch
from safety_nexus.pipeline.watch_config import WatchConfiguration
from safety_nexus.site.load import load_file
from safety_nexus.site.table import signal_table
from safety_nexus.store.sqlite import SqliteStore

SITE = Path(__file__).resolve().parents[1] / "site" / "fixtures" / "controls.good.yaml"
SP = "pump-1.pressure_setpoint"
MODE = "gen-1.mode"
T0 = 1_000_000.0
UNAUTHORISED = FindingKind.UNAUTHORISED_CHANGE


@dataclass
class Rig:
    store: SqliteStore
    clock: ManualClock
    registry: ConfigurationRegistry
    stage: WatchConfiguration
    ids: tuple[str, ...]

    def frame(self, rows: list[tuple[float, Mapping[str, float]]]) -> Frame:
        values = np.full((len(rows), len(self.ids)), np.nan)
        for i, (_, sample) in enumerate(rows):
            for signal, value in sample.items():
                values[i, self.ids.index(signal)] = value
        return Frame(np.asarray([t for t, _ in rows], dtype=np.float64), values)

    def feed(self, rows: list[tuple[float, Mapping[str, float]]], **kw: object) -> Batch:
        self.clock.set(rows[-1][0])
        return self.stage.run(Batch(source="test", frame=self.frame(rows), **kw))  # type: ignore[arg-type]

    def observed(self) -> list[dict[str, object]]:
        return [e.data for e in reversed(self.store.events(kind="config.observed_change"))]


@pytest.fixture
def rig() -> Iterator[Rig]:
    site = load_file(SITE)
    table = signal_table(site)
    store = SqliteStore(":memory:")
    clock = ManualClock(T0)
    registry = ConfigurationRegistry(site, table, store, clock)
    yield Rig(store, clock, registry, WatchConfiguration(registry), table.ids)
    store.close()


def _steady(
    t0: float, n: int, value: float, signal: str = SP
) -> list[tuple[float, dict[str, float]]]:
    return [(t0 + 10.0 * i, {signal: value}) for i in range(n)]


def test_authorised_readback_raises_nothing(rig: Rig) -> None:
    batch = rig.feed(_steady(T0, 50, 5.0) + _steady(T0 + 3, 50, 0.0, MODE))
    assert batch.findings == []
    assert batch.recoveries == []
    assert rig.observed() == []
    assert rig.registry.get("pump-1-pressure").in_effect is True
    assert rig.registry.get("gen-1-mode").reported_state == "auto"


def test_within_tolerance_is_no_change(rig: Rig) -> None:
    batch = rig.feed(_steady(T0, 20, 5.04) + _steady(T0 + 200, 20, 4.96))
    assert batch.findings == []


def test_a_nudge_is_one_finding_naming_the_asset_however_many_samples(rig: Rig) -> None:
    rig.feed(_steady(T0, 10, 5.0))
    first = rig.feed(_steady(T0 + 100, 30, 5.3))
    later = rig.feed(_steady(T0 + 400, 30, 5.3))
    (f,) = first.findings
    assert later.findings == []
    assert (f.kind, f.signal, f.asset, f.time) == (UNAUTHORISED, SP, "pump-1", T0 + 100)
    assert (f.observed, f.baseline, f.unit, f.detector) == (5.3, 5.0, "bar", "config")
    assert f.context == "setpoint pump-1-pressure reads 5.3 bar, authorised 5 bar"
    assert f.score == pytest.approx(0.3 / 0.05)
    assert "unauthorised change" in f.explain()
    (event,) = rig.observed()
    assert event["from"] == 5.0
    assert event["to"] == 5.3
    assert event["authorised"] == 5.0
    assert event["asset"] == "pump-1"
    assert event["restored"] is False
    (stored,) = rig.store.events(kind="config.observed_change")
    assert (stored.actor, stored.subject, stored.time) == (
        "telemetry",
        "setpoint:pump-1-pressure",
        T0 + 100,
    )
    assert rig.stage.out_of_step == ["pump-1-pressure"]
    assert rig.registry.get("pump-1-pressure").in_effect is False


def test_back_to_the_authorised_value_is_a_recovery(rig: Rig) -> None:
    rig.feed(_steady(T0, 10, 5.3))
    batch = rig.feed(_steady(T0 + 100, 10, 5.0))
    assert batch.findings == []
    assert batch.recoveries == [Recovery(T0 + 100, SP, "pump-1", UNAUTHORISED)]
    assert [(e["from"], e["to"], e["restored"]) for e in rig.observed()] == [
        (5.0, 5.3, False),
        (5.3, 5.0, True),
    ]
    assert rig.stage.out_of_step == []


def test_another_wrong_value_is_another_change(rig: Rig) -> None:
    batch = rig.feed(_steady(T0, 5, 5.3) + _steady(T0 + 50, 5, 5.31) + _steady(T0 + 100, 5, 5.6))
    assert [f.observed for f in batch.findings] == [5.3, 5.6]  # 5.31 is within the tolerance
    assert [(e["from"], e["to"]) for e in rig.observed()] == [(5.0, 5.3), (5.31, 5.6)]


def test_change_and_return_within_one_frame(rig: Rig) -> None:
    batch = rig.feed(_steady(T0, 3, 5.0) + _steady(T0 + 30, 3, 5.3) + _steady(T0 + 60, 3, 5.0))
    assert [f.time for f in batch.findings] == [T0 + 30]
    assert [r.time for r in batch.recoveries] == [T0 + 60]


def test_return_then_change_within_one_frame_keeps_the_alarm_up(rig: Rig) -> None:
    rig.feed(_steady(T0, 3, 5.3))
    batch = rig.feed(_steady(T0 + 30, 3, 5.0) + _steady(T0 + 60, 3, 5.2))
    assert [f.observed for f in batch.findings] == [5.2]
    assert batch.recoveries == []  # the alarm layer applies findings before recoveries
    assert len(rig.observed()) == 3  # but the journal has the return too
    assert rig.stage.out_of_step == ["pump-1-pressure"]


def test_an_authorised_change_taken_up_raises_nothing(rig: Rig) -> None:
    rig.feed(_steady(T0, 10, 5.0))
    rig.clock.set(T0 + 100)
    rig.registry.change("pump-1-pressure", 5.3, "alice", "more pressure for the summer")
    # the drive still reports the old value for a while, then the new one
    batch = rig.feed(_steady(T0 + 100, 6, 5.0) + _steady(T0 + 160, 30, 5.3))
    assert batch.findings == []
    assert rig.observed() == []
    assert rig.registry.get("pump-1-pressure").in_effect is True


def test_going_back_to_the_old_value_after_taking_up_the_new_is_a_change(rig: Rig) -> None:
    rig.clock.set(T0)
    rig.registry.change("pump-1-pressure", 5.3, "alice", "summer")
    batch = rig.feed(_steady(T0, 3, 5.0) + _steady(T0 + 30, 3, 5.3) + _steady(T0 + 60, 3, 5.0))
    (f,) = batch.findings  # within the grace, but the new value had been reported
    assert (f.time, f.observed, f.baseline) == (T0 + 60, 5.0, 5.3)
    # and in a later frame too: the registry was told the new value was taken up
    rig.feed(_steady(T0 + 90, 1, 5.3))
    assert [f.observed for f in rig.feed(_steady(T0 + 100, 1, 5.0)).findings] == [5.0]


def test_a_change_never_taken_up_is_flagged_after_the_grace(rig: Rig) -> None:
    rig.clock.set(T0)
    rig.registry.change("pump-1-pressure", 5.3, "alice", "summer")
    rows = _steady(T0 + 10, int(APPLY_GRACE / 10) + 5, 5.0)
    batch = rig.feed(rows)
    (f,) = batch.findings
    assert f.time == T0 + 10 + 10 * (int(APPLY_GRACE / 10))  # the first sample after the grace
    assert f.context == "setpoint pump-1-pressure reads 5 bar, authorised 5.3 bar"


def test_an_authorised_change_to_what_is_reported_clears_the_finding(rig: Rig) -> None:
    rig.feed(_steady(T0, 3, 5.3))
    rig.clock.set(T0 + 40)
    rig.registry.change("pump-1-pressure", 5.3, "bob", "accept the field change")
    batch = rig.feed(_steady(T0 + 40, 3, 5.3))
    assert batch.findings == []
    assert [r.signal for r in batch.recoveries] == [SP]


def test_a_directive_reports_its_state_index(rig: Rig) -> None:
    rig.feed(_steady(T0, 3, 0.0, MODE))
    batch = rig.feed(_steady(T0 + 30, 3, 2.0, MODE) + _steady(T0 + 60, 3, 7.0, MODE))
    a, b = batch.findings
    assert (a.asset, a.signal, a.observed, a.baseline) == ("gen-1", MODE, 2.0, 0.0)
    assert a.context == "directive gen-1-mode reads off, authorised auto"
    assert b.context == "directive gen-1-mode reads 7 (no such state), authorised auto"
    assert [(e["from"], e["to"], e["authorised"]) for e in rig.observed()] == [
        ("auto", "off", "auto"),
        ("off", 7.0, "auto"),
    ]
    assert rig.registry.get("gen-1-mode").reported_state is None


def test_readbacks_are_compared_column_by_column(rig: Rig) -> None:
    rows = [(T0 + i, {SP: 5.0 if i < 5 else 5.5, MODE: 0.0 if i < 7 else 1.0}) for i in range(10)]
    rows[6] = (T0 + 6, {})  # a row without either
    batch = rig.feed(rows)
    assert [(f.signal, f.time) for f in batch.findings] == [(SP, T0 + 5), (MODE, T0 + 7)]


def test_the_banks_findings_on_readbacks_are_dropped_except_stale(rig: Rig) -> None:
    def finding(signal: str, kind: FindingKind) -> Finding:
        return Finding(T0, signal, signal.split(".")[0], kind, 2.0, 1.0, 0.0, 1.0)

    kept = [
        finding(SP, FindingKind.STALE),
        finding("pump-1.pressure", FindingKind.VARIANCE),
        finding(MODE, FindingKind.PHANTOM),
    ]
    dropped = [finding(SP, FindingKind.VARIANCE), finding(MODE, FindingKind.LEVEL_SHIFT)]
    batch = rig.feed(_steady(T0, 2, 5.0), findings=[*kept, *dropped])
    assert batch.findings == kept
