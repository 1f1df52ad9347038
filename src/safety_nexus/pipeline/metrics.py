"""Prometheus metrics of one runtime (its own registry, so tests can build many runtimes)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from safety_nexus.core.types import Finding, Frame


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.samples = Counter(
            "nexus_samples_processed", "Samples through the pipeline", ["source"], registry=r
        )
        self.rejected = Counter(
            "nexus_ingest_rejected",
            "Batches or messages rejected at ingestion, by reason",
            ["reason"],
            registry=r,
        )
        self.accepted = Counter(
            "nexus_ingest_accepted_samples", "Samples accepted at ingestion", ["source"], registry=r
        )
        self.phantom = Counter(
            "nexus_ingest_phantom",
            "Messages from sources, topics, nodes or signals the site does not declare",
            ["source"],
            registry=r,
        )
        self.findings_total = Counter(
            "nexus_findings", "Findings raised by the detector bank", ["kind"], registry=r
        )
        self.open_alarms = Gauge("nexus_open_alarms", "Alarms on the operators' list", registry=r)
        self.queue_depth = Gauge("nexus_pipeline_queue_depth", "Batches waiting", registry=r)
        self.batch_seconds = Histogram(
            "nexus_pipeline_batch_seconds",
            "Time to run one batch through the pipeline",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )

    def samples_processed(self, source: str, frame: Frame) -> None:
        self.samples.labels(source).inc(int(np.count_nonzero(~np.isnan(frame.values))))

    def findings(self, findings: Iterable[Finding]) -> None:
        for f in findings:
            self.findings_total.labels(f.kind.value).inc()

    def reject(self, reason: str) -> None:
        self.rejected.labels(reason).inc()

    def rejected_count(self, reason: str) -> float:
        value = self.registry.get_sample_value("nexus_ingest_rejected_total", {"reason": reason})
        return value or 0.0
