"""`POST /api/v1/prom/write?source=<id>`: Prometheus remote-write 1.0 (see
`ingest.remote_write`).

Answers as Prometheus expects of a receiver: 204 when the batch is taken; 4xx for a batch that
will never be taken (Prometheus drops it, logging our message); 503 with Retry-After while the
pipeline is full (before the body is read, see `Runtime.admit`), which Prometheus retries with
backoff. Prometheus sends `Content-Type: application/x-protobuf` and `Content-Encoding: snappy`;
anything else is 415. Decoding runs on a worker thread, as the other ingest routes' parsing.
Remote-write 2.0 (`proto=io.prometheus.write.v2.Request`) is refused rather than misread: its
series sit in fields a 1.0 parser skips, so it would look like an empty batch.

`source` must be a site source of kind prometheus; such sources carry no `auth` (Prometheus
cannot sign a batch), so the signature rules of `ingest.auth` do not apply here: the operator
opts in per source, and only its mapped series are taken.

Unmapped series are counted in `nexus_ingest_phantom_total{source}` and those of a mapped
metric reported as phantom-source findings, once the batch is accepted (a batch refused with
503 comes back, and would be counted twice). Skipped ±Inf samples are counted one by one in
`nexus_ingest_rejected_total{reason="non_finite"}`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from starlette.concurrency import run_in_threadpool

from safety_nexus.api.deps import RuntimeDep
from safety_nexus.api.routes.telemetry import _body
from safety_nexus.core.errors import IngestError
from safety_nexus.ingest.remote_write import Decoded, SeriesMap, decode_write_request
from safety_nexus.pipeline.runtime import Runtime
from safety_nexus.site.schema import SourceKind

router = APIRouter(tags=["prometheus"])

CONTENT_TYPE = "application/x-protobuf"
PROTO_V1 = "prometheus.WriteRequest"


def build_series_maps(runtime: Runtime) -> dict[str, SeriesMap]:
    """Every prometheus source's map, checked once when the app is built: a series name that
    is not one fails the start (ConfigError), not each request."""
    return {
        s.id: SeriesMap.of(runtime.site, s, runtime.table)
        for s in runtime.site.sources
        if s.kind == SourceKind.PROMETHEUS
    }


def _series_map(request: Request, runtime: Runtime, source: str | None) -> SeriesMap:
    maps: dict[str, SeriesMap] | None = getattr(request.app.state, "series_maps", None)
    if maps is None:  # an app not built by create_app
        maps = request.app.state.series_maps = build_series_maps(runtime)
    if not source:
        raise IngestError(
            "remote-write needs ?source=<id> naming a prometheus source of the site",
            "unknown_source",
        )
    found = maps.get(source)
    if found is None:
        declared = next((s for s in runtime.site.sources if s.id == source), None)
        what = (
            f"source '{source}' is a {declared.kind.value} source, not prometheus"
            if declared is not None
            else f"unknown source '{source[:64]}'"
        )
        raise IngestError(what, "unknown_source")
    return found


def _check_headers(request: Request) -> None:
    ctype, *params = request.headers.get("content-type", "").split(";")
    ctype = ctype.strip().lower()
    if ctype != CONTENT_TYPE:
        raise IngestError(
            f"content type '{ctype or 'none'}' is not supported; send {CONTENT_TYPE}"
            " (Prometheus remote-write)",
            "content_type",
            415,
        )
    for param in params:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "proto" and value.strip().strip('"') != PROTO_V1:
            raise IngestError(
                f"protobuf message '{value.strip()[:80]}' is not supported; only remote-write"
                f" 1.0 ({PROTO_V1}) is: set protobuf_message: {PROTO_V1} in remote_write",
                "content_type",
                415,
            )
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding != "snappy":
        raise IngestError(
            f"content encoding '{encoding or 'none'}' is not supported; send snappy (block format)",
            "content_encoding",
            415,
        )


def _account(runtime: Runtime, decoded: Decoded) -> None:
    """Count what the batch left out and report the unmapped series of mapped metrics."""
    source = decoded.batch.source
    quiet = decoded.unmapped - len(decoded.near_misses)
    if quiet:
        runtime.metrics.phantom.labels(source).inc(quiet)
    for name in decoded.near_misses:  # each one counted by `phantom`
        runtime.phantom(
            source,
            name,
            f"series '{name}' is not in source '{source}''s map, though its metric is mapped"
            " for other labels (a new instance, or a relabelling that broke the mapping?)",
        )
    if decoded.non_finite:  # one per sample, as sources count the samples they refuse
        runtime.metrics.rejected.labels("non_finite").inc(decoded.non_finite)


def _receive(runtime: Runtime, series: SeriesMap, body: bytes) -> int:
    """Decode, accept, then account (on a worker thread: a request of thousands of series
    takes milliseconds, and the event loop meanwhile answers others, quick 503s included)."""
    try:
        decoded = decode_write_request(body, series)
    except IngestError as err:
        runtime.metrics.reject(err.reason)
        raise
    accepted = runtime.ingest_parsed(decoded.batch)  # counts its own refusals (busy, ...)
    _account(runtime, decoded)
    return accepted


@router.post("/prom/write", status_code=status.HTTP_204_NO_CONTENT)
async def post_prom_write(
    request: Request, runtime: RuntimeDep, source: str | None = None
) -> Response:
    """Prometheus remote-write 1.0: 204 on success; `source` a prometheus source of the site."""
    runtime.admit()  # a full pipeline refuses before anything is read (counted there)
    try:
        series = _series_map(request, runtime, source)
        _check_headers(request)
        body = await _body(request)
    except IngestError as err:
        runtime.metrics.reject(err.reason)
        raise
    await run_in_threadpool(_receive, runtime, series, body)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
