"""Retries over real HTTP: a loopback proxy answers 429 (with Retry-After), 503, or nothing at all (a hang)
before passing requests through to a real server; the providers retry, report each retry, and explain the
failure when the faults outlast llm.max_retries. Waits between retries are recorded instead of slept."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import HumanMessage

from rag.cli import ingest_main, main
from rag.config import EmbeddingSettings, LLMSettings
from rag.errors import AuthenticationError, ProviderUnavailableError
from rag.providers import build_chat_model, build_embedder
from tests.servers.fixtures import TEST_OPENAI_KEY
from tests.servers.proxy import hang, rate_limited, unauthorized, unavailable

pytestmark = pytest.mark.slow

HI = [HumanMessage("Say hello to Mira.")]


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", TEST_OPENAI_KEY)


class Recorder:
    """Collects on_retry calls and the waits the retry policy asked for."""

    def __init__(self) -> None:
        self.retries: list[tuple[int, int, str]] = []
        self.sleeps: list[float] = []

    def on_retry(self, attempt, max_retries, error, delay) -> None:
        self.retries.append((attempt, max_retries, error.message))

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def llm(provider: str, base_url: str, **overrides) -> LLMSettings:
    values = {"provider": provider, "base_url": base_url, "model": "smollm2", "temperature": 0.0, "max_tokens": 8,
              "max_retries": 3, "timeout": 30}
    return LLMSettings(**{**values, **overrides})


def test_rate_limit_and_unavailable_are_retried_then_succeed(openai_server, make_proxy):
    proxy = make_proxy(openai_server.url)
    proxy.inject(rate_limited(retry_after=2), unavailable())
    rec = Recorder()
    chat = build_chat_model(llm("openai", proxy.url + "/v1"), sleep=rec.sleep)
    text, usage = chat.invoke(HI, on_retry=rec.on_retry)
    assert text.strip() and usage.completion_tokens > 0
    assert proxy.outcomes() == ["429", "503", "passed"]
    assert [(a, m) for a, m, _ in rec.retries] == [(1, 3), (2, 3)]
    assert "rate limiting" in rec.retries[0][2] and "HTTP 503" in rec.retries[1][2]
    assert rec.sleeps[0] == 2.0  # Retry-After honoured
    assert 0.25 <= rec.sleeps[1] <= 1.0  # exponential backoff with jitter: base 0.5 s * 2, halved at most


def test_a_hang_times_out_and_is_retried(openai_server, make_proxy):
    proxy = make_proxy(openai_server.url)
    proxy.inject(hang())
    rec = Recorder()
    chat = build_chat_model(llm("openai", proxy.url + "/v1", timeout=3.0), sleep=rec.sleep)
    text, _ = chat.invoke(HI, on_retry=rec.on_retry)
    assert text.strip()
    assert proxy.outcomes() == ["hang", "passed"]
    assert len(rec.retries) == 1 and "did not answer in time" in rec.retries[0][2]


def test_faults_outlasting_max_retries_end_in_a_clear_error(openai_server, make_proxy):
    proxy = make_proxy(openai_server.url)
    proxy.inject(unavailable(), rate_limited(retry_after=1), unavailable())
    rec = Recorder()
    chat = build_chat_model(llm("openai", proxy.url + "/v1", max_retries=2), sleep=rec.sleep)
    with pytest.raises(ProviderUnavailableError) as err:
        chat.invoke(HI, on_retry=rec.on_retry)
    assert proxy.outcomes() == ["503", "429", "503"]
    assert err.value.message.startswith(f"OpenAI answered HTTP 503 at {proxy.url}/v1")
    assert err.value.message.endswith("(gave up after 2 retries)")
    assert err.value.hint == "the service is overloaded or down; try again later"
    assert [a for a, _, _ in rec.retries] == [1, 2]


def test_rejected_key_is_never_retried(openai_server, make_proxy):
    proxy = make_proxy(openai_server.url)
    proxy.inject(unauthorized())
    rec = Recorder()
    chat = build_chat_model(llm("openai", proxy.url + "/v1"), sleep=rec.sleep)
    with pytest.raises(AuthenticationError) as err:
        chat.invoke(HI, on_retry=rec.on_retry)
    assert proxy.outcomes() == ["401"]
    assert rec.retries == [] and rec.sleeps == []
    assert "set OPENAI_API_KEY" in str(err.value)


def test_ollama_retries_through_the_proxy(ollama_server, make_proxy):
    proxy = make_proxy(ollama_server.url, error_style="ollama")
    proxy.inject(unavailable(), hang())
    rec = Recorder()
    chat = build_chat_model(llm("ollama", proxy.url, timeout=3.0), sleep=rec.sleep)
    items = list(chat.stream(HI, on_retry=rec.on_retry))
    assert proxy.outcomes() == ["503", "hang", "passed"]
    assert "HTTP 503" in rec.retries[0][2] and "did not answer in time" in rec.retries[1][2]
    usage = items[-1]
    assert usage.completion_tokens == ollama_server.app.state.last_chat["eval_count"]


def test_embeddings_are_retried(openai_server, ollama_server, make_proxy):
    proxy = make_proxy(openai_server.url)
    proxy.inject(rate_limited(retry_after=1), unavailable())
    rec = Recorder()
    embed = build_embedder(EmbeddingSettings(provider="openai", base_url=proxy.url + "/v1", model="all-MiniLM-L6-v2"),
                           max_retries=2, sleep=rec.sleep)
    vectors = embed.embed_documents(["reactor", "apprentices"], on_retry=rec.on_retry)
    assert vectors.shape == (2, 384)
    assert proxy.outcomes() == ["429", "503", "passed"] and rec.sleeps[0] == 1.0

    proxy = make_proxy(ollama_server.url, error_style="ollama")
    proxy.inject(unavailable(), unavailable())
    embed = build_embedder(EmbeddingSettings(provider="ollama", base_url=proxy.url, model="all-minilm"),
                           max_retries=1, sleep=rec.sleep)
    with pytest.raises(ProviderUnavailableError, match="gave up after 1 retries"):
        embed.embed_query("reactor")
    assert proxy.outcomes() == ["503", "503"]


def test_cli_ask_shows_retries(ollama_server, make_proxy, corpus, tmp_path, monkeypatch, capsys):
    """`python -m rag ask` tells the user about each retry on stderr and still answers."""
    proxy = make_proxy(ollama_server.url, error_style="ollama")
    for name, value in {"RAG_STORE__PATH": str(tmp_path / "store"), "RAG_LLM__PROVIDER": "ollama",
                        "RAG_LLM__BASE_URL": proxy.url, "RAG_LLM__MODEL": "smollm2", "RAG_LLM__MAX_TOKENS": "24",
                        "RAG_LLM__TEMPERATURE": "0", "RAG_EMBEDDINGS__PROVIDER": "ollama",
                        "RAG_EMBEDDINGS__BASE_URL": ollama_server.url, "RAG_EMBEDDINGS__MODEL": "all-minilm"}.items():
        monkeypatch.setenv(name, value)
    assert ingest_main([str(corpus)]) == 0
    capsys.readouterr()
    proxy.inject(unavailable(), unavailable())
    assert main(["ask", "--json", "How many apprentices did Zorblax train in 2023?"]) == 0
    captured = capsys.readouterr()
    assert "retrying (1/3)" in captured.err and "retrying (2/3)" in captured.err
    assert "Ollama answered HTTP 503" in captured.err
    answer = json.loads(captured.out)
    assert answer["usage"]["completion_tokens"] == ollama_server.app.state.last_chat["eval_count"]
    assert proxy.outcomes() == ["503", "503", "passed"]

    proxy.inject(*[unavailable()] * 4)
    assert main(["ask", "How many apprentices did Zorblax train in 2023?"]) == 2
    err = capsys.readouterr().err
    assert "error: Ollama answered HTTP 503" in err and "gave up after 3 retries" in err
    assert "fix: the service is overloaded or down" in err and "Traceback" not in err
