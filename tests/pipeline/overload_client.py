"""Load generator for test_overload.py, run as its own process: one thread per source, each
sending numbered 5,000-sample JSON batches as fast as the server takes them and resending a
refused batch (same number, same body) at once, ignoring Retry-After: an overload, on purpose.
Prints one JSON line: per source, the last acknowledged sequence, and the counts of answers."""

from __future__ import annotations

import json
import sys
import threading
import time

import httpx

ROWS = 100  # x 50 signals = 5,000 samples per batch
SIGNALS = 50
PREBUILT = 40  # bodies built before the clock starts, so that the load is not our JSON


def body(asset: str, seq: int, t0: float) -> bytes:
    samples = [
        {"signal": f"{asset}.s{j}", "time": t0 + seq * ROWS + r, "value": seq * 100 + j}
        for r in range(ROWS)
        for j in range(SIGNALS)
    ]
    return json.dumps({"samples": samples}).encode()


def run(
    port: int,
    asset: str,
    t0: float,
    seconds: float,
    out: dict[str, object],
    ready: threading.Barrier,
) -> None:
    url = f"http://127.0.0.1:{port}/api/v1/telemetry"
    acked = 0
    answers: dict[str, int] = {}
    bodies = {seq: body(asset, seq, t0) for seq in range(1, PREBUILT + 1)}
    ready.wait()
    with httpx.Client(timeout=30) as client:
        seq = 1
        content = bodies[seq]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            headers = {
                "content-type": "application/json",
                "X-Nexus-Source": f"gw-{asset}",
                "X-Nexus-Sequence": str(seq),
            }
            try:
                r = client.post(url, content=content, headers=headers)
                code = str(r.status_code)
                if r.status_code == 503 and r.headers.get("retry-after") is None:
                    code = "503-without-retry-after"
            except httpx.HTTPError as err:
                code = type(err).__name__
            answers[code] = answers.get(code, 0) + 1
            if code in ("202", "200"):
                acked = seq
                seq += 1
                content = bodies.pop(seq, None) or body(asset, seq, t0)
    out[asset] = {"acked": acked, "answers": answers}


def main() -> None:
    port, seconds, t0 = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    assets = sys.argv[4:]
    out: dict[str, object] = {}
    ready = threading.Barrier(len(assets))
    threads = [
        threading.Thread(target=run, args=(port, a, t0, seconds, out, ready)) for a in assets
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
