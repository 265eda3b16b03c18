"""API keys never leave the environment: not into logs (at DEBUG), error messages, the store folder, the answer
cache or the upload folder, through a full ingest + ask against the loopback OpenAI test server (chat and
embeddings by API) and requests that fail (a rejected key: 401; a server error: 500)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import Rag
from rag.config import load_config
from rag.errors import AuthenticationError, ConfigError, RagError
from tests.conftest import ZORBLAX
from tests.pdfs import write_pdf
from tests.servers.openai_api import openai_app
from tests.servers.proxy import Fault
from tests.servers.running import ServerThread

pytestmark = pytest.mark.slow

SECRET = "sk-test-SECRET-7b2e91c4d0a5f3e8"  # what the server accepts
WRONG = "sk-test-SECRET-WRONG-5a1d0c9e88f2"  # a key it rejects (401)
QUESTION = "How many megawatts does the Quillon-7 reactor at Vessmark produce?"


@pytest.fixture(scope="module")
def server(server_models) -> Iterator[ServerThread]:
    with ServerThread(openai_app(server_models, api_key=SECRET, azure_key="unused")) as running:
        yield running


@pytest.fixture
def root(tmp_path: Path, server: ServerThread, make_proxy, monkeypatch, caplog) -> Iterator[dict]:
    """A Rag on OpenAI-protocol chat and embeddings, through a fault proxy, with the key in the environment
    and every log record kept (DEBUG, all loggers: the SDK's and httpx's too)."""
    proxy = make_proxy(server.url)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    settings = load_config(environ={
        "RAG_STORE__PATH": str(tmp_path / "store"),
        "RAG_APP__UPLOAD_DIR": str(tmp_path / "uploads"),
        "RAG_LLM__PROVIDER": "openai", "RAG_LLM__BASE_URL": proxy.url + "/v1", "RAG_LLM__MODEL": "smollm2",
        "RAG_LLM__MAX_TOKENS": "48", "RAG_LLM__MAX_RETRIES": "0", "RAG_LLM__CACHE": "true",
        "RAG_LLM__TEMPERATURE": "0",
        "RAG_EMBEDDINGS__PROVIDER": "openai", "RAG_EMBEDDINGS__BASE_URL": proxy.url + "/v1",
        "RAG_EMBEDDINGS__MODEL": "all-MiniLM-L6-v2",
    })
    yield {"rag": Rag(settings), "proxy": proxy, "folder": tmp_path, "settings": settings, "server": server}


def leaks(text: str | bytes) -> list[str]:
    """The keys (or their distinctive middle) found in ``text``."""
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    return [key for key in (SECRET, WRONG, SECRET[8:], WRONG[8:]) if key.encode() in data]


def files_with_keys(folder: Path) -> list[str]:
    return [str(path) for path in folder.rglob("*") if path.is_file() and leaks(path.read_bytes())]


def test_no_key_in_logs_errors_store_cache_or_uploads(root, caplog, capsys, monkeypatch):
    rag, proxy, folder = root["rag"], root["proxy"], root["folder"]
    upload = write_pdf(folder / "incoming" / "tmp-upload.pdf", ZORBLAX)
    report = rag.upload([(upload, "zorblax review.pdf")])
    assert report.added == ["zorblax review.pdf"], report.failed

    answer = rag.ask(QUESTION)
    again = rag.ask(QUESTION)  # from the answer cache
    assert answer.text and again.text == answer.text
    assert (folder / "store" / "answer-cache.sqlite3").exists()
    sent = [r["headers"].get("authorization") for r in root["server"].app.state.requests]
    assert f"Bearer {SECRET}" in sent  # the key did go where it belongs: the request header

    messages: list[str] = []
    # A server error (500), then a rejected key (401): the messages the CLI and the UI would show.
    proxy.inject(Fault(500, "The server had an error while processing your request."))
    with pytest.raises(RagError) as failed:
        rag.ask("What is served in the canteen, and when?")
    messages += [str(failed.value), failed.value.hint, repr(failed.value)]

    monkeypatch.setenv("OPENAI_API_KEY", WRONG)
    wrong = Rag(root["settings"])
    with pytest.raises(AuthenticationError) as rejected:
        wrong.ask("When was Zorblax Dynamics founded?")
    messages += [str(rejected.value), rejected.value.hint, repr(rejected.value)]
    with pytest.raises(AuthenticationError) as rejected_ingest:
        wrong.ingest([write_pdf(folder / "incoming" / "second.pdf", ["The Sorvane bridge opened in 2021."])])
    messages += [str(rejected_ingest.value), rejected_ingest.value.hint]
    assert "401" in " ".join(messages) or "key" in " ".join(messages).lower()

    logged = "\n".join(caplog.messages) + "\n".join(caplog.text.splitlines())
    assert caplog.records and any(r.levelno == logging.DEBUG for r in caplog.records)
    out = capsys.readouterr()
    assert leaks(logged) == [], "a key is in the logs"
    assert leaks("\n".join(messages)) == [], "a key is in an error message"
    assert leaks(out.out + out.err) == []
    assert files_with_keys(folder / "store") == [], "a key is in the store folder"
    assert files_with_keys(folder / "uploads") == [], "a key is in the upload folder"



@pytest.mark.parametrize("url", [f"http://rag:{SECRET}@127.0.0.1:8080/v1", f"https://proxy.example/v1?api-key={SECRET}"])
def test_a_base_url_holding_a_key_is_refused_without_showing_it(url):
    """httpx logs request URLs (and turns user:password@ into Basic auth): a key in the URL would be logged."""
    for section in ("LLM", "EMBEDDINGS", "TRANSCRIPTION"):
        with pytest.raises(ConfigError) as refused:
            load_config(environ={f"RAG_{section}__BASE_URL": url})
        assert "OPENAI_API_KEY" in str(refused.value) and leaks(str(refused.value)) == []
