"""The `ollama` chat and embedding providers, through langchain-ollama, against the Ollama-API test server."""

from __future__ import annotations

import numpy as np
import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from rag import Rag
from rag.config import EmbeddingSettings, LLMSettings
from rag.errors import EmbeddingMismatchError, ModelNotFoundError, ProviderUnavailableError
from rag.providers import build_chat_model, build_embedder
from rag.types import Done, Token
from tests.servers.running import free_port

pytestmark = pytest.mark.slow

HI = [SystemMessage("You are brief."), HumanMessage("Say hello to Mira.")]


def ollama_llm(base_url: str, **overrides) -> LLMSettings:
    values = {"provider": "ollama", "base_url": base_url, "model": "smollm2", "temperature": 0.0, "max_tokens": 16,
              "max_retries": 0, "timeout": 60}
    return LLMSettings(**{**values, **overrides})


def ollama_embeddings(base_url: str, **overrides) -> EmbeddingSettings:
    return EmbeddingSettings(**{"provider": "ollama", "base_url": base_url, "model": "all-minilm", **overrides})


def test_chat_streams_ndjson_and_counts_tokens_from_eval_counts(ollama_server):
    chat = build_chat_model(ollama_llm(ollama_server.url, max_tokens=12, prices={"smollm2": (1.0, 3.0)}))
    before = len(ollama_server.app.state.requests)
    items = list(chat.stream(HI))
    pieces, usage = items[:-1], items[-1]
    assert len(pieces) > 1 and "".join(pieces).strip()  # streamed piece by piece
    sent = ollama_server.app.state.requests[before]
    assert sent["path"] == "/api/chat" and sent["json"]["stream"] is True and sent["json"]["model"] == "smollm2"
    assert sent["json"]["options"]["num_predict"] == 12 and sent["json"]["options"]["temperature"] == 0.0
    final = ollama_server.app.state.last_chat
    assert (usage.prompt_tokens, usage.completion_tokens) == (final["prompt_eval_count"], final["eval_count"])
    assert not usage.estimated and 0 < usage.completion_tokens <= 12
    assert usage.cost_usd == pytest.approx((usage.prompt_tokens + 3 * usage.completion_tokens) / 1e6)


def test_per_request_parameters(ollama_server):
    chat = build_chat_model(ollama_llm(ollama_server.url))
    text, usage = chat.invoke(HI, params={"max_tokens": 4, "temperature": 0.3, "top_p": 0.5})
    options = ollama_server.app.state.requests[-1]["json"]["options"]
    assert (options["num_predict"], options["temperature"], options["top_p"]) == (4, 0.3, 0.5)
    assert text.strip() and usage.completion_tokens <= 4


def test_embeddings_match_the_local_model(ollama_server, embedder):
    remote = build_embedder(ollama_embeddings(ollama_server.url))
    texts = ["The Quillon-7 reactor produces 418 megawatts.", "누리별 항공의 정시 운항률은 91.3%였다."]
    vectors = remote.embed_documents(texts)
    assert ollama_server.app.state.requests[-1]["path"] == "/api/embed"
    assert vectors.shape == (2, 384)
    assert np.allclose(vectors, embedder.embed_documents(texts), atol=1e-5)
    assert remote.embed_query("reactor").shape == (384,)


def test_lists_pulled_models(ollama_server):
    assert "smollm2:latest" in build_chat_model(ollama_llm(ollama_server.url)).list_models()


def test_model_not_pulled(ollama_server):
    chat = build_chat_model(ollama_llm(ollama_server.url, model="llama3.2"))
    with pytest.raises(ModelNotFoundError) as err:
        chat.invoke(HI)
    assert err.value.message == f"model 'llama3.2' is not pulled in Ollama at {ollama_server.url}"
    assert err.value.hint == "run `ollama pull llama3.2`"
    embed = build_embedder(ollama_embeddings(ollama_server.url, model=None))  # default: nomic-embed-text
    with pytest.raises(ModelNotFoundError) as err:
        embed.embed_query("reactor")
    assert err.value.hint == "run `ollama pull nomic-embed-text`"


def test_server_not_running(monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    sleeps: list[float] = []
    chat = build_chat_model(ollama_llm(url, max_retries=1), sleep=sleeps.append)
    with pytest.raises(ProviderUnavailableError) as err:
        chat.invoke(HI)
    assert err.value.message == f"cannot connect to Ollama at {url} (gave up after 1 retries)"
    assert err.value.hint.startswith("start it with `ollama serve`")
    assert len(sleeps) == 1
    embed = build_embedder(ollama_embeddings(url), max_retries=0)
    with pytest.raises(ProviderUnavailableError, match="ollama serve"):
        embed.embed_query("reactor")


def test_ask_with_chat_and_embeddings_from_ollama(ollama_server, settings, corpus, embedder):
    llm = ollama_llm(ollama_server.url, max_tokens=40)
    s = settings.model_copy(update={"llm": llm, "embeddings": ollama_embeddings(ollama_server.url)})
    rag = Rag(s)  # everything built from settings: both models are reached over HTTP
    report = rag.ingestor.ingest([corpus])
    assert report.ok and len(report.added) == 2
    events = list(rag.answerer.stream("누리별 항공의 2023년 탑승객 수는 몇 명인가요?"))
    answer = events[-1].answer
    assert isinstance(events[-1], Done) and any(isinstance(e, Token) for e in events)
    assert ("누리별 항공 보고서.pdf", 2) in [(src.hit.source, src.hit.page) for src in answer.sources]
    final = ollama_server.app.state.last_chat
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (final["prompt_eval_count"],
                                                                          final["eval_count"])

    # The same store read with other embeddings (local multilingual-e5-small, also 384 dimensions) is refused, clearly.
    local = Rag(settings.model_copy(update={"store": s.store}), embedder=embedder)
    with pytest.raises(EmbeddingMismatchError) as err:
        local.retriever.search("reactor")
    assert "ollama/all-minilm (384-d)" in err.value.message and "local/multilingual-e5-small" in err.value.message
    assert "RAG_STORE__COLLECTION" in err.value.hint
