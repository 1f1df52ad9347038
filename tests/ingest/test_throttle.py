from __future__ import annotations

from safety_nexus.ingest.throttle import Throttle


def test_one_report_per_key_per_interval() -> None:
    t = Throttle(10.0)
    assert t.due("a", 0.0)
    assert not t.due("a", 9.9)
    assert t.due("b", 5.0)  # keys are independent
    assert t.due("a", 10.0)


def test_memory_is_bounded_by_forgetting_the_oldest_key() -> None:
    t = Throttle(10.0, max_keys=2)
    assert t.due("a", 0.0)
    assert t.due("b", 0.0)
    assert t.due("c", 1.0)  # "a" is forgotten to make room
    assert not t.due("b", 2.0)
    assert t.due("a", 2.0)  # reported again early: the price of the bound
