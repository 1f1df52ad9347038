"""`POST /api/v1/alertmanager/webhook`: a Prometheus Alertmanager's webhook receiver.

Each alert of the payload raises (firing) or clears (resolved) the alarm
"<asset>:external:<alertname>" (see `alarms.alertmanager` for how labels become an alarm).
Answers 200 with how many alerts were taken and skipped; 400 for a payload that is not
Alertmanager's (Alertmanager does not retry a 4xx, and logs our message); 415 for a body that
is not JSON; 401 when the notify config's `inbound` token is set and the request lacks it
(Alertmanager: `http_config: {authorization: {credentials: <token>}}`).

    receivers:
      - name: nexus
        webhook_configs:
          - url: http://nexus:8000/api/v1/alertmanager/webhook
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from safety_nexus.alarms.alertmanager import external_alerts, parse_webhook
from safety_nexus.api.deps import RuntimeDep
from safety_nexus.api.routes.telemetry import _body
from safety_nexus.core.errors import IngestError
from safety_nexus.pipeline.runtime import Runtime

router = APIRouter(tags=["alertmanager"])


class WebhookAccepted(BaseModel):
    """What the webhook answers: alerts taken (raised or cleared an alarm) and skipped
    (Nexus's own alarms, come back through the Alertmanager)."""

    model_config = ConfigDict(extra="forbid")

    accepted: int
    skipped: int


def _check_token(request: Request, runtime: Runtime) -> None:
    token = runtime.notifier.inbound_token if runtime.notifier is not None else None
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        raise IngestError("alertmanager webhook: a valid bearer token is required", "unsigned", 401)


def _receive(runtime: Runtime, body: bytes) -> WebhookAccepted:
    payload = parse_webhook(body)
    alerts = external_alerts(payload)
    if alerts:
        runtime.alarms.on_external(alerts)
    return WebhookAccepted(accepted=len(alerts), skipped=len(payload.alerts) - len(alerts))


@router.post("/alertmanager/webhook")
async def post_alertmanager_webhook(request: Request, runtime: RuntimeDep) -> WebhookAccepted:
    """An Alertmanager webhook (payload version 4): its alerts raise or clear alarms."""
    _check_token(request, runtime)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise IngestError(
            f"content type '{ctype or 'none'}' is not supported; send application/json",
            "content_type",
            415,
        )
    body = await _body(request)
    # Off the event loop: the alarm manager takes its lock and writes the journal.
    return await run_in_threadpool(_receive, runtime, body)
