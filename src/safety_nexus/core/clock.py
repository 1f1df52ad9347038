"""Time comes from one injectable clock, never from `time.time()` deep inside logic.

Timestamps throughout Safety Nexus are float seconds since the Unix epoch (UTC). In the demo
and in tests the simulator drives a `ManualClock`, so the whole pipeline runs on simulated time.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch, UTC."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to; never goes backwards. Thread-safe."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._t

    def set(self, t: float) -> None:
        with self._lock:
            if t > self._t:
                self._t = float(t)

    def advance(self, dt: float) -> None:
        if dt < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._t += dt
