"""The site model: YAML schema, loading with line-accurate errors, the dependency graph."""

from __future__ import annotations
