from __future__ import annotations

import doctest

import safety_nexus.sim.events as events
import safety_nexus.sim.simulator as simulator
from safety_nexus.sim.events import END, START, Timeline


def test_examples_in_docstrings_hold() -> None:
    for module in (events, simulator):
        result = doctest.testmod(module, raise_on_error=False)
        assert result.failed == 0, module.__name__


def test_order_is_tick_then_priority_then_insertion() -> None:
    q: Timeline[str] = Timeline()
    q.schedule(2, "start-x", priority=START)
    q.schedule(2, "end-y", priority=END)
    q.schedule(1, "first")
    q.schedule(2, "start-z", priority=START)
    assert list(q) == ["first", "end-y", "start-x", "start-z"]
    assert q.next_tick() == 1
    assert q.pop_due(0) == []
    assert q.pop_due(1) == ["first"]
    assert q.pop_due(10) == ["end-y", "start-x", "start-z"]
    assert len(q) == 0
    assert q.next_tick() is None
