from __future__ import annotations

from dataclasses import dataclass

from safety_nexus.core.types import Finding, FindingKind
from safety_nexus.eval.detection import by_asset, match


@dataclass(frozen=True)
class _Label:
    signal: str
    start: float
    end: float | None
    effect: str = "level_shift"
    root_cause: str = "pump-1"
    scenario: str = "S4"


def _finding(signal: str, t: float) -> Finding:
    return Finding(t, signal, signal.split(".")[0], FindingKind.LEVEL_SHIFT, 1, 1, 0, 1)


def test_first_finding_inside_the_label_window_counts() -> None:
    labels = [
        _Label("pump-1.pressure", 100, 200),
        _Label("pump-1.flow", 100, None),
        _Label("main-1.pressure", 100, 150),
    ]
    findings = [
        _finding("pump-1.pressure", 90),  # before onset: not a detection
        _finding("pump-1.pressure", 112),
        _finding("pump-1.pressure", 105),
        _finding("pump-1.flow", 250),  # open-ended label: until the end of the run
        _finding("main-1.pressure", 151),  # after the label ended
    ]
    results = {r.signal: r for r in match(labels, findings, until=300)}
    assert results["pump-1.pressure"].delay == 5
    assert results["pump-1.flow"].delay == 150
    assert not results["main-1.pressure"].detected
    assets = {a.asset: a for a in by_asset(results.values())}
    assert assets["pump-1"].detected == 2
    assert assets["pump-1"].first_delay == 5
    assert assets["main-1"].first_delay is None
    assert [a.asset for a in by_asset(results.values())] == ["pump-1", "main-1"]
