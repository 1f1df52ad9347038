from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO_CITY = REPO / "sites" / "demo-city.yaml"


@pytest.fixture(scope="session")
def demo_city() -> Path:
    return DEMO_CITY
