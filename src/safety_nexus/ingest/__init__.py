"""Ingestion: sources of telemetry, their parsing and validation, and the frame assembler."""

from __future__ import annotations
