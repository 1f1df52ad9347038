"""At most one report per key per interval, in bounded memory.

Ingestion raises findings about the data itself (a phantom source, a value a sensor cannot
report, a sender's clock): a broken device repeats its fault on every message, and one finding
per `every` seconds per key is what an operator wants. The keys remembered are bounded: beyond
`max_keys` the oldest is forgotten, so at worst one of them is reported again early.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable


class Throttle:
    """`due(key, now)` is True at most once per `every` seconds per key. Thread-safe."""

    def __init__(self, every: float, *, max_keys: int = 10_000) -> None:
        self.every = every
        self._max_keys = max_keys
        self._last: dict[Hashable, float] = {}
        self._lock = threading.Lock()

    def due(self, key: Hashable, now: float) -> bool:
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.every:
                return False
            if last is None and len(self._last) >= self._max_keys:
                del self._last[next(iter(self._last))]  # dicts keep insertion order
            self._last[key] = now
            return True
