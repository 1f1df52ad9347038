"""HTTP and WebSocket API; `ui/` holds the static dashboard it serves."""

from __future__ import annotations

from safety_nexus.api.app import create_app

__all__ = ["create_app"]
