"""What every telemetry source hands its data to, and what a subscribing source looks like.

A source turns its protocol's messages into a `ParsedBatch` (signal columns, times, values)
and gives it to the `Intake` (the runtime): one path for every source, so validation, the
write-ahead log, the reorder buffer, de-duplication and backpressure are the same whether the
samples came over HTTP, MQTT, OPC UA, Prometheus remote-write or a replay.

    intake.ingest_parsed(batch, wait=True)   blocks while the pipeline is full (backpressure:
                                             an MQTT consumer stops reading, the broker holds
                                             the messages); wait=False raises IngestError 503
    intake.phantom(source, seen, detail)     something arrived that the site does not declare
                                             (an unknown source, topic, node or series): it is
                                             reported as a "phantom source" finding, never
                                             silently dropped
    intake.reject(reason, count)             samples the source itself refused (a bad status
                                             code, a value that is not a number): counted
                                             under nexus_ingest_rejected{reason}

A `LiveSource` runs on its own thread (started and stopped by the runtime) until `stop` is set;
it must return within a second or so of that.
"""

from __future__ import annotations

import threading
from typing import Protocol

from safety_nexus.core.types import SignalTable
from safety_nexus.ingest.json_batch import ParsedBatch


class Intake(Protocol):
    @property
    def table(self) -> SignalTable: ...

    def ingest_parsed(self, parsed: ParsedBatch, *, wait: bool = False, log: bool = True) -> int:
        """Validate and accept a batch; returns the samples accepted. Raises IngestError."""
        ...

    def phantom(self, source: str, seen: str, detail: str) -> None:
        """Report data from something the site does not declare (rate-limited by the runtime)."""
        ...

    def reject(self, reason: str, count: int = 1) -> None:
        """Count samples a source refused before they became a batch (a bad OPC UA status
        code, a value that is not a number), by reason, as rejected batches are counted."""
        ...


class LiveSource(Protocol):
    name: str

    def run(self, intake: Intake, stop: threading.Event) -> None:
        """Subscribe and hand batches to `intake` until `stop` is set."""
        ...
