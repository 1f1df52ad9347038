"""`POST /api/v1/telemetry`: JSON batches; `POST /api/v1/write`: InfluxDB line protocol (gzip
accepted by both)."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import zlib
from typing import Any

from fastapi import APIRouter, Request, Response, status
from starlette.concurrency import run_in_threadpool

from safety_nexus.api.deps import RuntimeDep, VerifierDep
from safety_nexus.api.schemas import Accepted
from safety_nexus.core.errors import IngestError
from safety_nexus.ingest.auth import SOURCE, Verified, Verifier
from safety_nexus.pipeline.ledger import DuplicateBatch
from safety_nexus.pipeline.runtime import Runtime

router = APIRouter(tags=["telemetry"])

MAX_BODY = 16 * 1024 * 1024


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise IngestError(f"body of {declared} bytes exceeds {MAX_BODY}", "oversized", 413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise IngestError(f"body exceeds {MAX_BODY} bytes", "oversized", 413)
        chunks.append(chunk)
    body = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as err:
            raise IngestError(f"body is not valid gzip: {err}", "bad_encoding") from err
        if len(body) > MAX_BODY:
            raise IngestError(f"decompressed body exceeds {MAX_BODY} bytes", "oversized", 413)
    return body


async def _checked_body(
    request: Request, runtime: Runtime, verifier: Verifier, ctype: str, hint: str = ""
) -> tuple[bytes, Verified]:
    """The request's body (decompressed) once its content type and, for signed batches, its
    signature, sequence and age are checked (see ingest.auth); rejections are counted."""
    runtime.admit()  # counted there; cheap: nothing is read while the pipeline is full
    try:
        got = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if got != ctype:
            raise IngestError(
                f"content type '{got or 'none'}' is not supported; send {ctype}{hint}",
                "content_type",
                415,
            )
        body = await _body(request)
        return body, verifier.check(request.headers, body)
    except IngestError as err:
        runtime.metrics.reject(err.reason)
        raise


def _delivery(verified: Verified, body: bytes) -> dict[str, Any]:
    """Who sent the batch and, when it is numbered, what makes it exactly-once (the number
    and the body's digest: see pipeline.ledger)."""
    digest = hashlib.sha256(body).hexdigest() if verified.sequence is not None else ""
    return {"source": verified.source, "sequence": verified.sequence, "digest": digest}


@router.post("/telemetry", status_code=status.HTTP_202_ACCEPTED)
async def post_telemetry(
    request: Request, response: Response, runtime: RuntimeDep, verifier: VerifierDep
) -> Accepted:
    """A JSON batch. Answers 202 with the samples accepted; a resend of the source's last
    accepted batch (same sequence number, same body) answers 200 with `duplicate: true`."""
    body, verified = await _checked_body(request, runtime, verifier, "application/json")
    try:
        # Parsing a big batch takes milliseconds: off the event loop, so that other requests
        # (and quick 503s under overload) are answered meanwhile. The runtime's ingest lock
        # keeps the sequence check, the log and the reorder buffer consistent across threads.
        accepted = await run_in_threadpool(runtime.ingest_json, body, **_delivery(verified, body))
    except DuplicateBatch:
        response.status_code = status.HTTP_200_OK
        return Accepted(accepted=0, duplicate=True)
    return Accepted(accepted=accepted)


@router.post("/write", status_code=status.HTTP_204_NO_CONTENT)
async def post_write(
    request: Request,
    runtime: RuntimeDep,
    verifier: VerifierDep,
    precision: str = "ns",
    source: str | None = None,
) -> Response:
    """InfluxDB line protocol (text/plain, gzip accepted): 204 on success, as InfluxDB answers.
    `precision` is the timestamps' unit (ns, us, ms, s); `source` a site source whose `map`
    renames external names (see `ingest.lineprotocol`)."""
    hint = " (InfluxDB line protocol)"
    body, verified = await _checked_body(request, runtime, verifier, "text/plain", hint)
    delivery = _delivery(verified, body)
    if source is not None and verified.source is not None and source != verified.source:
        err = IngestError(
            f"?source={source[:64]} differs from the {SOURCE} header ('{verified.source}')",
            "source_mismatch",
        )
        runtime.metrics.reject(err.reason)
        raise err
    delivery["source"] = source or verified.source
    with contextlib.suppress(DuplicateBatch):  # already accepted: answer as the first time
        await run_in_threadpool(runtime.ingest_lineprotocol, body, precision=precision, **delivery)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
