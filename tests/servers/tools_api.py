"""An OpenAI-compatible chat server for tests of tool calling: ``POST /v1/chat/completions`` answers from a script
instead of a model, in OpenAI's shapes (one JSON object, or an SSE stream when ``stream`` is set).

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

    return app


def _error(status: int, message: str) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}}, status_code=status)
