"""An Ollama API server for tests (there is no Ollama binary here), following Ollama's API documentation:

    GET  /                 "Ollama is running"
    GET  /api/version      {"version": ...}
    GET  /api/tags         the "pulled" models
    POST /api/show         model details; 404 for a model that is not pulled
    POST /api/chat         NDJSON stream of {"message": {...}, "done": false} lines, then a final line with
                           "done": true, "done_reason", "prompt_eval_count", "eval_count" and durations;
                           one JSON object when "stream": false
    POST /api/embed        {"embeddings": [[...]]} for "input" (a string or a list of strings)
    POST /api/embeddings   the older single-prompt form: {"embedding": [...]}

Unknown models answer 404 {"error": "model \\"X\\" not found, try pulling it first"} as Ollama does. Every
request is recorded in ``app.state.requests``; the counts of the last chat in ``app.state.last_chat``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from tests.servers.models import ContextOverflow, LocalModels

CHAT_MODEL = "smollm2"
EMBED_MODEL = "all-minilm"
_DETAILS = {
    CHAT_MODEL: {"format": "gguf", "family": "llama", "families": ["llama"], "parameter_size": "135M",
                 "quantization_level": "Q4_1"},
    EMBED_MODEL: {"format": "gguf", "family": "bert", "families": ["bert"], "parameter_size": "23M",
                  "quantization_level": "F16"},
}


def ollama_app(models: LocalModels) -> FastAPI:
    app = FastAPI(title="Ollama API (test server)")
    app.state.requests = []
    app.state.last_chat = None

    @app.middleware("http")
    async def record(request: Request, call_next):
        body = await request.body()
        app.state.requests.append({"method": request.method, "path": request.url.path,
                                   "json": json.loads(body) if body else None})
        return await call_next(request)

    @app.get("/")
    def root() -> PlainTextResponse:
        return PlainTextResponse("Ollama is running")

    @app.get("/api/version")
    def version() -> dict[str, str]:
        return {"version": "0.0.0-test"}

    @app.get("/api/tags")
    def tags() -> dict[str, Any]:
        return {"models": [{"name": f"{m}:latest", "model": f"{m}:latest", "modified_at": _now(), "size": 0,
                            "digest": f"sha256:{i:064x}", "details": d} for i, (m, d) in enumerate(_DETAILS.items())]}

    @app.post("/api/show")
    async def show(request: Request) -> JSONResponse:
        body = await request.json()
        name = _known(body.get("model") or body.get("name") or "")
        if name is None:
            return _not_found(body.get("model") or body.get("name"))
        capabilities = ["completion"] if name == CHAT_MODEL else ["embedding"]
        return JSONResponse({"modelfile": f"FROM {name}\n", "parameters": "", "template": "{{ .Prompt }}",
                             "details": _DETAILS[name], "model_info": {"general.architecture": _DETAILS[name]["family"]},
                             "capabilities": capabilities, "modified_at": _now()})

    @app.post("/api/chat")
    async def chat(request: Request):
        body = await request.json()
        name = _known(body.get("model", ""))
        if name is None:
            return _not_found(body.get("model"))
        if name != CHAT_MODEL:
            return JSONResponse({"error": f"\"{body['model']}\" does not support chat"}, status_code=400)
        options = body.get("options") or {}
        started = time.perf_counter_ns()
        try:
            generation = await run_in_threadpool(
                models.chat, body.get("messages") or [], temperature=options.get("temperature", 0.8),
                top_p=options.get("top_p", 0.9), max_tokens=options.get("num_predict"), stop=options.get("stop"))
        except ContextOverflow as exc:  # Ollama truncates instead; an error keeps the test server honest
            return JSONResponse({"error": str(exc)}, status_code=400)
        elapsed = time.perf_counter_ns() - started
        final = {"model": body["model"], "created_at": _now(),
                 "message": {"role": "assistant", "content": ""}, "done": True,
                 "done_reason": generation.finish_reason, "total_duration": elapsed, "load_duration": 0,
                 "prompt_eval_count": generation.prompt_tokens, "prompt_eval_duration": elapsed // 2,
                 "eval_count": generation.completion_tokens, "eval_duration": elapsed // 2}
        app.state.last_chat = final
        if body.get("stream", True) is False:
            final["message"]["content"] = generation.text
            return JSONResponse(final)

        def lines():
            for piece in generation.pieces:
                yield json.dumps({"model": body["model"], "created_at": _now(),
                                  "message": {"role": "assistant", "content": piece}, "done": False}) + "\n"
            yield json.dumps(final) + "\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @app.post("/api/embed")
    async def embed(request: Request) -> JSONResponse:
        body = await request.json()
        name = _known(body.get("model", ""))
        if name is None:
            return _not_found(body.get("model"))
        if name != EMBED_MODEL:
            return JSONResponse({"error": f"\"{body['model']}\" does not support embeddings"}, status_code=400)
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        vectors = await run_in_threadpool(models.embed, texts) if texts else []
        return JSONResponse({"model": body["model"], "embeddings": [list(map(float, v)) for v in vectors],
                             "total_duration": 0, "load_duration": 0,
                             "prompt_eval_count": sum(len(t.split()) for t in texts)})

    @app.post("/api/embeddings")
    async def embeddings(request: Request) -> JSONResponse:
        body = await request.json()
        if _known(body.get("model", "")) != EMBED_MODEL:
            return _not_found(body.get("model"))
        vectors = await run_in_threadpool(models.embed, [body.get("prompt", "")])
        return JSONResponse({"embedding": list(map(float, vectors[0]))})

    return app


def _known(model: str) -> str | None:
    name, _, tag = model.partition(":")
    return name if name in _DETAILS and tag in ("", "latest") else None


def _not_found(model: Any) -> JSONResponse:
    return JSONResponse({"error": f"model \"{model}\" not found, try pulling it first"}, status_code=404)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
