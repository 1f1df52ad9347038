from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from safety_nexus.alarms.config import AlarmConfig
from safety_nexus.api.app import create_app
from safety_nexus.pipeline.builder import RuntimeSettings, SimulatorSettings, build_runtime
from safety_nexus.pipeline.runtime import Runtime


@pytest.fixture
def http_runtime(tmp_path: Path, demo_city: Path) -> Iterator[Runtime]:
    """The demo city fed only by HTTP, with the pipeline worker running; no on-delay (the API
    tests raise alarms and act on them at once)."""
    runtime = build_runtime(
        RuntimeSettings(
            site=demo_city,
            data_dir=tmp_path,
            source="http",
            alarms=AlarmConfig(on_delay=0.0),
        )
    )
    runtime.start()
    yield runtime
    runtime.stop()


@pytest.fixture
def http_client(http_runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(http_runtime)) as client:
        yield client


@pytest.fixture
def sim_runtime(tmp_path: Path, demo_city: Path) -> Iterator[Runtime]:
    """The demo city driven synchronously by the simulator (the worker is not started)."""
    settings = RuntimeSettings(
        site=demo_city,
        data_dir=tmp_path,
        source="simulator",
        simulator=SimulatorSettings(seed=3, scenarios=[], warmup=300),
    )
    runtime = build_runtime(settings)
    yield runtime
    runtime.stop()
