"""`nexus demo`."""

from __future__ import annotations


def demo() -> None:
    """Run the demo city live: simulator, pipeline, API and dashboard on 127.0.0.1:8000."""
    raise NotImplementedError
