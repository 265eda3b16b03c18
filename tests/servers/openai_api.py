"""An OpenAI API server for tests, standing in for api.openai.com and an Azure OpenAI resource:

    GET  /v1/models                 the models offered
    POST /v1/chat/completions       SSE stream ("data: {...}" then "data: [DONE]"), with a last chunk carrying
                                    "usage" when stream_options.include_usage is set, as OpenAI does;
                                    one JSON object with "usage" when not streaming
    POST /v1/embeddings             "float" vectors, or "base64" (little-endian float32) when asked
    POST /openai/deployments/{deployment}/chat/completions?api-version=...   Azure's form of the same call,
                                    authorised by an "api-key" header

Errors have OpenAI's shapes: 401 invalid_api_key, 404 model_not_found / DeploymentNotFound,
400 context_length_exceeded. Chat comes from SmolLM2 through llama.cpp and vectors from MiniLM, so answers
and vectors are real. Every request (method, path, query, headers, JSON body) is recorded in
``app.state.requests``; the usage of the last chat in ``app.state.last_usage``.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from tests.servers.models import ContextOverflow, LocalModels

API_VERSIONS = {"2024-06-01", "2024-10-21", "2025-01-01-preview"}


def openai_app(models: LocalModels, *, api_key: str, azure_key: str, chat_models: tuple[str, ...] = ("smollm2",),
               embedding_models: tuple[str, ...] = ("all-MiniLM-L6-v2",),
               deployments: dict[str, str] | None = None) -> FastAPI:
    """``deployments`` maps Azure deployment names to the chat model behind them."""
    app = FastAPI(title="OpenAI API (test server)")
    app.state.requests = []
    app.state.last_usage = None
    deployments = deployments or {}

    @app.middleware("http")
    async def record(request: Request, call_next):
        body = await request.body()
        app.state.requests.append({"method": request.method, "path": request.url.path,
                                   "query": dict(request.query_params), "headers": dict(request.headers),
                                   "json": json.loads(body) if body else None})
        return await call_next(request)

    @app.get("/v1/models")
    async def list_models(request: Request) -> JSONResponse:
        if (denied := _check_bearer(request, api_key)) is not None:
            return denied
        ids = [*chat_models, *embedding_models]
        return JSONResponse({"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "test"}
                                                        for m in ids]})

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        if (denied := _check_bearer(request, api_key)) is not None:
            return denied
        body = await request.json()
        if body.get("model") not in chat_models:
            return _model_not_found(body.get("model"))
        return await _complete(body, body["model"])

    @app.post("/openai/deployments/{deployment}/chat/completions")
    async def azure_chat_completions(deployment: str, request: Request):
        if request.headers.get("api-key") != azure_key:
            return _error(401, "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
                               "provide a valid key for an active subscription and use a correct regional API "
                               "endpoint for your resource.", code="401")
        if request.query_params.get("api-version") not in API_VERSIONS:
            return _error(404, "Resource not found", code="404")
        if deployment not in deployments:
            return _error(404, "The API deployment for this resource does not exist. If you created the deployment "
                               "within the last 5 minutes, please wait a moment and try again.",
                          code="DeploymentNotFound")
        return await _complete(await request.json(), deployments[deployment])

    async def _complete(body: dict[str, Any], model: str):
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        stop = body.get("stop")
        try:
            generation = await run_in_threadpool(
                models.chat, body.get("messages") or [], temperature=body.get("temperature", 1.0),
                top_p=body.get("top_p", 1.0), max_tokens=max_tokens, stop=[stop] if isinstance(stop, str) else stop)
        except ContextOverflow as exc:
            return _error(400, f"This model's maximum context length is {exc.n_ctx} tokens. However, your messages "
                               f"resulted in {exc.requested} tokens. Please reduce the length of the messages.",
                          code="context_length_exceeded", param="messages")
        usage = {"prompt_tokens": generation.prompt_tokens, "completion_tokens": generation.completion_tokens,
                 "total_tokens": generation.prompt_tokens + generation.completion_tokens}
        app.state.last_usage = usage
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if not body.get("stream"):
            return JSONResponse({"id": ident, "object": "chat.completion", "created": created, "model": model,
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": generation.text},
                                              "finish_reason": generation.finish_reason}],
                                 "usage": usage})
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None, **extra: Any) -> str:
            data = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            return f"data: {json.dumps(data)}\n\n"

        def events():
            yield chunk({"role": "assistant", "content": ""}, None)
            for piece in generation.pieces:
                yield chunk({"content": piece}, None)
            yield chunk({}, generation.finish_reason)
            if include_usage:
                data = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                        "choices": [], "usage": usage}
                yield f"data: {json.dumps(data)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> JSONResponse:
        if (denied := _check_bearer(request, api_key)) is not None:
            return denied
        body = await request.json()
        if body.get("model") not in embedding_models:
            return _model_not_found(body.get("model"))
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        if not all(isinstance(t, str) for t in texts):
            return _error(400, "this test server takes text input only", code="invalid_input", param="input")
        vectors = np.asarray(await run_in_threadpool(models.embed, texts), dtype=np.float32)
        as_base64 = body.get("encoding_format") == "base64"
        data = [{"object": "embedding", "index": i,
                 "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode() if as_base64 else v.tolist()}
                for i, v in enumerate(vectors)]
        tokens = sum(len(t.split()) for t in texts)
        return JSONResponse({"object": "list", "data": data, "model": body["model"],
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    return app


def _check_bearer(request: Request, api_key: str) -> JSONResponse | None:
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if given == api_key:
        return None
    shown = f"{given[:3]}***{given[-2:]}" if len(given) > 5 else "***"
    return _error(401, f"Incorrect API key provided: {shown}. You can find your API key at "
                       "https://platform.openai.com/account/api-keys.", code="invalid_api_key")


def _model_not_found(model: Any) -> JSONResponse:
    return _error(404, f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found")


def _error(status: int, message: str, *, code: str, param: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status)
