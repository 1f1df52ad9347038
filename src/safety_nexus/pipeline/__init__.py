"""pipeline."""

from __future__ import annotations
