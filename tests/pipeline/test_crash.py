"""Kill -9 in the middle of a load: every acknowledged sample is stored exactly once.

A real `nexus serve` process takes numbered batches from two gateways (unsigned sources that
send X-Nexus-Source and X-Nexus-Sequence). Mid-load it is killed with SIGKILL; a new process
starts on the same data directory, the gateways resend the batch whose answer they lost and
carry on, and the second process is stopped cleanly. The history then holds each acknowledged
sample exactly once: every sample carries a unique (signal, time) and a value that encodes both.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from safety_nexus.site.load import load_file
from safety_nexus.site.table import signal_table
from safety_nexus.store.history import HistoryStore
from safety_nexus.store.sqlite import SqliteStore
from servers import free_port, wait_for_port

pytestmark = pytest.mark.slow

SITE = """
version: 1
site: {name: crash-test}
subsystems: [{id: power, name: Power}]
assets:
  - id: feeder
    subsystem: power
    type: feeder
    criticality: high
    signals:
      - {name: a, unit: A, normal: [0, 1000000], period: 1s}
      - {name: b, unit: A, normal: [0, 1000000], period: 1s}
      - {name: c, unit: A, normal: [0, 1000000], period: 1s}
      - {name: d, unit: A, normal: [0, 1000000], period: 1s}
sources:
  - {id: gw-1, kind: http}
  - {id: gw-2, kind: http}
"""
SIGNALS = {"gw-1": ["feeder.a", "feeder.b"], "gw-2": ["feeder.c", "feeder.d"]}


def _serve(site: Path, data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("nexus")
    argv = [str(exe), "serve", "--site", str(site), "--data-dir", str(data), "--port", str(port)]
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(port, 60, proc)
    return proc


class Gateway:
    """Sends numbered batches; a batch counts as acknowledged only when the answer came."""

    def __init__(self, name: str, t0: float) -> None:
        self.name = name
        self.signals = SIGNALS[name]  # each gateway has its own signals
        self.t0 = t0
        self.sequence = 0
        self.acked: list[int] = []
        self.unanswered: int | None = None
        self.duplicates = 0

    def body(self, seq: int) -> bytes:
        samples = []
        for row in range(10):
            t = self.t0 + (seq * 10 + row)
            for j, sig in enumerate(self.signals):
                # value = sequence * 1000 + row * 10 + signal: unique, checkable
                samples.append({"signal": sig, "time": t, "value": seq * 1000 + row * 10 + j})
        return json.dumps({"samples": samples}).encode()

    def send(self, client: httpx.Client, port: int, seq: int) -> bool:
        headers = {
            "content-type": "application/json",
            "X-Nexus-Source": self.name,
            "X-Nexus-Sequence": str(seq),
        }
        try:
            r = client.post(
                f"http://127.0.0.1:{port}/api/v1/telemetry",
                content=self.body(seq),
                headers=headers,
                timeout=10,
            )
        except httpx.HTTPError:
            return False
        if r.status_code == 200 and r.json()["duplicate"]:
            self.duplicates += 1
            return True
        assert r.status_code == 202, r.text
        return True

    def run(self, port: int, stop: threading.Event, pace: float = 0.002) -> None:
        with httpx.Client() as client:
            while not stop.is_set():
                seq = self.unanswered if self.unanswered is not None else self.sequence + 1
                if self.send(client, port, seq):
                    if seq not in self.acked:
                        self.acked.append(seq)
                    self.sequence = max(self.sequence, seq)
                    self.unanswered = None
                else:
                    self.unanswered = seq  # the server went away: resend it later
                    return
                time.sleep(pace)


def test_kill_9_mid_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(SITE, encoding="utf-8")
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    t0 = float(int(time.time()) - 100_000)  # the past: no clock-skew refusals, fast release
    gateways = [Gateway("gw-1", t0), Gateway("gw-2", t0)]

    port = free_port()
    proc = _serve(site, data, port, log)
    stop = threading.Event()
    threads = [threading.Thread(target=g.run, args=(port, stop)) for g in gateways]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while min(len(g.acked) for g in gateways) < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # mid-load: the gateways are still sending
    proc.wait(10)
    for t in threads:
        t.join(30)
    acked_before = [len(g.acked) for g in gateways]
    assert min(acked_before) >= 150, log.read_text()

    port = free_port()
    proc = _serve(site, data, port, log)
    try:
        stop.clear()
        threads = [threading.Thread(target=g.run, args=(port, stop)) for g in gateways]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while (
            min(len(g.acked) - n for g, n in zip(gateways, acked_before, strict=True)) < 50
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(30)
    finally:
        proc.send_signal(signal.SIGTERM)  # a clean stop: the history is sealed
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(60)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, log.read_text()[-3000:]

    table = signal_table(load_file(site))
    history = HistoryStore(data / "history", table)
    try:
        for g in gateways:
            assert g.unanswered is None
            assert sorted(g.acked) == list(range(1, len(g.acked) + 1))  # no gaps
            assert len(g.acked) > acked_before[gateways.index(g)]
            for j, sig in enumerate(g.signals):
                _, values = history.read(sig, -np.inf, np.inf, max_points=10**9)
                got = np.sort(values)
                want = np.sort(
                    [s * 1000 + row * 10 + j for s in g.acked for row in range(10)]
                ).astype(np.float64)
                assert got.size == want.size, (g.name, sig, got.size, want.size)
                np.testing.assert_array_equal(got, want)
    finally:
        history.close()
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    # The kill left acknowledged batches short of the history: the restart processed them.
    store = SqliteStore(data / "nexus.db")
    try:
        recovered = store.events(kind="ingest.recovered")
    finally:
        store.close()
    assert recovered, "the kill left nothing to recover: the test proves nothing"
    assert recovered[0].data["samples"] > 0
