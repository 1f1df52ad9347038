"""`nexus serve`."""

from __future__ import annotations


def serve() -> None:
    """Serve the API and dashboard for a site, fed by live sources."""
    raise NotImplementedError
