"""Parse large telemetry batches in worker processes, beside the pipeline.

Decoding a batch (JSON or line protocol) is the heaviest per-sample part of ingest and is pure
Python. In the server's own process it takes turns with the pipeline for the interpreter lock,
so the two together cannot use more than one core. A `ParsePool` hands bodies of at least
`min_bytes` to `workers` spawned processes, each holding a copy of the signal table; they return
the same `ParsedBatch` or raise the same `IngestError` that parsing in place would. Smaller
bodies are parsed in place, where the round trip would cost more than it saves (and tests and
small sites never start a process).

The processes start with the first large body. A worker that dies (killed, out of memory)
breaks the pool: the batch in hand is parsed in place, the broken pool is shut down, and the
next large body starts a new one. Nothing is lost, and each break is logged. `close` stops
the workers; a body that arrives afterwards is parsed in place.

With `workers=0` everything is parsed in place.

>>> from safety_nexus.detect.testing import make_table
>>> pool = ParsePool(make_table(2), workers=0)
>>> batch = pool.json(b'{"samples": [{"signal": "a1.s1", "time": 5, "value": 2.5}]}')
>>> batch.columns.tolist(), batch.values.tolist()
([1], [2.5])
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from safety_nexus.core.types import SignalTable
from safety_nexus.ingest.json_batch import ParsedBatch, parse_json_batch
from safety_nexus.ingest.lineprotocol import parse_line_protocol

log = logging.getLogger(__name__)

MIN_BYTES = 64 * 1024  # below this a body is parsed in place (about 1,000 samples of JSON)

# The worker's copy of the signal table, set once when the worker starts.
_table: SignalTable | None = None


def _start_worker(table: SignalTable) -> None:
    global _table
    _table = table


def _worker_table() -> SignalTable:
    if _table is None:  # not reached: the pool starts every worker with the table
        raise RuntimeError("parse worker started without a signal table")
    return _table


def _json(body: bytes) -> ParsedBatch:
    return parse_json_batch(body, _worker_table())


def _line_protocol(
    body: bytes, now: float, precision: str, source: str, names: Mapping[str, str] | None
) -> ParsedBatch:
    return parse_line_protocol(
        body, _worker_table(), now=now, precision=precision, source=source, names=names
    )


class ParsePool:
    """Parses bodies of at least `min_bytes` in `workers` processes, smaller ones in place.
    Thread-safe: request threads call it concurrently."""

    def __init__(self, table: SignalTable, workers: int, *, min_bytes: int = MIN_BYTES) -> None:
        if workers < 0:
            raise ValueError("workers must be >= 0")
        self.table = table
        self.workers = workers
        self.min_bytes = min_bytes
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False
        self.breaks = 0  # pools lost to a dead worker

    def json(self, body: bytes) -> ParsedBatch:
        """A JSON batch (see `ingest.json_batch`)."""
        return self._parse(body, (_json, body), lambda: parse_json_batch(body, self.table))

    def line_protocol(
        self,
        body: bytes,
        *,
        now: float,
        precision: str = "ns",
        source: str = "http",
        names: Mapping[str, str] | None = None,
    ) -> ParsedBatch:
        """A line-protocol batch (see `ingest.lineprotocol`)."""
        names = dict(names) if names else None
        return self._parse(
            body,
            (_line_protocol, body, now, precision, source, names),
            lambda: parse_line_protocol(
                body, self.table, now=now, precision=precision, source=source, names=names
            ),
        )

    def close(self) -> None:
        """Stop the workers (waiting for the batches they hold); later bodies parse in place."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    @property
    def running(self) -> bool:
        """Whether worker processes are started."""
        return self._pool is not None

    def _parse(
        self, body: bytes, call: tuple[Any, ...], here: Callable[[], ParsedBatch]
    ) -> ParsedBatch:
        if self.workers == 0 or len(body) < self.min_bytes:
            return here()
        pool = self._current()
        if pool is None:
            return here()
        try:
            return pool.submit(*call).result()  # type: ignore[no-any-return]
        except (BrokenProcessPool, CancelledError, RuntimeError) as err:
            # RuntimeError: the pool was shut down (by close, or after a break) in between.
            if isinstance(err, BrokenProcessPool):
                self._broken(pool, err)
            return here()

    def _current(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._closed:
                return None
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=(self.table,),
                )
            return self._pool

    def _broken(self, pool: ProcessPoolExecutor, err: BaseException) -> None:
        with self._lock:
            if self._pool is not pool:
                return  # another thread saw it first
            self._pool = None
            self.breaks += 1
        log.warning("a parse worker died (%s): parsing in place until a new pool starts", err)
        pool.shutdown(wait=False, cancel_futures=True)
