from __future__ import annotations

from pathlib import Path

import pytest

from safety_nexus.site.load import load_file
from safety_nexus.site.schema import Site

DEMO_CITY = Path(__file__).resolve().parents[2] / "sites" / "demo-city.yaml"


@pytest.fixture(scope="session")
def demo_city() -> Site:
    return load_file(DEMO_CITY)
