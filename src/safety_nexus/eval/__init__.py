"""Evaluation harnesses: detection against ground truth (NAB, BATADAL, scenarios come here)."""

from __future__ import annotations
