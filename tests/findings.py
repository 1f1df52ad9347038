"""Findings and recoveries for tests that feed the alarm layer directly."""

from __future__ import annotations

from safety_nexus.core.types import Finding, FindingKind, Recovery


def finding(
    signal: str, t: float, kind: FindingKind = FindingKind.LEVEL_SHIFT, *, unit: str = ""
) -> Finding:
    """A finding of `kind` on `signal` ("asset.name") at `t`, ten sigmas off its baseline."""
    return Finding(
        time=t,
        signal=signal,
        asset=signal.split(".")[0],
        kind=kind,
        score=3.0,
        observed=2.0,
        baseline=1.0,
        sigma=0.1,
        unit=unit,
        detector="test",
    )


def recovery(signal: str, t: float, kind: FindingKind = FindingKind.LEVEL_SHIFT) -> Recovery:
    return Recovery(time=t, signal=signal, asset=signal.split(".")[0], kind=kind)
