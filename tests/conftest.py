from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO_CITY = REPO / "sites" / "demo-city.yaml"


@pytest.fixture(scope="session")
def demo_city() -> Path:
    return DEMO_CITY


@pytest.fixture(scope="session")
def datasets() -> Path:
    """The public benchmark data: $NEXUS_DATA, else ../shared/datasets next to the checkout.
    Tests that need it skip, saying why, where neither exists."""
    env = os.environ.get("NEXUS_DATA")
    root = Path(env) if env else REPO.parent / "shared" / "datasets"
    if not root.is_dir():
        pytest.skip(f"benchmark data not found at {root} (set NEXUS_DATA)")
    return root
