"""Live events from the pipeline thread to WebSocket subscribers on the event loop.

Each subscriber gets a bounded queue; a subscriber that falls behind loses its oldest events
rather than slowing the pipeline (the dashboard reloads full state on reconnect anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # "alarm" | "finding" | "status" | ...
    payload: object


class Subscription:
    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def _put(self, event: Event) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def get(self) -> Event:
        return await self.queue.get()


class EventHub:
    def __init__(self, maxsize: int = 1000) -> None:
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self._maxsize = maxsize

    def subscribe(self) -> Subscription:
        sub = Subscription(asyncio.get_running_loop(), self._maxsize)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def publish(self, type_: str, payload: object) -> None:
        """Callable from any thread."""
        event = Event(type_, payload)
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            if sub.loop.is_closed():
                self.unsubscribe(sub)
                continue
            with contextlib.suppress(RuntimeError):  # loop closed between the check and the call
                sub.loop.call_soon_threadsafe(sub._put, event)
