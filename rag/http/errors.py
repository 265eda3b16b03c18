"""Errors as JSON, never a traceback. A ``RagError`` keeps its message and fix and gets a status from its kind;
anything unexpected is logged here and answered with a short 500. A busy local model (``BusyError``) is a 503
with a ``Retry-After`` header.

    /api/...  {"error": {"message", "hint", "type"}}                    type: the error's class name
    /v1/...   {"error": {"message", "type", "param", "code", "hint"}}   OpenAI's shape, so its clients show it
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from rag import (
    BusyError,
    ConfigError,
    ContextTooLongError,
    DocumentError,
    DocumentNotFoundError,
    RagError,
)

logger = logging.getLogger(__name__)

# first match wins; other RagErrors (provider failures, a collection built with another embedding model) are
# the server's set-up, not the request: 503
STATUS: tuple[tuple[type[RagError], int], ...] = (
    (DocumentNotFoundError, 404),
    (DocumentError, 400),
    (ContextTooLongError, 400),
    (ConfigError, 400),
)
OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                422: "invalid_request_error"}


class ApiError(Exception):
    """An error the API raises itself (authentication, unknown id, bad request), with its status."""

    def __init__(self, status: int, message: str, *, hint: str = "", type: str = "invalid_request_error",
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.hint, self.type = status, message, hint, type
        self.headers = dict(headers or {})


def headers_of(exc: BaseException) -> dict[str, str] | None:
    if isinstance(exc, ApiError):
        return exc.headers
    if isinstance(exc, BusyError):
        return {"Retry-After": str(exc.retry_after)}
    return None


def status_of(exc: RagError) -> int:
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 503)


def body(status: int, message: str, hint: str, kind: str, *, openai: bool) -> dict[str, Any]:
    if openai:
        full = f"{message} (fix: {hint})" if hint else message
        return {"error": {"message": full, "type": OPENAI_TYPES.get(status, "server_error"), "param": None,
                          "code": kind, "hint": hint}}
    return {"error": {"message": message, "hint": hint, "type": kind}}


def describe(exc: BaseException, *, openai: bool) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) for any exception: also what a stream sends when it fails after it has started."""
    if isinstance(exc, ApiError):
        return exc.status, body(exc.status, exc.message, exc.hint, exc.type, openai=openai)
    if isinstance(exc, RagError):
        status = status_of(exc)
        return status, body(status, exc.message, exc.hint, type(exc).__name__, openai=openai)
    logger.error("unexpected error in the HTTP API", exc_info=exc)
    return 500, body(500, f"unexpected error: {type(exc).__name__}", "the server's log has the details",
                     "internal_error", openai=openai)


def _openai(request: Request) -> bool:
    return request.url.path.startswith("/v1/")


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` in the JSON shape of its path."""

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        status, content = describe(exc, openai=_openai(request))
        return JSONResponse(content, status_code=status, headers=headers_of(exc))

    async def on_invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'] if p != 'body') or 'body'}: {err['msg']}"
                             for err in exc.errors())
        content = body(422, f"invalid request: {problems}", "see /docs for the request's fields",
                       "invalid_request_error", openai=_openai(request))
        return JSONResponse(content, status_code=422)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        content = body(exc.status_code, str(exc.detail), "", "http_error", openai=_openai(request))
        return JSONResponse(content, status_code=exc.status_code, headers=exc.headers)

    app.add_exception_handler(ApiError, on_error)
    app.add_exception_handler(RagError, on_error)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_error)
