"""The optional answer cache (llm.cache): a repeated question over the same passages, model and parameters is
answered without a model call; anything else that changes the prompt or sampling is a new call."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage

from rag import Rag
from rag.answer.cache import AnswerCache
from rag.config import LLMSettings
from rag.types import Usage
from tests.servers.fixtures import TEST_OPENAI_KEY

QUESTION = "How many apprentices did Zorblax Dynamics train in 2023?"


def chat_calls(server) -> int:
    return sum(r["path"] in ("/api/chat", "/v1/chat/completions") for r in server.app.state.requests)


@pytest.mark.slow
def test_repeated_question_is_answered_from_the_cache(ollama_server, settings, corpus, embedder):
    llm = LLMSettings(provider="ollama", base_url=ollama_server.url, model="smollm2", temperature=0.0,
                      max_tokens=24, cache=True)
    s = settings.model_copy(update={"llm": llm})
    rag = Rag(s, embedder=embedder)
    rag.ingestor.ingest([corpus])
    calls = chat_calls(ollama_server)

    first = rag.answerer.ask(QUESTION)
    assert chat_calls(ollama_server) == calls + 1
    assert not first.cached and first.usage.completion_tokens > 0 and first.sources

    second = rag.answerer.ask(QUESTION)
    assert chat_calls(ollama_server) == calls + 1  # no model call
    assert second.cached and second.to_json()["cached"] is True
    assert second.text == first.text and second.sources == first.sources
    assert second.usage == Usage()  # nothing spent

    rag.answerer.ask(QUESTION, params={"temperature": 0.7})  # other sampling parameters
    rag.answerer.ask(QUESTION, k=2)  # other passages
    assert chat_calls(ollama_server) == calls + 3

    # the cache is a file beside the store: a new process (a new Rag) finds the answer too
    assert Rag(s, embedder=embedder).answerer.ask(QUESTION).cached
    assert chat_calls(ollama_server) == calls + 3
    assert len(AnswerCache.in_store(s.store.path)) == 3

    # off by default
    plain = Rag(settings.model_copy(update={"llm": llm.model_copy(update={"cache": False})}), embedder=embedder)
    assert plain.cache is None and not plain.answerer.ask(QUESTION).cached
    assert chat_calls(ollama_server) == calls + 4


@pytest.mark.slow
def test_cache_file_holds_no_secrets_or_questions(openai_server, settings, corpus, embedder, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", TEST_OPENAI_KEY)
    llm = LLMSettings(provider="openai", base_url=openai_server.url + "/v1", model="smollm2", temperature=0.0,
                      max_tokens=16, cache=True)
    rag = Rag(settings.model_copy(update={"llm": llm}), embedder=embedder)
    rag.ingestor.ingest([corpus])
    rag.answerer.ask(QUESTION)
    assert rag.answerer.ask(QUESTION).cached
    data = b"".join(p.read_bytes() for p in settings.store.path.glob("answer-cache.sqlite3*"))
    assert data and TEST_OPENAI_KEY.encode() not in data
    assert QUESTION.encode() not in data  # rows are keyed by a hash; the answer itself may quote the passages


def test_key_ignores_credentials_in_the_url_but_not_the_rest():
    messages = [HumanMessage("q")]
    params = {"temperature": 0.1, "top_p": 0.9, "max_tokens": 10}

    def key(messages=messages, **changes):
        values = {"provider": "openai", "model": "m", "base_url": "http://host:8000/v1", "params": params, **changes}
        return AnswerCache.key(messages, **values)

    assert key() == key(base_url="http://user:secret@host:8000/v1/")
    assert len({key(), key(model="n"), key(provider="azure"), key(base_url="http://other:8000/v1"),
                key(params={**params, "max_tokens": 11}), key(messages=[HumanMessage("q2")])}) == 6
