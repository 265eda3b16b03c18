"""A busy local model: one request runs, at most ``llm.max_waiting`` wait (each at most ``llm.busy_timeout``
seconds), and a further one gets ``BusyError`` at once: in the library, and as a 503 with Retry-After over HTTP.

The real llama.cpp model (the small bundled SmolLM2, so that the waiting requests finish fast). The model is
held busy deterministically: a streamed answer whose first piece has been read and the rest not yet, so the
stream keeps the model until it is closed."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from langchain_core.messages import HumanMessage

from rag import BusyError, Rag, load_config
from rag.config import LLMSettings
from rag.http import create_app
from rag.providers import ChatModel, build_chat_model
from rag.providers.chat import ChatBackend
from rag.providers.retry import RetryPolicy
from rag.types import Usage
from tests.servers.running import ServerThread
from ui import render

LONG = [HumanMessage("Count from 1 to 100, one number per line.")]
SHORT = [HumanMessage("Say hello.")]
REACTOR = "How many megawatts does the Quillon-7 reactor at Vessmark produce?"


@pytest.fixture(scope="module")
def chat() -> ChatModel:
    return build_chat_model(LLMSettings(model="SmolLM2-135M-Instruct", max_tokens=8, max_waiting=2, busy_timeout=120))


def held(chat: ChatModel) -> Iterator[str | Usage]:
    """A streamed answer that holds the model: its first piece is read, the rest waits for the caller."""
    stream = chat.stream(LONG, params={"max_tokens": 64})
    assert isinstance(next(stream), str)
    return stream


def waiting(chat: ChatModel) -> int:
    return chat._backend.model.waiting  # what the gate counts


def wait_until(condition: Callable[[], bool], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def in_threads(n: int, work: Callable[[], object]) -> tuple[list[threading.Thread], list[object]]:
    results: list[object] = []

    def run() -> None:
        try:
            results.append(work())
        except Exception as exc:  # noqa: BLE001 - checked by the test
            results.append(exc)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(n)]
    for thread in threads:
        thread.start()
    return threads, results


def test_past_max_waiting_a_request_is_refused_at_once_and_the_waiting_ones_finish(chat: ChatModel) -> None:
    stream = held(chat)
    threads, results = in_threads(2, lambda: chat.invoke(SHORT))
    wait_until(lambda: waiting(chat) == 2)

    started = time.monotonic()
    with pytest.raises(BusyError) as refused:
        chat.invoke(SHORT)
    assert time.monotonic() - started < 1.0
    assert "the model is busy answering other questions" in refused.value.message
    assert "llm.max_waiting" in refused.value.hint and refused.value.retry_after > 0

    for _ in stream:  # the first request finishes; the two waiting ones then run, one after the other
        pass
    for thread in threads:
        thread.join(120)
    assert len(results) == 2 and all(isinstance(r, tuple) and r[0].strip() for r in results), results
    assert waiting(chat) == 0
    assert chat.invoke(SHORT)[0].strip()  # free again


def test_a_request_waits_at_most_busy_timeout(chat: ChatModel) -> None:
    base = chat._backend  # a copy with other limits shares the model and its gate
    impatient = ChatModel("llamacpp", ChatBackend(base.model.model_copy(update={"max_waiting": 1, "busy_timeout": 0.5}),
                                                  base.name), retry=RetryPolicy())
    stream = held(chat)
    try:
        started = time.monotonic()
        with pytest.raises(BusyError, match="waited"):
            impatient.invoke(SHORT)
        assert 0.4 < time.monotonic() - started < 5
    finally:
        stream.close()  # a consumer that stops early frees the model at once
    assert impatient.invoke(SHORT)[0].strip()


def test_the_busy_message_is_shown_in_the_chat() -> None:
    html = render.error(BusyError("the model is busy answering other questions; try again in a moment",
                                  hint="ask again shortly"), "en")
    assert "the model is busy answering other questions" in html and "ask again shortly" in html


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, corpus: Path, embedder, chat: ChatModel):
    folder = tmp_path_factory.mktemp("busy")
    settings = load_config(environ={"RAG_STORE__PATH": str(folder / "store"),
                                    "RAG_APP__UPLOAD_DIR": str(folder / "uploads")})
    rag = Rag(settings, embedder=embedder, chat=chat)
    report = rag.ingest([corpus])
    assert not report.failed
    with ServerThread(create_app(rag)) as server:
        yield server


def events(response: httpx.Response) -> list[tuple[str, dict]]:
    out = []
    for block in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines.get("event", ""), json.loads(lines["data"])))
    return out


def test_http_answers_busy_with_503_and_retry_after_then_serves_the_waiting(server, chat: ChatModel) -> None:
    ask = {"question": REACTOR, "stream": True, "max_tokens": 8}
    stream = held(chat)
    try:
        with httpx.Client(base_url=server.url, timeout=300) as api:
            threads, results = in_threads(2, lambda: api.post("/api/ask", json=ask))
            wait_until(lambda: waiting(chat) == 2)

            refused = api.post("/api/ask", json=ask)
            assert refused.status_code == 503, refused.text
            assert int(refused.headers["Retry-After"]) > 0
            error = refused.json()["error"]
            assert error["type"] == "BusyError" and "the model is busy" in error["message"] and error["hint"]

            plain = api.post("/api/ask", json={**ask, "stream": False})
            assert plain.status_code == 503 and plain.json()["error"]["type"] == "BusyError"

            openai = api.post("/v1/chat/completions", json={"model": "rag", "stream": True, "max_tokens": 8,
                                                            "messages": [{"role": "user", "content": REACTOR}]})
            assert openai.status_code == 503 and "Retry-After" in openai.headers
            assert openai.json()["error"]["code"] == "BusyError"
            assert "the model is busy" in openai.json()["error"]["message"]

            for _ in stream:
                pass
            for thread in threads:
                thread.join(300)
    finally:
        stream.close()
    assert len(results) == 2
    for response in results:
        assert isinstance(response, httpx.Response) and response.status_code == 200, response
        kinds = [kind for kind, _ in events(response)]
        assert kinds[0] == "retrieved" and kinds[-1] == "done", kinds
