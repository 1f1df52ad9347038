"""A real HTTP server on 127.0.0.1 that records the JSON POSTed to it: a webhook receiver (or a
stand-in Alertmanager) for the notification tests. Answers 200 unless told otherwise."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # the parsed JSON


class WebhookRecorder:
    """`answers`: statuses for the next requests, in order (then 200). `gate`: requests wait
    until it is set (it is, unless a test clears it to hold the receiver up)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.arrived = 0  # requests read, answered or not yet
        self.answers: deque[int] = deque()
        self.gate = threading.Event()
        self.gate.set()
        self._cond = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                with recorder._cond:
                    recorder.arrived += 1
                    recorder._cond.notify_all()
                recorder.gate.wait(30)
                with recorder._cond:
                    status = recorder.answers.popleft() if recorder.answers else 200
                    if status < 300:
                        headers = {k.lower(): v for k, v in self.headers.items()}
                        recorder.received.append(Received(self.path, headers, json.loads(raw)))
                    recorder._cond.notify_all()
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait(self, n: int, timeout: float = 10.0) -> list[Received]:
        """The first `n` requests recorded (fails the test after `timeout` seconds)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.received) >= n, timeout=timeout):
                raise AssertionError(f"{len(self.received)} of {n} requests after {timeout} s")
            return list(self.received[:n])

    def wait_arrived(self, n: int, timeout: float = 10.0) -> None:
        """Until `n` requests have arrived (held at the gate or answered)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.arrived >= n, timeout=timeout):
                raise AssertionError(f"{self.arrived} of {n} requests after {timeout} s")

    def settle(self, quiet: float = 0.2) -> list[Received]:
        """Everything recorded once nothing new has arrived for `quiet` seconds."""
        seen = -1
        while seen != len(self.received):
            seen = len(self.received)
            time.sleep(quiet)
        return list(self.received)

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)
