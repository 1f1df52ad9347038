"""The dashboard in Chromium: an injected fault raises an alarm that is acknowledged."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from safety_nexus.pipeline.builder import RuntimeSettings, SimulatorSettings, build_runtime
from safety_nexus.pipeline.runtime import Runtime
from servers import serve_api

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def live_demo(tmp_path: Path, demo_city: Path) -> Iterator[tuple[str, Runtime]]:
    settings = RuntimeSettings(
        site=demo_city,
        data_dir=tmp_path,
        source="simulator",
        simulator=SimulatorSettings(seed=11, speed=20, rows_per_batch=1, scenarios=[]),
    )
    runtime = build_runtime(settings)
    source = runtime.simulator
    assert source is not None
    for _ in range(30):  # 300 simulated seconds of warm-up
        runtime.process_frame(source.name, source.sim.step(10))
    runtime.start()
    with serve_api(runtime) as url:
        yield url, runtime


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian's chromium is not installed")
def test_fault_alarm_appears_and_is_acknowledged(live_demo: tuple[str, Runtime]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, _runtime = live_demo
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            expect(page.get_by_test_id("subsystem-tile")).to_have_count(4)
            expect(page.get_by_test_id("connection-state")).to_contain_text(
                "live", ignore_case=True, timeout=10_000
            )

            r = httpx.post(f"{url}/api/v1/scenarios/S4/inject", timeout=5)
            assert r.status_code == 202

            row = page.locator('[data-testid="alarm-row"][data-state="unacknowledged"]').first
            expect(row).to_be_visible(timeout=60_000)
            alarm_id = row.get_attribute("data-alarm-id")
            assert alarm_id
            power = page.locator('[data-testid="subsystem-tile"][data-subsystem="power"]')
            expect(power).not_to_have_attribute("data-status", "normal", timeout=30_000)

            # the list re-sorts as alarms arrive: address the row by its alarm, not its place
            same = page.locator(f'[data-testid="alarm-row"][data-alarm-id="{alarm_id}"]')
            page.get_by_test_id("operator-name").fill("ann")  # no action without a name
            same.get_by_test_id("ack-button").click()
            # acknowledged while active, or closed (gone from the list) if it had returned
            expect(same.and_(page.locator('[data-state="unacknowledged"]'))).to_have_count(
                0, timeout=10_000
            )
            expect(page.get_by_test_id("trend-svg")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            state = httpx.get(f"{url}/api/v1/alarms/{alarm_id}", timeout=5).json()
            assert state["acknowledged_by"] == "ann", state
            assert not errors, errors
        finally:
            browser.close()
