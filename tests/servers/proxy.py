"""A loopback HTTP proxy that injects faults before passing requests through to a real server.

    proxy = FaultProxy(upstream_url)
    proxy.inject(rate_limited(retry_after=1), unavailable(), hang())
    ... the next three requests get 429 (with Retry-After), 503 and no answer at all; later ones pass through.

Every request is recorded in ``proxy.hits`` with its outcome ("429", "503", "hang", "passed", ...) and JSON body.
A hang holds the request open until the client gives up (its timeout) or ``max_hang`` seconds pass.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
               "proxy-connection", "te", "trailer"}


@dataclass(frozen=True)
class Fault:
    status: int | None  # None: hang
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return "hang" if self.status is None else str(self.status)


def rate_limited(retry_after: float | None = 1) -> Fault:
    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
    return Fault(429, "Rate limit reached for requests. Please try again later.", headers)


def unavailable() -> Fault:
    return Fault(503, "The server is overloaded or not ready yet.")


def unauthorized() -> Fault:
    return Fault(401, "Incorrect API key provided.")


def hang() -> Fault:
    return Fault(None)


class FaultProxy:
    def __init__(self, upstream: str, *, error_style: str = "openai", max_hang: float = 30.0) -> None:
        """``error_style``: "openai" bodies ({"error": {"message", "type", "code"}}) or "ollama" ({"error": str})."""
        self.upstream = upstream.rstrip("/")
        self.error_style = error_style
        self.max_hang = max_hang
        self.hits: list[dict[str, Any]] = []
        self._faults: deque[Fault] = deque()
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT", "DELETE"])])

    def inject(self, *faults: Fault) -> None:
        self._faults.extend(faults)

    def outcomes(self) -> list[str]:
        return [hit["outcome"] for hit in self.hits]

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        hit = {"method": request.method, "path": request.url.path, "outcome": "passed",
               "json": _json(body)}
        self.hits.append(hit)
        fault = self._faults.popleft() if self._faults else None
        if fault is not None:
            hit["outcome"] = fault.name
            if fault.status is None:
                return await self._hang(request)
            return self._error(fault)
        return await self._forward(request, body)

    async def _hang(self, request: Request) -> Response:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_hang
        while loop.time() < deadline and not await request.is_disconnected():
            await asyncio.sleep(0.05)
        return Response(status_code=504)

    def _error(self, fault: Fault) -> Response:
        if self.error_style == "ollama":
            content: Any = {"error": fault.message}
        else:
            kind = {401: "invalid_request_error", 429: "requests"}.get(fault.status or 0, "server_error")
            content = {"error": {"message": fault.message, "type": kind, "param": None, "code": None}}
        return JSONResponse(content, status_code=fault.status or 500, headers=fault.headers)

    async def _forward(self, request: Request, body: bytes) -> Response:
        client = httpx.AsyncClient(timeout=httpx.Timeout(120.0))
        url = self.upstream + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = await client.send(client.build_request(request.method, url, headers=headers, content=body),
                                     stream=True)

        async def close() -> None:
            await upstream.aclose()
            await client.aclose()

        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
        return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code, headers=headers,
                                 background=BackgroundTask(close))


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None
