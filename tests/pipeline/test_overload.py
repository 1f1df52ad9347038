"""Several times the load the server can take: no crash, bounded memory, acknowledged data
intact.

`nexus serve` runs in its own process; load generators in two other processes send numbered
5,000-sample batches from 16 sources as fast as they can, resending refused batches at once. The
server must refuse the excess cheaply (503 with Retry-After, before reading the body), keep its
memory under MEMORY_BOUND, and store every acknowledged sample exactly once.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from safety_nexus.pipeline.builder import RuntimeSettings, build_runtime
from safety_nexus.site.load import load_file
from safety_nexus.site.table import signal_table
from safety_nexus.store.history import HistoryStore
from servers import free_port, wait_for_port

pytestmark = pytest.mark.slow

ASSETS = [f"a{i}" for i in range(16)]
# The stated bound: the queue holds at most 256 frames of 100 rows x 800 signals (~160 MB of
# floats, if every frame held one source); the interpreter, libraries and buffers add ~200 MB;
# the server's parse workers count too (ingest.parse_pool: one per CPU beyond the first).
MEMORY_BOUND = 600 * 1024 * 1024
SECONDS = 12.0


def _site() -> str:
    lines = [
        "version: 1",
        "site: {name: overload-test}",
        "subsystems: [{id: power, name: Power}]",
        "assets:",
    ]
    for a in ASSETS:
        lines += [f"  - id: {a}", "    type: feeder", "    subsystem: power", "    signals:"]
        lines += [f"      - {{name: s{j}, normal: [0, 1000000], period: 1s}}" for j in range(50)]
    lines.append("sources:")
    lines += [f"  - {{id: gw-{a}, kind: http}}" for a in ASSETS]
    return "\n".join(lines) + "\n"


def test_overload_is_refused_cheaply_and_loses_nothing(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(_site(), encoding="utf-8")
    data = tmp_path / "data"
    port = free_port()
    exe = Path(sys.executable).with_name("nexus")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(exe), "serve", "--site", str(site), "--data-dir", str(data), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, 60, server)
        peak = [0]
        stop = threading.Event()

        def watch() -> None:  # the server and its parse workers (ingest.parse_pool)
            proc = psutil.Process(server.pid)
            while not stop.is_set():
                rss = proc.memory_info().rss
                for child in proc.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        rss += child.memory_info().rss
                peak[0] = max(peak[0], rss)
                time.sleep(0.1)

        watcher = threading.Thread(target=watch)
        watcher.start()
        t0 = float(int(time.time()) - 10_000_000)
        client = Path(__file__).with_name("overload_client.py")
        halves = [ASSETS[i::4] for i in range(4)]
        loads = [
            subprocess.Popen(
                [sys.executable, str(client), str(port), str(SECONDS), str(t0), *half],
                stdout=subprocess.PIPE,
                text=True,
            )
            for half in halves
        ]
        results: dict[str, dict[str, object]] = {}
        for p in loads:
            text, _ = p.communicate(timeout=SECONDS + 120)
            assert p.returncode == 0
            results.update(json.loads(text))
        stop.set()
        watcher.join()
        assert server.poll() is None, "the server died under load"
    finally:
        server.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(120)
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, log.read_text()[-3000:]

    answers: dict[str, int] = {}
    for r in results.values():
        for code, n in r["answers"].items():  # type: ignore[attr-defined]
            answers[code] = answers.get(code, 0) + n
    accepted = answers.get("202", 0)
    refused = answers.get("503", 0)
    offered = sum(answers.values())
    print(f"answers {answers}, peak RSS {peak[0] / 2**20:.0f} MB")
    assert set(answers) <= {"202", "503"}, answers  # no 5xx but 503, no errors, no 409
    # The offered load as a multiple of what the server took: alone on the machine the two
    # load processes offer about 10x; beside the rest of the suite, less. The test needs a
    # real overload (refusals), not a particular ratio, which depends on what else runs.
    print(f"offered {offered / max(accepted, 1):.1f}x what was accepted")
    assert refused > 0, answers
    assert peak[0] < MEMORY_BOUND, f"peak RSS {peak[0] / 2**20:.0f} MB"

    # A stop under a backlog leaves the rest in the write-ahead log: the next start takes it.
    again = build_runtime(RuntimeSettings(site=site, data_dir=data, source="http"))
    again.start()
    again.stop()
    table = signal_table(load_file(site))
    history = HistoryStore(data / "history", table)
    try:
        for asset, r in results.items():
            acked = int(r["acked"])  # type: ignore[call-overload]
            assert acked > 0
            for j in range(0, 50, 7):
                _, values = history.read(f"{asset}.s{j}", -np.inf, np.inf, max_points=10**9)
                want = np.repeat(np.arange(1, acked + 1) * 100 + j, 100).astype(np.float64)
                np.testing.assert_array_equal(np.sort(values), want)
    finally:
        history.close()
