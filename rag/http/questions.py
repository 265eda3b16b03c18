"""/api/search and /api/ask: the passages retrieval finds, and the cited answer (JSON or server-sent events)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from rag import Rag
from rag.http.errors import describe
from rag.http.schemas import AskRequest, SearchRequest
from rag.http.streaming import Threaded, opening, sse
from rag.types import Done, Event, Retrieved, Token

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no buffering in a reverse proxy


def router(rag: Rag) -> APIRouter:
    api = APIRouter(prefix="/api", tags=["questions"])

    @api.post("/search", summary="Find passages")
    async def search(request: SearchRequest) -> list[dict[str, Any]]:
        """The passages retrieval finds, best first: source, page, text, score (as `python -m rag search --json`)."""
        hits = await run_in_threadpool(lambda: rag.search(request.query, k=request.k, sources=request.sources,
                                                          mode=request.mode))
        return [hit.to_json() for hit in hits]

    @api.post("/ask", summary="Answer a question", response_model=None,
              responses={200: {"content": {"text/event-stream": {}},
                               "description": "the Answer JSON, or with stream: true, server-sent events"}})
    async def ask(request: AskRequest) -> dict[str, Any] | StreamingResponse:
        """The answer with its `[n]` citations, the numbered sources, whether it was refused and the token usage
        (as `python -m rag ask --json`). With `stream: true`: a `retrieved` event (the numbered passages),
        `token` events as the model writes, and `done` with the answer JSON (or `error`)."""
        options = {"history": [turn.model_dump() for turn in request.history], "k": request.k,
                   "sources": request.sources, "params": request.params()}
        if not request.stream:
            answer = await run_in_threadpool(lambda: rag.ask(request.question, **options))
            return answer.to_json()
        events: Threaded[Event] = Threaded(lambda: rag.stream(request.question, **options))
        # the response starts when the model does (its first word) or the answer is done: errors up to then,
        # retrieval's or a busy model's, still get their status (503 and Retry-After when busy) and a JSON body
        first = await opening(events, lambda event: isinstance(event, Retrieved))
        return StreamingResponse(_ask_events(first, events), media_type="text/event-stream", headers=SSE_HEADERS)

    return api


async def _ask_events(first: list[Event], events: Threaded[Event]) -> AsyncIterator[str]:
    try:
        for event in first:
            yield _event(event)
        async for event in events:
            yield _event(event)
    except Exception as exc:  # noqa: BLE001 - the response has started: the error goes in the stream
        yield sse(describe(exc, openai=False)[1], "error")
    finally:
        events.close()


def _event(event: Event) -> str:
    if isinstance(event, Retrieved):
        return sse({"question": event.question, "sources": [s.to_json() for s in event.sources]}, "retrieved")
    if isinstance(event, Token):
        return sse({"text": event.text}, "token")
    assert isinstance(event, Done)
    return sse(event.answer.to_json(), "done")
