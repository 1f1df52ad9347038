"""The registry of authorised setpoints and directives: changes journalled with who, when, the
diff and why; bad changes refused; values kept across restarts; thread-safe. And the whole
runtime: a readback changed without the API raises one finding, an alarm and an event."""

from __future__ import annotations

import doctest
import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from safety_nexus.control import config_integrity
from safety_nexus.control.config_integrity import ConfigurationRegistry, ControlKind
from safety_nexus.core.clock import ManualClock
from safety_nexus.core.errors import ControlError, NotFoundError
from safety_nexus.core.types import AlarmState, FindingKind, Frame
from safety_nexus.pipeline.builder import RuntimeSettings, build_runtime
from safety_nexus.pipeline.runtime import Runtime
from safety_nexus.site.load import load, load_file
from safety_nexus.site.schema import Site
from safety_nexus.site.table import signal_table
from safety_nexus.store.sqlite import SqliteStore

SITE = Path(__file__).resolve().parents[1] / "site" / "fixtures" / "controls.good.yaml"
T0 = 2_000_000.0
SP = "setpoint:pump-1-pressure"


@pytest.fixture
def site() -> Site:
    return load_file(SITE)


def _registry(site: Site, store: SqliteStore, t: float = T0) -> ConfigurationRegistry:
    return ConfigurationRegistry(site, signal_table(site), store, ManualClock(t))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "nexus.db")
    yield s
    s.close()


def test_the_module_example_runs() -> None:
    assert doctest.testmod(config_integrity).failed == 0


def test_the_site_files_values_are_the_first_authorised_ones(
    site: Site, store: SqliteStore
) -> None:
    registry = _registry(site, store)
    assert [(s.id, s.kind, s.value) for s in registry.states()] == [
        ("pump-1-pressure", ControlKind.SETPOINT, 5.0),
        ("pump-1-cutout", ControlKind.SETPOINT, 2.5),
        ("gen-1-mode", ControlKind.DIRECTIVE, "auto"),
    ]
    sp = registry.get("pump-1-pressure")
    assert (sp.changed_by, sp.changed_at, sp.declared) == ("site", T0, 5.0)
    assert (sp.tolerance, sp.range, sp.unit, sp.signal) == (
        0.05,
        (4.0, 6.0),
        "bar",
        "pump-1.pressure_setpoint",
    )
    assert (sp.reported, sp.in_effect) == (None, None)
    assert registry.get("pump-1-cutout").tolerance == pytest.approx(0.003)  # 0.1 % of the range
    assert registry.get("gen-1-mode").states == ("auto", "manual", "off")
    events = store.events(kind="config.changed")
    assert {e.subject for e in events} == {SP, "setpoint:pump-1-cutout", "directive:gen-1-mode"}
    assert all(e.actor == "site" and e.data["from"] is None for e in events)


def test_a_change_is_journalled_with_who_when_the_diff_and_why(
    site: Site, store: SqliteStore
) -> None:
    clock = ManualClock(T0)
    registry = ConfigurationRegistry(site, signal_table(site), store, clock)
    clock.set(T0 + 60)
    state = registry.change("pump-1-pressure", 5.25, " alice ", "summer demand")
    assert (state.value, state.changed_by, state.changed_at, state.reason) == (
        5.25,
        "alice",
        T0 + 60,
        "summer demand",
    )
    assert registry.get("pump-1-pressure") == state
    event = store.events(subject=SP, limit=1)[0]
    assert (event.kind, event.actor, event.time) == ("config.changed", "alice", T0 + 60)
    assert event.data["from"] == 5.0
    assert event.data["to"] == 5.25
    assert event.data["reason"] == "summer demand"
    assert event.data["asset"] == "pump-1"
    assert event.data["kind"] == "setpoint"
    assert [v.actor for v in store.config_history(SP)] == ["site", "alice"]
    assert [e.kind for e in registry.history("pump-1-pressure")] == ["config.changed"] * 2

    mode = registry.change("gen-1-mode", "manual", "bob", "maintenance", kind=ControlKind.DIRECTIVE)
    assert mode.value == "manual"
    last = store.events(subject="directive:gen-1-mode", limit=1)[0]
    assert (last.data["from"], last.data["to"], last.actor) == ("auto", "manual", "bob")


def test_setting_the_current_value_journals_nothing(site: Site, store: SqliteStore) -> None:
    registry = _registry(site, store)
    before = store.count_events()
    assert registry.change("pump-1-pressure", 5, "alice", "no-op").value == 5.0
    assert store.count_events() == before


@pytest.mark.parametrize(
    ("control", "value", "kind", "error", "fragment"),
    [
        ("pump-9", 5.0, None, NotFoundError, "no setpoint or directive 'pump-9'"),
        ("gen-1-mode", 5.0, ControlKind.SETPOINT, NotFoundError, "no setpoint 'gen-1-mode'"),
        ("pump-1-pressure", "auto", ControlKind.DIRECTIVE, NotFoundError, "no directive"),
        ("pump-1-pressure", 6.5, None, ControlError, "6.5 is outside the range [4, 6]"),
        ("pump-1-pressure", 3.99, None, ControlError, "outside the range"),
        ("pump-1-pressure", float("nan"), None, ControlError, "finite number"),
        ("pump-1-pressure", float("inf"), None, ControlError, "finite number"),
        ("pump-1-pressure", "5", None, ControlError, "takes a number, not '5'"),
        ("pump-1-pressure", True, None, ControlError, "takes a number"),
        ("gen-1-mode", "standby", None, ControlError, "'standby' is not a state of directive"),
        ("gen-1-mode", 1.0, None, ControlError, "(auto, manual, off)"),
    ],
)
def test_bad_changes_are_refused_and_change_nothing(
    site: Site,
    store: SqliteStore,
    control: str,
    value: float | str,
    kind: ControlKind | None,
    error: type[Exception],
    fragment: str,
) -> None:
    registry = _registry(site, store)
    before = store.count_events()
    with pytest.raises(error) as caught:
        registry.change(control, value, "alice", "why not", kind=kind)
    assert fragment in str(caught.value)
    assert store.count_events() == before
    assert [s.value for s in registry.states()] == [5.0, 2.5, "auto"]


@pytest.mark.parametrize(("user", "reason", "fragment"), [("  ", "r", "user"), ("a", "", "reason")])
def test_a_change_needs_a_user_and_a_reason(
    site: Site, store: SqliteStore, user: str, reason: str, fragment: str
) -> None:
    with pytest.raises(
        ControlError, match=f"changing setpoint 'pump-1-pressure' needs a {fragment}"
    ):
        _registry(site, store).change("pump-1-pressure", 5.1, user, reason)


def test_authorised_values_survive_a_restart(site: Site, store: SqliteStore) -> None:
    _registry(site, store).change("pump-1-pressure", 5.3, "alice", "summer")
    _registry(site, store).change("gen-1-mode", "off", "bob", "decommissioned")
    count = store.count_events()
    again = _registry(site, store, T0 + 3600)
    sp = again.get("pump-1-pressure")
    assert (sp.value, sp.changed_by, sp.changed_at, sp.reason) == (5.3, "alice", T0, "summer")
    assert again.get("gen-1-mode").value == "off"
    assert store.count_events() == count  # nothing to journal: nothing changed


def test_an_edited_site_file_wins_over_an_older_api_change(site: Site, store: SqliteStore) -> None:
    _registry(site, store).change("pump-1-pressure", 5.3, "alice", "summer")
    edited = load(SITE.read_text().replace("    value: 5.0\n", "    value: 4.8\n", 1))
    registry = _registry(edited, store, T0 + 10)
    sp = registry.get("pump-1-pressure")
    assert (sp.value, sp.changed_by, sp.changed_at) == (4.8, "site", T0 + 10)
    event = store.events(subject=SP, limit=1)[0]
    assert (event.data["from"], event.data["to"]) == (5.3, 4.8)
    assert event.data["reason"] == "the site file declares a new value"


def test_a_stored_value_the_site_no_longer_allows_is_reset(site: Site, store: SqliteStore) -> None:
    _registry(site, store).change("pump-1-pressure", 5.8, "alice", "summer")
    narrower = load(SITE.read_text().replace("range: [4, 6]", "range: [4, 5.5]", 1))
    registry = _registry(narrower, store)
    assert registry.get("pump-1-pressure").value == 5.0
    reason = store.events(subject=SP, limit=1)[0].data["reason"]
    assert "no longer allowed: 5.8 is outside the range [4, 5.5]" in str(reason)


def test_concurrent_changes_are_each_journalled_in_order(site: Site, store: SqliteStore) -> None:
    registry = _registry(site, store)
    values = [4.0 + 0.01 * i for i in range(1, 101)]

    def worker(k: int) -> None:
        for v in values[k::4]:
            registry.change("pump-1-pressure", v, f"user-{k}", "load test")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = list(reversed(store.events(subject=SP, kind="config.changed", limit=1000)))
    assert len(events) == 1 + len(values)  # the site's, then every change
    for a, b in itertools.pairwise(events):
        assert b.data["from"] == a.data["to"]  # a chain: no change lost or interleaved
    assert registry.get("pump-1-pressure").value == events[-1].data["to"]


# -- the whole runtime -----------------------------------------------------------------------


def _runtime(data_dir: Path) -> Runtime:
    return build_runtime(RuntimeSettings(site=SITE, data_dir=data_dir, source="http"))


def _frame(runtime: Runtime, t0: float, n: int, setpoint: float, mode: float = 0.0) -> Frame:
    """n seconds of the small site: a noisy pump pressure, the readbacks every 10 s."""
    rng = np.random.default_rng(int(t0) % 1000)
    ids = runtime.table.ids
    values = np.full((n, len(ids)), np.nan)
    values[:, ids.index("pump-1.pressure")] = 5.0 + 0.05 * rng.standard_normal(n)
    every = np.arange(n) % 10 == 0
    values[every, ids.index("pump-1.pressure_setpoint")] = setpoint
    values[every, ids.index("gen-1.mode")] = mode
    values[np.arange(n) % 60 == 0, ids.index("gen-1.fuel")] = 80.0
    return Frame(t0 + np.arange(n, dtype=np.float64), values)


@pytest.mark.slow
def test_a_nudge_raises_one_finding_an_alarm_and_an_event_and_clears(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    try:
        t0 = time.time() - 6 * 3600  # well before any grace: nothing was changed through the API
        findings = []
        # Two hours at the authorised value: quiet, although the bank alone raises variance
        # findings on the constant readbacks within that time (the stage drops them).
        for k in range(120):
            findings += runtime.process_frame(
                "gateway", _frame(runtime, t0 + 60 * k, 60, 5.0)
            ).findings
        assert findings == []
        nudged = t0 + 7200
        for k in range(10):
            findings += runtime.process_frame(
                "gateway", _frame(runtime, nudged + 60 * k, 60, 5.4)
            ).findings
        (f,) = findings
        assert (f.kind, f.asset, f.signal, f.time) == (
            FindingKind.UNAUTHORISED_CHANGE,
            "pump-1",
            "pump-1.pressure_setpoint",
            nudged,
        )
        (stored,) = runtime.store.findings(kind=FindingKind.UNAUTHORISED_CHANGE)
        assert stored.finding.context == "setpoint pump-1-pressure reads 5.4 bar, authorised 5 bar"
        alarm = runtime.alarms.get("pump-1:unauthorised_change")
        assert (alarm.state, alarm.subsystem, alarm.count) == (
            AlarmState.UNACKNOWLEDGED,
            "water",
            1,
        )
        assert alarm.priority.label == "high"  # the asset's criticality
        (event,) = runtime.store.events(kind="config.observed_change")
        assert (event.actor, event.subject, event.data["to"]) == ("telemetry", SP, 5.4)

        runtime.process_frame("gateway", _frame(runtime, nudged + 600, 60, 5.0))
        assert runtime.alarms.get("pump-1:unauthorised_change").state is (
            AlarmState.RETURNED_UNACKNOWLEDGED
        )
        assert runtime.configuration is not None
        assert runtime.configuration.get("pump-1-pressure").in_effect is True
    finally:
        runtime.stop()


def test_the_authorised_value_survives_a_restart_of_the_runtime(tmp_path: Path) -> None:
    first = _runtime(tmp_path)
    assert first.configuration is not None
    first.configuration.change("pump-1-pressure", 5.4, "alice", "summer demand")
    first.configuration.change("gen-1-mode", "manual", "alice", "generator maintenance")
    first.stop()

    again = _runtime(tmp_path)
    try:
        assert again.configuration is not None
        sp = again.configuration.get("pump-1-pressure")
        assert (sp.value, sp.changed_by, sp.reason) == (5.4, "alice", "summer demand")
        t0 = time.time() - 3600
        quiet = again.process_frame("gateway", _frame(again, t0, 120, 5.4, mode=1.0)).findings
        assert quiet == []
        old = again.process_frame("gateway", _frame(again, t0 + 120, 60, 5.0, mode=1.0)).findings
        assert [(f.signal, f.baseline) for f in old] == [("pump-1.pressure_setpoint", 5.4)]
    finally:
        again.stop()
