"""The `openai` chat and embedding providers over real HTTP: llama-cpp-python's OpenAI-compatible server (a real
third-party server) and the OpenAI-protocol test server (OpenAI's usage, auth and error shapes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from rag import Rag
from rag.cli import ingest_main, main
from rag.config import EmbeddingSettings, LLMSettings
from rag.errors import AuthenticationError, ContextTooLongError, ModelNotFoundError, ProviderUnavailableError
from rag.providers import build_chat_model, build_embedder
from rag.types import Done, Retrieved, Token, Usage
from tests.servers.fixtures import TEST_OPENAI_KEY
from tests.servers.running import free_port

pytestmark = pytest.mark.slow

HI = [SystemMessage("You are brief."), HumanMessage("Say hello to Mira.")]
QUESTION = "How many megawatts does the Quillon-7 reactor at Vessmark produce?"


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", TEST_OPENAI_KEY)


def openai_llm(base_url: str, **overrides) -> LLMSettings:
    values = {"provider": "openai", "base_url": base_url, "model": "smollm2", "temperature": 0.0, "max_tokens": 16,
              "max_retries": 0, "timeout": 60}
    return LLMSettings(**{**values, **overrides})


def test_chat_streams_through_llama_cpp_server_and_sends_max_tokens_it_understands(llama_cpp_server, make_proxy, key):
    proxy = make_proxy(llama_cpp_server.url)  # no faults: only to see the requests on the wire
    chat = build_chat_model(openai_llm(proxy.url + "/v1", max_tokens=6))
    items = list(chat.stream(HI))
    pieces, usage = items[:-1], items[-1]
    assert pieces and all(isinstance(p, str) for p in pieces) and "".join(pieces).strip()
    assert isinstance(usage, Usage)
    # llama.cpp's server streams one token a chunk and sends no usage when streaming: counts are estimates
    assert len(pieces) <= 6
    assert usage.estimated and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    body = proxy.hits[-1]["json"]
    assert proxy.hits[-1]["path"] == "/v1/chat/completions"
    assert body["max_tokens"] == 6 and "max_completion_tokens" not in body  # llama.cpp ignores the new name
    assert body["stream"] is True and body["model"] == "smollm2" and body["temperature"] == 0.0

    text, _ = chat.invoke(HI, params={"max_tokens": 3, "temperature": 0.5})
    body = proxy.hits[-1]["json"]
    assert body["max_tokens"] == 3 and body["temperature"] == 0.5
    assert text.strip() and len(text) < len("".join(pieces)) + 20


def test_usage_and_cost_come_from_the_streamed_usage_chunk(openai_server, key):
    chat = build_chat_model(openai_llm(openai_server.url + "/v1", prices={"smollm2": (150.0, 600.0)}))
    text, usage = chat.invoke(HI)
    sent = openai_server.app.state.requests[-1]["json"]
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["max_tokens"] == 16  # base_url set: the classic field, which every compatible server knows
    reported = openai_server.app.state.last_usage
    assert text.strip()
    assert (usage.prompt_tokens, usage.completion_tokens) == (reported["prompt_tokens"], reported["completion_tokens"])
    assert not usage.estimated
    assert usage.cost_usd == pytest.approx((usage.prompt_tokens * 150.0 + usage.completion_tokens * 600.0) / 1e6)


def test_real_openai_gets_max_completion_tokens(openai_server, key, monkeypatch):
    """Without base_url the provider talks to api.openai.com, which wants max_completion_tokens; check the
    request it would send by pointing the SDK's own base-URL variable at the test server."""
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url + "/v1")
    chat = build_chat_model(LLMSettings(provider="openai", model="smollm2", max_tokens=5, max_retries=0))
    assert chat.base_url is None
    chat.invoke(HI, params={"max_tokens": 4})
    body = openai_server.app.state.requests[-1]["json"]
    assert body["max_completion_tokens"] == 4 and "max_tokens" not in body
    assert openai_server.app.state.last_usage["completion_tokens"] <= 4


def test_embeddings_match_the_local_model(openai_server, embedder, key):
    remote = build_embedder(EmbeddingSettings(provider="openai", base_url=openai_server.url + "/v1",
                                              model="all-MiniLM-L6-v2", batch_size=2))
    texts = ["The Quillon-7 reactor produces 418 megawatts.", "누리별 항공은 2009년 제주에서 설립되었다.",
             "Lunch is served from noon.", "Safety training takes eleven days.", "Calloway Bay"]
    before = len(openai_server.app.state.requests)
    vectors = remote.embed_documents(texts)
    calls = openai_server.app.state.requests[before:]
    assert [len(c["json"]["input"]) for c in calls] == [2, 2, 1]  # batched by embeddings.batch_size
    assert vectors.shape == (5, 384) and remote.dimension == 384
    local = embedder.embed_documents(texts)
    cosine = np.sum(vectors * local, axis=1) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(local, axis=1))
    assert np.all(cosine > 0.999)
    query = remote.embed_query("reactor output")
    assert query.shape == (384,)


def test_ask_end_to_end_through_the_cli(llama_cpp_server, openai_server, corpus, tmp_path, monkeypatch, capsys, key):
    """ingest + ask through `python -m rag` with chat and embeddings both over the OpenAI protocol."""
    for name, value in {"RAG_STORE__PATH": str(tmp_path / "store"), "RAG_LLM__PROVIDER": "openai",
                        "RAG_LLM__BASE_URL": llama_cpp_server.url + "/v1", "RAG_LLM__MODEL": "smollm2",
                        "RAG_LLM__TEMPERATURE": "0", "RAG_LLM__MAX_TOKENS": "48",
                        "RAG_LLM__PRICES": "{smollm2: [1.0, 2.0]}", "RAG_EMBEDDINGS__PROVIDER": "openai",
                        "RAG_EMBEDDINGS__BASE_URL": openai_server.url + "/v1",
                        "RAG_EMBEDDINGS__MODEL": "all-MiniLM-L6-v2"}.items():
        monkeypatch.setenv(name, value)
    assert ingest_main([str(corpus), "--json"]) == 0
    capsys.readouterr()
    assert main(["ask", "--json", QUESTION]) == 0
    captured = capsys.readouterr()
    answer = json.loads(captured.out)
    assert ("zorblax-review.pdf", 3) in [(s["source"], s["page"]) for s in answer["sources"]]
    usage = answer["usage"]
    assert usage["prompt_tokens"] > 100 and usage["completion_tokens"] > 0
    assert usage["estimated"] is True  # llama.cpp's server reports no usage when streaming
    assert usage["cost_usd"] == pytest.approx((usage["prompt_tokens"] * 1.0 + usage["completion_tokens"] * 2.0) / 1e6,
                                              abs=1e-6)
    assert "Traceback" not in captured.err

    assert main(["ask", QUESTION]) == 0  # the human-readable form prints usage and cost on stderr
    err = capsys.readouterr().err
    assert "tokens:" in err and "prompt" in err and "~$" in err


def test_answerer_streams_and_counts_over_openai(openai_server, settings, embedder, corpus, key):
    llm = openai_llm(openai_server.url + "/v1", max_tokens=40, prices={"smollm2": (1.0, 2.0)})
    rag = Rag(settings.model_copy(update={"llm": llm}), embedder=embedder, chat=build_chat_model(llm))
    rag.ingestor.ingest([corpus])
    events = list(rag.answerer.stream(QUESTION))
    assert isinstance(events[0], Retrieved) and isinstance(events[-1], Done)
    assert any(isinstance(e, Token) for e in events)
    answer = events[-1].answer
    assert ("zorblax-review.pdf", 3) in [(s.hit.source, s.hit.page) for s in answer.sources]
    reported = openai_server.app.state.last_usage
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (reported["prompt_tokens"],
                                                                          reported["completion_tokens"])
    assert answer.usage.cost_usd == pytest.approx((reported["prompt_tokens"] + 2 * reported["completion_tokens"]) / 1e6)
    assert answer.to_json()["usage"]["cost_usd"] > 0


# -- clear errors ---------------------------------------------------------------------------------------

def test_missing_key_is_reported_before_any_request(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(AuthenticationError) as err:
        build_chat_model(LLMSettings(provider="openai"))
    assert "OPENAI_API_KEY" in err.value.hint
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        build_embedder(EmbeddingSettings(provider="openai"))


def test_rejected_key_is_not_retried(openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-123")
    retries = []
    chat = build_chat_model(openai_llm(openai_server.url + "/v1", max_retries=3))
    before = len(openai_server.app.state.requests)
    with pytest.raises(AuthenticationError) as err:
        chat.invoke(HI, on_retry=lambda *a: retries.append(a))
    assert "rejected the API key (401)" in err.value.message
    assert err.value.hint == "set OPENAI_API_KEY to a valid key"
    assert retries == [] and len(openai_server.app.state.requests) - before == 1
    embed = build_embedder(EmbeddingSettings(provider="openai", base_url=openai_server.url + "/v1",
                                             model="all-MiniLM-L6-v2"))
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        embed.embed_query("hello")


def test_unknown_model(openai_server, key):
    chat = build_chat_model(openai_llm(openai_server.url + "/v1", model="gpt-9"))
    with pytest.raises(ModelNotFoundError) as err:
        chat.invoke(HI)
    assert "model 'gpt-9' was not found" in err.value.message and "llm.model" in err.value.hint
    embed = build_embedder(EmbeddingSettings(provider="openai", base_url=openai_server.url + "/v1",
                                             model="text-embedding-9"))
    with pytest.raises(ModelNotFoundError) as err:
        embed.embed_documents(["x"])
    assert "text-embedding-9" in err.value.message and "embeddings.model" in err.value.hint


def test_context_too_long_from_llama_cpp_server(llama_cpp_server, key):
    chat = build_chat_model(openai_llm(llama_cpp_server.url + "/v1", max_retries=2))
    retries = []
    with pytest.raises(ContextTooLongError) as err:
        chat.invoke([HumanMessage("reactor output " * 2500)], on_retry=lambda *a: retries.append(a))
    assert "context window" in err.value.message and "retrieval.k" in err.value.hint
    assert retries == []


def test_server_not_running_is_retried_then_explained(key):
    url = f"http://127.0.0.1:{free_port()}/v1"
    sleeps, retries = [], []
    chat = build_chat_model(openai_llm(url, max_retries=2), sleep=sleeps.append)
    with pytest.raises(ProviderUnavailableError) as err:
        chat.invoke(HI, on_retry=lambda attempt, most, error, delay: retries.append((attempt, most)))
    assert f"cannot connect to OpenAI at {url}" in err.value.message
    assert "gave up after 2 retries" in err.value.message
    assert "server is running" in err.value.hint
    assert retries == [(1, 2), (2, 2)] and len(sleeps) == 2
