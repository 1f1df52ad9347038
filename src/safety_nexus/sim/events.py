"""The simulator's deterministic event core (after SimPy): ordered by time, priority, counter.

Time here is an integer tick index, not float seconds, so that "is this event due?" never
depends on rounding: a fault scheduled for 12.5 s on a 1 s tick fires on tick 13 whichever way
the simulator is stepped. Among events due on the same tick, a lower priority value comes first
(faults end before new ones start, so a back-to-back pair never overlaps), and among equals the
one scheduled first comes first: the counter makes the order total, hence reproducible.

>>> q: Timeline[str] = Timeline()
>>> q.schedule(5, "b", priority=1)
>>> q.schedule(5, "a", priority=0)
>>> q.schedule(3, "c")
>>> q.pop_due(4), q.pop_due(5), q.pop_due(99)
(['c'], ['a', 'b'], [])
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

END = 0  # an active thing stops being active on its tick...
START = 1  # ...before anything new starts on the same tick


@dataclass(order=True, slots=True)
class _Entry(Generic[T]):
    tick: int
    priority: int
    counter: int
    item: T = field(compare=False)


class Timeline(Generic[T]):
    """A priority queue of items keyed by (tick, priority, insertion order)."""

    def __init__(self) -> None:
        self._heap: list[_Entry[T]] = []
        self._counter = 0

    def schedule(self, tick: int, item: T, *, priority: int = START) -> None:
        heapq.heappush(self._heap, _Entry(tick, priority, self._counter, item))
        self._counter += 1

    def pop_due(self, tick: int) -> list[T]:
        """Remove and return, in order, every item due at or before `tick`."""
        out: list[T] = []
        heap = self._heap
        while heap and heap[0].tick <= tick:
            out.append(heapq.heappop(heap).item)
        return out

    def next_tick(self) -> int | None:
        return self._heap[0].tick if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)

    def __iter__(self) -> Iterator[T]:
        """Pending items in the order they will fire (does not consume them)."""
        return (e.item for e in sorted(self._heap))
