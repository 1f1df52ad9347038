"""Domain errors become HTTP errors here, and only here."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from safety_nexus.core.errors import (
    AlarmError,
    ConfigError,
    ControlError,
    IngestError,
    NexusError,
    NotFoundError,
    RequestError,
)


def _status(err: NexusError) -> int:
    if isinstance(err, IngestError):
        return err.status
    if isinstance(err, NotFoundError):
        return 404
    if isinstance(err, AlarmError):
        return 409
    if isinstance(err, ConfigError | ControlError):
        return 422
    if isinstance(err, RequestError):
        return 400
    return 500


def install(app: FastAPI) -> None:
    @app.exception_handler(NexusError)
    async def _nexus_error(request: Request, err: NexusError) -> JSONResponse:
        body: dict[str, object] = {"error": str(err)}
        if isinstance(err, IngestError):
            body["reason"] = err.reason
        headers = {"Retry-After": "1"} if _status(err) in (429, 503) else None
        return JSONResponse(body, status_code=_status(err), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))
        return JSONResponse({"error": message.lower()}, status_code=422)
