"""OpenAI-compatible chat (/v1/chat/completions, /v1/models), for clients such as the ``openai`` package or
Open WebUI. The last user message is the question; the user and assistant turns before it are the
conversation (system messages are not used: the answer's instructions are the library's own).

The content is the answer with its ``[n]`` marks; the numbered passages they point to travel in an extra
top-level ``sources`` field (with ``citations`` and ``refused``), on the response or on the last stream chunk.
A refusal is a normal answer whose content says the documents do not hold it. A stream carries the model's
words as it writes them; when the checked answer says something else (a refusal after the model, sentences
dropped by strict grounding), it is appended as a last piece, so a client never keeps an unchecked answer.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from rag import Rag
from rag.http.errors import ApiError, describe
from rag.http.questions import SSE_HEADERS
from rag.http.schemas import ChatCompletionRequest
from rag.http.streaming import Threaded, opening, sse
from rag.types import Answer, Done, Event, Retrieved, Token, Usage

CHECKED = "Checked answer: "


def router(rag: Rag, model: str) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["openai"])

    @api.get("/models", summary="The model (OpenAI-compatible)")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model, "object": "model", "created": 0, "owned_by": "rag"}]}

    @api.post("/chat/completions", summary="Chat (OpenAI-compatible)", response_model=None,
              responses={200: {"content": {"text/event-stream": {}},
                               "description": "a chat.completion, or with stream: true, chat.completion.chunk events"}})
    async def chat_completions(request: ChatCompletionRequest) -> dict[str, Any] | StreamingResponse:
        """Answer the last user message from the documents. The reply's content has `[n]` citation marks; the
        top-level `sources` field lists the numbered passages (file, page, text, score)."""
        question, history = conversation(request)
        options = {"history": history, "params": request.params()}
        reply = Reply(model)
        if not request.stream:
            answer = await run_in_threadpool(lambda: rag.ask(question, **options))
            return reply.completion(answer)
        events: Threaded[Event] = Threaded(lambda: rag.stream(question, **options))
        first = await opening(events, lambda event: isinstance(event, Retrieved))  # a busy model: 503
        return StreamingResponse(reply.chunks(first, events), media_type="text/event-stream", headers=SSE_HEADERS)

    return api


def conversation(request: ChatCompletionRequest) -> tuple[str, list[dict[str, str]]]:
    """(question, history): the last user message, and the user and assistant turns before it."""
    last = next((i for i in range(len(request.messages) - 1, -1, -1) if request.messages[i].role == "user"), None)
    if last is None or not request.messages[last].text.strip():
        raise ApiError(400, "no question: the messages hold no user message with text",
                       hint='end the messages with {"role": "user", "content": "your question"}')
    history = [{"role": m.role, "content": m.text} for m in request.messages[:last]
               if m.role in ("user", "assistant") and m.text.strip()]
    return request.messages[last].text, history


def usage(value: Usage) -> dict[str, Any]:
    return {"prompt_tokens": value.prompt_tokens, "completion_tokens": value.completion_tokens,
            "total_tokens": value.prompt_tokens + value.completion_tokens}


def extras(answer: Answer) -> dict[str, Any]:
    return {"sources": [s.to_json() for s in answer.sources], "citations": answer.citations, "refused": answer.refused}


class Reply:
    """One response's id, creation time and model, and its two forms."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model

    def completion(self, answer: Answer) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                             "finish_reason": "stop", "logprobs": None}],
                "usage": usage(answer.usage), **extras(answer)}

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
        return sse({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **more})

    async def chunks(self, first: list[Event], events: Threaded[Event]) -> AsyncIterator[str]:
        streamed: list[str] = []
        try:
            yield self.chunk({"role": "assistant", "content": ""})
            pending = list(reversed(first))
            while True:
                event = pending.pop() if pending else await events.next()
                if isinstance(event, Token):
                    streamed.append(event.text)
                    yield self.chunk({"content": event.text})
                elif isinstance(event, Done):
                    answer = event.answer
                    tail = ending("".join(streamed), answer)
                    if tail:
                        yield self.chunk({"content": tail})
                    yield self.chunk({}, "stop", usage=usage(answer.usage), **extras(answer))
                    yield "data: [DONE]\n\n"
                    return
        except StopAsyncIteration:  # pragma: no cover - the answer stream always ends with Done
            return
        except Exception as exc:  # noqa: BLE001 - the response has started: the error goes in the stream
            yield sse(describe(exc, openai=True)[1])
        finally:
            events.close()


_MARKS = re.compile(r"\s*\[\d+(?:\s*[,-]\s*\d+)*\]")


def _words(text: str) -> str:
    return " ".join(_MARKS.sub("", text).replace(" .", ".").split())


def _cited(text: str) -> set[int]:
    return {int(n) for mark in _MARKS.findall(text) for n in re.findall(r"\d+", mark)}


def ending(streamed: str, answer: Answer) -> str:
    """What to add after the streamed text so that the reply ends with the checked answer: all of it when
    nothing was streamed (a refusal before the model), nothing when the stream said the same, else the checked
    answer after a blank line."""
    if not streamed.strip():
        return answer.text
    if _words(streamed) == _words(answer.text) and _cited(streamed) == set(answer.citations):
        return ""
    return f"\n\n{CHECKED}{answer.text}"
