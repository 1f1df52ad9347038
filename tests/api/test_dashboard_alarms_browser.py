"""The dashboard's alarm list in Chromium: states and markers, grouped consequences, operator
actions with notes (and a refusal shown to the operator), the removed view, and the flood banner
with the lower priorities folded away.

The alarms are raised on the served runtime's AlarmManager directly (findings, recoveries and
external alerts), so which alarms exist, their grouping and the flood count are exact; the page
learns of them only through the API and its WebSocket stream."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from findings import finding, recovery
from safety_nexus.alarms.manager import ExternalAlert
from safety_nexus.core.types import Priority
from safety_nexus.pipeline.runtime import Runtime
from servers import serve_api

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page, Route

API = "/api/v1"
FEEDER = "feeder-1:level_shift"  # the root cause; pump-1 and fan-1 are its consequences
PUMP = "pump-1:level_shift"
FAN = "fan-1:level_shift"
CORE = "core-b1:level_shift"  # emergency (a critical asset), latching, on its own
TUNNEL = "tunnel-8:level_shift"  # emergency, on its own

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian's chromium is not installed"),
]


@pytest.fixture
def served(http_runtime: Runtime) -> Iterator[tuple[str, Runtime]]:
    """The demo city fed by nothing but the test, its API served on 127.0.0.1; no on-delay,
    so an alarm is raised the moment the test reports its finding."""
    with serve_api(http_runtime) as url:
        yield url, http_runtime


@pytest.fixture
def page(served: tuple[str, Runtime]) -> Iterator[Page]:
    """The dashboard, loaded and live; no script error may happen while the test runs."""
    from playwright.sync_api import expect, sync_playwright

    url, _ = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            pg.on("pageerror", lambda exc: errors.append(str(exc)))
            pg.goto(url)
            expect(pg.get_by_test_id("connection-state")).to_contain_text(
                "live", ignore_case=True, timeout=10_000
            )
            yield pg
            assert not errors, errors
        finally:
            browser.close()


def _row(page: Page, alarm_id: str) -> Locator:
    return page.locator(f'[data-testid="alarm-row"][data-alarm-id="{alarm_id}"]')


def _group(page: Page, alarm_id: str) -> Locator:
    return page.locator(f'tbody.alarm-group[data-alarm-id="{alarm_id}"]')


def _raise_feeder_group(runtime: Runtime, now: float) -> None:
    runtime.alarms.process(
        [
            finding("feeder-1.voltage", now - 30),
            finding("pump-1.pressure", now - 29),
            finding("fan-1.speed", now - 28),
        ]
    )


def test_states_actions_and_removed_view(page: Page, served: tuple[str, Runtime]) -> None:
    from playwright.sync_api import expect

    url, runtime = served
    now = runtime.clock.now()
    # raised after the page loaded: the list learns of them through the stream
    _raise_feeder_group(runtime, now)
    runtime.alarms.process([finding("core-b1.cpu_temp", now - 20)])

    feeder = _row(page, FEEDER)
    expect(feeder).to_have_attribute("data-state", "unacknowledged", timeout=10_000)
    expect(feeder.get_by_test_id("alarm-state")).to_have_text("Unacknowledged")
    expect(feeder.locator(".prio-badge")).to_have_text("High")
    expect(feeder.locator(".prio-badge")).to_have_class(re.compile(r"\bprio-high\b"))
    expect(feeder.get_by_test_id("first-out")).to_be_visible()
    expect(feeder.get_by_test_id("chattering")).to_be_hidden()
    expect(feeder.locator("td.c-asset")).to_have_text("feeder-1")
    expect(feeder.locator(".msg-text")).to_contain_text("feeder-1.voltage: level shift")
    core = _row(page, CORE)
    expect(core.locator(".prio-badge")).to_have_text("Emergency")
    # the consequences are off the list, but counted on their root and one click away
    expect(_row(page, PUMP)).to_have_count(0)
    toggle = feeder.get_by_test_id("consequences-toggle")
    expect(toggle).to_have_text("+2 consequences")
    toggle.click()
    consequences = _group(page, FEEDER).get_by_test_id("consequence-row")
    expect(consequences).to_have_count(2)
    expect(consequences.nth(0)).to_have_attribute("data-alarm-id", PUMP)
    expect(consequences.nth(0)).to_contain_text("Suppressed")
    expect(consequences.nth(0)).to_contain_text(f"under root cause {FEEDER}")
    expect(consequences.nth(1)).to_have_attribute("data-alarm-id", FAN)

    # unacknowledged blinks: all such badges dim together in the table's "off" phase
    table = page.get_by_test_id("alarm-table")
    expect(table).to_have_attribute("data-blink", "off")
    expect(table).to_have_attribute("data-blink", "on")
    opacity = """id => {
        document.getElementById("alarm-table").dataset.blink = "off";
        const row = document.querySelector(`[data-testid="alarm-row"][data-alarm-id="${id}"]`);
        return getComputedStyle(row.querySelector(".prio-badge")).opacity;
    }"""
    assert page.evaluate(opacity, FEEDER) == "0.25"
    page.emulate_media(reduced_motion="reduce")  # no blinking; the state is spelled out
    assert page.evaluate(opacity, FEEDER) == "1"
    page.emulate_media(reduced_motion="no-preference")

    # acknowledge with a note; no operator name yet, so the page asks for one
    expect(page.get_by_test_id("operator-name")).to_have_value("")
    feeder.get_by_test_id("actions-toggle").click()
    panel = _group(page, FEEDER).get_by_test_id("action-row")
    expect(panel.get_by_test_id("action-reset")).to_be_hidden()
    expect(panel.get_by_test_id("action-return-to-service")).to_be_hidden()
    panel.get_by_test_id("action-note").fill("crew sent to feeder 1")
    page.once("dialog", lambda dialog: dialog.accept("ann"))
    panel.get_by_test_id("action-acknowledge").click()
    expect(feeder).to_have_attribute("data-state", "acknowledged")
    expect(feeder.get_by_test_id("alarm-state")).to_have_text("Acknowledged")
    expect(feeder.get_by_test_id("state-note")).to_have_text("by ann")
    expect(page.get_by_test_id("operator-name")).to_have_value("ann")
    assert page.evaluate("localStorage.getItem('nexus.operator')") == "ann"
    expect(panel.get_by_test_id("alarm-history")).to_contain_text("crew sent to feeder 1")
    expect(panel.get_by_test_id("action-acknowledge")).to_be_hidden()
    assert page.evaluate(opacity, FEEDER) == "1"  # acknowledged: steady
    newest = httpx.get(f"{url}{API}/alarms/{FEEDER}/history", timeout=5).json()[0]
    assert newest["actor"] == "ann"
    assert newest["data"]["event"] == "acknowledge"
    assert newest["data"]["note"] == "crew sent to feeder 1"

    # an emergency latches: acknowledged, then clear, it waits for a reset
    core.get_by_test_id("ack-button").click()
    expect(core).to_have_attribute("data-state", "acknowledged")
    runtime.alarms.process(recoveries=[recovery("core-b1.cpu_temp", runtime.clock.now())])
    expect(core).to_have_attribute("data-state", "latched", timeout=10_000)
    expect(core.get_by_test_id("alarm-state")).to_have_text("Latched")
    expect(core.get_by_test_id("state-note")).to_have_text("needs reset")
    core.get_by_test_id("reset-button").click()
    expect(core).to_have_count(0)
    assert httpx.get(f"{url}{API}/alarms/{CORE}", timeout=5).json()["state"] == "normal"

    # someone else acknowledges first: the server refuses, and the operator is told why
    runtime.alarms.process([finding("tunnel-8.pressure_a", runtime.clock.now())])
    tunnel = _row(page, TUNNEL)
    expect(tunnel).to_have_attribute("data-state", "unacknowledged", timeout=10_000)

    def bob_first(route: Route) -> None:
        r = httpx.post(f"{url}{API}/alarms/{TUNNEL}/acknowledge", json={"user": "bob"}, timeout=5)
        assert r.status_code == 200, r.text
        route.continue_()

    # the page sends the id URL-encoded (":" as %3A)
    ack_tunnel = re.compile(r"/alarms/tunnel-8(:|%3A)level_shift/acknowledge$")
    page.route(ack_tunnel, bob_first)
    tunnel.get_by_test_id("ack-button").click()
    status = page.get_by_test_id("action-status")
    expect(status).to_have_attribute("data-kind", "error")
    expect(status).to_contain_text(f"Could not acknowledge {TUNNEL}")
    expect(status).to_contain_text("nothing to acknowledge")
    expect(tunnel.get_by_test_id("state-note")).to_have_text("by bob")
    page.unroute(ack_tunnel)

    # cleared and back within the chatter window: chattering, and annunciated again
    t = runtime.clock.now()
    runtime.alarms.process(recoveries=[recovery("tunnel-8.pressure_a", t)])
    runtime.alarms.process([finding("tunnel-8.pressure_a", t + 0.001)])
    expect(tunnel.get_by_test_id("chattering")).to_be_visible(timeout=10_000)
    expect(tunnel).to_have_attribute("data-state", "unacknowledged")

    # shelve for an hour: off the list, and in the removed view with its end time
    panel.get_by_test_id("action-shelve-duration").select_option("3600")
    panel.get_by_test_id("action-shelve").click()
    expect(feeder).to_have_count(0)
    expect(status).to_have_attribute("data-kind", "ok")
    expect(page.get_by_test_id("view-removed")).to_contain_text("(3)")
    page.get_by_test_id("view-removed").click()
    expect(feeder).to_have_attribute("data-state", "shelved")
    expect(feeder.get_by_test_id("alarm-state")).to_have_text("Shelved")
    shelved = httpx.get(f"{url}{API}/alarms/{FEEDER}", timeout=5).json()
    until = time.strftime("%H:%M:%S", time.gmtime(shelved["shelved_until"]))
    expect(feeder.get_by_test_id("state-note")).to_have_text(f"until {until}")
    pump = _row(page, PUMP)
    expect(pump.get_by_test_id("alarm-state")).to_have_text("Suppressed")
    expect(pump.get_by_test_id("state-note")).to_have_text(f"under root cause {FEEDER}")
    expect(_row(page, FAN)).to_have_count(1)
    expect(_row(page, TUNNEL)).to_have_count(0)

    # out of service (with a note) and back: the suppression underneath stays in force
    pump.get_by_test_id("actions-toggle").click()
    pump_panel = _group(page, PUMP).get_by_test_id("action-row")
    expect(pump_panel.get_by_test_id("action-shelve")).to_be_hidden()
    pump_panel.get_by_test_id("action-note").fill("probe swap")
    pump_panel.get_by_test_id("action-out-of-service").click()
    expect(pump).to_have_attribute("data-state", "out_of_service")
    expect(pump.get_by_test_id("alarm-state")).to_have_text("Out of service")
    expect(pump_panel.get_by_test_id("alarm-history")).to_contain_text("probe swap")
    pump.get_by_test_id("return-button").click()
    expect(pump).to_have_attribute("data-state", "suppressed")

    # unshelved, the root is annunciated again: its condition is still active
    feeder.get_by_test_id("unshelve-button").click()
    expect(feeder).to_have_count(0)
    page.get_by_test_id("view-open").click()
    expect(feeder).to_have_attribute("data-state", "unacknowledged")

    history = httpx.get(f"{url}{API}/alarms/{FEEDER}/history", timeout=5).json()
    moves = [(e["data"]["event"], e["actor"]) for e in reversed(history)]
    assert moves == [
        ("activate", "detector"),
        ("acknowledge", "ann"),
        ("shelve", "ann"),
        ("unshelve", "ann"),
    ]
    pump_moves = [
        e["data"].get("note") for e in httpx.get(f"{url}{API}/alarms/{PUMP}/history").json()
    ]
    assert "probe swap" in pump_moves


def test_flood_banner_folds_lower_priorities(page: Page, served: tuple[str, Runtime]) -> None:
    from playwright.sync_api import expect

    url, runtime = served
    now = runtime.clock.now()
    _raise_feeder_group(runtime, now - 60)
    expect(_row(page, FEEDER)).to_have_count(1, timeout=10_000)
    expect(page.get_by_test_id("flood-banner")).to_be_hidden()

    # twelve more alarms at the same position within a minute of data time
    cycle = [Priority.LOW, Priority.HIGH, Priority.MEDIUM, Priority.EMERGENCY]
    runtime.alarms.on_external(
        ExternalAlert(
            name=f"probe-{i}",
            asset=f"ext-{i}",
            time=now - 50 + i,
            firing=True,
            priority=cycle[i % 4],
            message=f"external probe {i} failing",
        )
        for i in range(12)
    )
    floods = httpx.get(f"{url}{API}/alarms/floods", timeout=5).json()
    assert floods == [
        {
            "position": "control-room",
            "flood": True,
            "count": 13,  # the root and the twelve; its consequences were never annunciated
            "since": pytest.approx(now - 39, abs=1e-3),
            "window": 600.0,
            "limit": 10,
        }
    ]
    banner = page.get_by_test_id("flood-banner")
    expect(banner).to_be_visible(timeout=10_000)
    expect(banner).to_have_text("ALARM FLOOD — control-room: 13 alarms in 10 min (limit 10)")

    # high and emergency first; the six medium and low fold into one line
    rows = page.get_by_test_id("alarm-row")
    expect(rows).to_have_count(7)
    priorities = [rows.nth(i).get_attribute("data-priority") for i in range(7)]
    assert priorities == ["emergency"] * 3 + ["high"] * 4
    folded = page.get_by_test_id("flood-folded")
    expect(folded).to_contain_text(
        "6 lower-priority alarms at control-room folded during the flood (3 medium, 3 low)"
    )
    folded.get_by_test_id("flood-fold-toggle").click()
    expect(rows).to_have_count(13)
    priorities = [rows.nth(i).get_attribute("data-priority") for i in range(13)]
    assert priorities[7:] == ["medium"] * 3 + ["low"] * 3
    low = _row(page, "ext-0:external:probe-0")
    expect(low.locator(".prio-badge")).to_have_text("Low")
    expect(low.locator(".msg-text")).to_have_text("external probe 0 failing")

    # the picture for the record: flood, the root's consequences and its journal open
    _row(page, FEEDER).get_by_test_id("consequences-toggle").click()
    expect(_group(page, FEEDER).get_by_test_id("consequence-row")).to_have_count(2)
    _row(page, FEEDER).get_by_test_id("actions-toggle").click()
    expect(_group(page, FEEDER).get_by_test_id("history-entry")).to_have_count(1)
    page.emulate_media(reduced_motion="reduce")  # the badges steady: not caught mid-blink
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-alarms.png"), full_page=True)
