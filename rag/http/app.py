"""``create_app(rag)``: the FastAPI app with the documents, questions and OpenAI-compatible routes, the
token check and the JSON errors. One ``Rag`` per process: the app only calls it, off the event loop."""

from __future__ import annotations

import threading

from fastapi import Depends, FastAPI

from rag import Rag, __version__
from rag.http import auth, completions, documents, errors, questions

DESCRIPTION = """Ask your documents over HTTP: list, upload and delete documents, search passages, get cited answers
(JSON or server-sent events), or chat through the OpenAI-compatible `/v1/chat/completions`.

Send `Authorization: Bearer <token>` with the value of `RAG_API_TOKEN` on the server (not needed on a
loopback address when it is unset). Errors are `{"error": {"message", "hint", "type"}}`."""

TAGS = [
    {"name": "documents", "description": "the documents in the store"},
    {"name": "questions", "description": "passages and cited answers"},
    {"name": "openai", "description": "OpenAI-compatible chat: the `openai` package, Open WebUI, ..."},
]


def create_app(rag: Rag, *, token: str | None = None, host: str = "127.0.0.1", model: str = "rag",
               login: tuple[str, str] | None = None, app: FastAPI | None = None) -> FastAPI:
    """The API over ``rag``, served on ``host``. ``token`` (``api_token()`` reads RAG_API_TOKEN) is required of
    every /api and /v1 request; without one, ``host`` must be a loopback address (else ConfigError). With the
    page's ``login`` (user, password), that login is accepted too (HTTP Basic), and required when there is no
    token. ``model`` is the id /v1/models lists. Routes are added to ``app`` when given."""
    auth.check_exposure(host, token)
    app = app or FastAPI(title="PDF chat API", version=__version__, description=DESCRIPTION, openapi_tags=TAGS)
    errors.install(app)
    guard = [Depends(auth.requires(token, login))] if token or login else []
    writing = threading.Lock()  # one upload or delete at a time
    app.include_router(documents.router(rag, writing), dependencies=guard)
    app.include_router(questions.router(rag), dependencies=guard)
    app.include_router(completions.router(rag, model), dependencies=guard)
    return app
