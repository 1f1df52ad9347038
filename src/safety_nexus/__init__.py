"""Safety Nexus: monitoring for the interconnected safety systems of a city or a large plant."""

from __future__ import annotations

__version__ = "0.1.0"
