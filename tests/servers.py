"""Real servers for tests: start a Debian-packaged daemon on 127.0.0.1, wait until it listens,
stop it afterwards. Each test module builds its own fixture on `ServerProcess`; a missing
binary fails the test (the Makefile's `system-deps` installs them), it never skips."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class ServerProcess:
    """One daemon process; its output goes to `log` (read it when a test fails)."""

    def __init__(self, argv: Sequence[str], port: int, log: Path, *, timeout: float = 20.0) -> None:
        exe = shutil.which(argv[0]) or argv[0]
        if not Path(exe).exists():
            raise FileNotFoundError(f"{argv[0]} is not installed (run `make system-deps`)")
        self.port = port
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen([exe, *argv[1:]], stdout=self._out, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, timeout, self.proc)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serve_api(runtime: Any) -> Iterator[str]:
    """The runtime's API and dashboard behind uvicorn on a free loopback port, as its base URL;
    on exit the server stops, then the runtime."""
    import threading

    import uvicorn

    from safety_nexus.api.app import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert server.started, "the API server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()
