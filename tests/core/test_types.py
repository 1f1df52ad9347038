from __future__ import annotations

import numpy as np
import pytest

from safety_nexus.core.clock import ManualClock
from safety_nexus.core.errors import ConfigError, ConfigIssue, DetectError
from safety_nexus.core.types import Criticality, Finding, FindingKind, Frame, Priority


def test_manual_clock_never_goes_backwards() -> None:
    clock = ManualClock(100.0)
    clock.set(90.0)
    assert clock.now() == 100.0
    clock.advance(5)
    assert clock.now() == 105.0
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


def test_frame_checks_shapes() -> None:
    with pytest.raises(DetectError, match="2 times but 3 rows"):
        Frame(np.zeros(2), np.zeros((3, 4)))
    with pytest.raises(DetectError, match="shape"):
        Frame(np.zeros((2, 1)), np.zeros((2, 4)))
    f = Frame(np.arange(3.0), np.zeros((3, 5)))
    assert (f.n_rows, f.n_signals) == (3, 5)


def test_priority_follows_criticality() -> None:
    assert [Priority.from_criticality(c) for c in Criticality] == list(Priority)
    assert Priority.EMERGENCY.label == "emergency"


def test_finding_explains_itself_in_units_and_sigmas() -> None:
    f = Finding(
        time=0.0,
        signal="pump-1.pressure",
        asset="pump-1",
        kind=FindingKind.LEVEL_SHIFT,
        score=1.5,
        observed=4.2,
        baseline=4.5,
        sigma=0.05,
        unit="bar",
    )
    assert f.deviation == pytest.approx(-0.3)
    assert f.sigmas == pytest.approx(-6.0)
    assert f.explain() == (
        "pump-1.pressure: level shift, observed 4.2 bar vs baseline 4.5 bar (-0.3 bar, -6.0σ)"
    )


def test_config_error_lists_every_issue() -> None:
    err = ConfigError(
        [ConfigIssue("assets[0].id", "field required", 3), ConfigIssue("", "bad", None)], "x.yaml"
    )
    text = str(err)
    assert text.startswith("x.yaml: 2 error(s)")
    assert "line 3: assets[0].id: field required" in text
