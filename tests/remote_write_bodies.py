"""Prometheus remote-write requests as a sender builds them (shared by the receiver's tests)."""

from __future__ import annotations

from typing import Any

import cramjam

from safety_nexus.ingest import remote_write as rw

Series = list[tuple[dict[str, str], list[tuple[float, int]]]]  # (labels, [(value, ms)])


def write_request(series: Series) -> Any:
    req = rw.WriteRequest()
    for labels, samples in series:
        ts = req.timeseries.add()
        for k, v in labels.items():
            ts.labels.add(name=k, value=v)
        for value, stamp in samples:
            ts.samples.add(value=value, timestamp=stamp)
    return req


def write_body(series: Series) -> bytes:
    """A request's body on the wire: protobuf, snappy block format."""
    return bytes(cramjam.snappy.compress_raw(write_request(series).SerializeToString()))
