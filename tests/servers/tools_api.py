"""A chat server for tests of tool calling: ``POST /v1/chat/completions`` (OpenAI) and ``POST /api/chat`` (Ollama)
answer from a script instead of a model, in each API's shapes (one JSON object, or a stream when asked).

``app.state.script`` is a list of steps, one per request, each a function of the request's JSON body returning
``{"tool_calls": [(name, arguments), ...]}`` or ``{"content": text}``, or ``{"error": (status, message)}``.
Tool calls come back as OpenAI sends them (``message.tool_calls`` with ``function.arguments`` as a JSON string,
``finish_reason`` "tool_calls"). Every request body is recorded in ``app.state.requests``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

Step = Callable[[dict[str, Any]], dict[str, Any]]


def tools_app(model: str = "tool-model") -> FastAPI:
    app = FastAPI(title="OpenAI chat with tool calls (test server)")
    app.state.requests = []
    app.state.script = []

    @app.post("/v1/chat/completions")
    async def completions(request: Request):
        body = await request.json()
        app.state.requests.append(body)
        if not app.state.script:
            return _error(500, "the test script has no step left for this request")
        step = app.state.script.pop(0)(body)
        if "error" in step:
            status, message = step["error"]
            return _error(status, message)
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        calls = [{"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                  "function": {"name": name, "arguments": json.dumps(args)}} for name, args in step.get("tool_calls", [])]
        content = step.get("content")
        finish = "tool_calls" if calls else "stop"
        usage = {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if calls:
                message["tool_calls"] = calls
            return JSONResponse({"id": ident, "object": "chat.completion", "created": created, "model": model,
                                 "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage})

        def chunk(delta: dict[str, Any], finish_reason: str | None) -> str:
            return "data: " + json.dumps({"id": ident, "object": "chat.completion.chunk", "created": created,
                                          "model": model, "choices": [{"index": 0, "delta": delta,
                                                                       "finish_reason": finish_reason}]}) + "\n\n"

        def events():
            yield chunk({"role": "assistant", "content": ""}, None)
            for word in (content or "").split(" "):
                yield chunk({"content": word + " "}, None)
            for i, call in enumerate(calls):
                yield chunk({"tool_calls": [{"index": i, **call}]}, None)
            yield chunk({}, finish)
            if (body.get("stream_options") or {}).get("include_usage"):
                yield "data: " + json.dumps({"id": ident, "object": "chat.completion.chunk", "created": created,
                                             "model": model, "choices": [], "usage": usage}) + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/api/chat")
    async def ollama_chat(request: Request):
        """Ollama's form of the same: NDJSON lines (or one object when ``stream`` is false), tool calls as
        ``message.tool_calls[].function`` with the arguments as an object, errors as ``{"error": ...}``."""
        body = await request.json()
        app.state.requests.append(body)
        if not app.state.script:
            return JSONResponse({"error": "the test script has no step left for this request"}, status_code=500)
        step = app.state.script.pop(0)(_as_openai(body))
        if "error" in step:
            status, message = step["error"]
            return JSONResponse({"error": message}, status_code=status)
        calls = [{"function": {"name": name, "arguments": args}} for name, args in step.get("tool_calls", [])]
        final = {"model": body["model"], "created_at": "2026-12-03T00:00:00Z",
                 "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
                 "prompt_eval_count": 50, "eval_count": 10}
        message = {"role": "assistant", "content": step.get("content") or ""}
        if calls:
            message["tool_calls"] = calls
        if body.get("stream", True) is False:
            return JSONResponse({**final, "message": message})

        def lines():
            yield json.dumps({**final, "message": message, "done": False, "done_reason": None}) + "\n"
            yield json.dumps(final) + "\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app


def _as_openai(body: dict[str, Any]) -> dict[str, Any]:
    """An Ollama request as the steps read it (they look at ``messages`` and ``tools`` only)."""
    return {**body, "messages": [{**m, "content": m.get("content")} for m in body.get("messages") or []]}


def _error(status: int, message: str) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}}, status_code=status)
