"""The HTTP API (rag/http) served for real on a loopback port: a real Rag (Chroma in a temporary folder, the
real embedding model, the bundled llama.cpp model), called with httpx and with the real ``openai`` client.

One app serves the whole module; the corpus is uploaded through the API once. Only three questions reach the
model (each with a short ``max_tokens``); refusals are decided before any model call and cost nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openai import AuthenticationError, BadRequestError, OpenAI

from rag import ConfigError, Rag, load_config
from rag.http import TOKEN_ENV, api_token, create_app, is_loopback
from rag.http.completions import CHECKED, ending
from rag.types import Answer, Claim
from tests.conftest import ROOT
from tests.pdfs import write_pdf
from tests.servers.running import ServerThread, free_port

TOKEN = "rag-test-token-3f9a1c7e"
HANGANG = [
    "한강 물류 2024 연례 보고서\n\n한강 물류는 1987년 인천에서 설립된 물류 회사이다.",
    "창고 현황\n\n한강 물류의 평택 창고는 면적이 48,200제곱미터이며 2021년에 완공되었다. 냉동 구역은 전체의 15%이다.",
]
REACTOR = "How many megawatts does the Quillon-7 reactor at Vessmark produce?"
OUT_OF_SCOPE = "Who won the football world cup in 1998?"


@pytest.fixture(scope="module")
def rag(tmp_path_factory: pytest.TempPathFactory, embedder, chat) -> Rag:
    folder = tmp_path_factory.mktemp("http")
    settings = load_config(environ={"RAG_STORE__PATH": str(folder / "store"),
                                    "RAG_APP__UPLOAD_DIR": str(folder / "uploads")})
    return Rag(settings, embedder=embedder, chat=chat)


@pytest.fixture(scope="module")
def server(rag: Rag):
    with ServerThread(create_app(rag, token=TOKEN)) as server:
        yield server


@pytest.fixture(scope="module")
def api(server):
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=600) as client:
        yield client


@pytest.fixture(scope="module")
def client(server) -> OpenAI:
    return OpenAI(base_url=server.url + "/v1", api_key=TOKEN, timeout=600, max_retries=0)


@pytest.fixture(scope="module")
def uploaded(api, corpus: Path) -> dict:
    """The English and the Korean test PDF, uploaded through the API."""
    files = [("files", (p.name, p.read_bytes(), "application/pdf")) for p in sorted(corpus.glob("*.pdf"))]
    response = api.post("/api/documents", files=files)
    assert response.status_code == 200, response.text
    return response.json()


def test_upload_list_search_and_delete_a_korean_pdf(api, rag, tmp_path, uploaded):
    assert sorted(uploaded["added"]) == ["zorblax-review.pdf", "누리별 항공 보고서.pdf"]
    pdf = write_pdf(tmp_path / "upload.pdf", HANGANG)
    files = [("files", ("한강 물류 보고서.pdf", pdf.read_bytes(), "application/pdf")),
             ("files", ("broken.pdf", os.urandom(2000), "application/pdf"))]
    report = api.post("/api/documents", files=files).json()
    assert report["added"] == ["한강 물류 보고서.pdf"]
    assert [f["file"] for f in report["failed"]] == ["broken.pdf"] and "not a PDF" in report["failed"][0]["reason"]
    copy = rag.settings.app.upload_dir / "한강 물류 보고서.pdf"
    assert copy.is_file() and not (rag.settings.app.upload_dir / "broken.pdf").exists()

    listed = {d["source"]: d for d in api.get("/api/documents").json()}
    doc = listed["한강 물류 보고서.pdf"]
    assert (doc["pages"], len(doc["doc_id"])) == (2, 64) and doc["chunks"] >= 2
    assert set(doc) >= {"source", "doc_id", "pages", "chunks", "ingested_at", "ocr_pages", "path", "version"}

    hits = api.post("/api/search", json={"query": "평택 창고 면적", "k": 3}).json()
    assert (hits[0]["source"], hits[0]["page"]) == ("한강 물류 보고서.pdf", 2) and "48,200" in hits[0]["text"]
    assert set(hits[0]) == {"source", "page", "text", "score"}

    deleted = api.delete(f"/api/documents/{doc['doc_id']}")
    assert deleted.status_code == 200 and deleted.json()["deleted"][0]["source"] == "한강 물류 보고서.pdf"
    assert "한강 물류 보고서.pdf" not in {d["source"] for d in api.get("/api/documents").json()}
    assert not copy.exists()
    assert all(h["source"] != "한강 물류 보고서.pdf" for h in api.post("/api/search", json={"query": "평택 창고"}).json())
    again = api.delete(f"/api/documents/{doc['doc_id']}")
    assert again.status_code == 404
    assert again.json()["error"]["type"] == "DocumentNotFoundError" and doc["doc_id"] in again.json()["error"]["message"]


def test_search_filters_by_document_and_mode(api, uploaded):
    hits = api.post("/api/search", json={"query": "Quillon-7 reactor", "k": 2, "mode": "bm25"}).json()
    assert len(hits) <= 2 and (hits[0]["source"], hits[0]["page"]) == ("zorblax-review.pdf", 3)
    only = api.post("/api/search", json={"query": "Quillon-7 reactor", "sources": ["누리별 항공 보고서.pdf"]}).json()
    assert {h["source"] for h in only} == {"누리별 항공 보고서.pdf"}
    wrong = api.post("/api/search", json={"query": "x", "mode": "fuzzy"})
    assert wrong.status_code == 422
    error = wrong.json()["error"]
    assert "mode" in error["message"] and error["hint"] and "Traceback" not in wrong.text


def test_a_question_the_documents_do_not_answer_is_refused_without_a_model_call(api, uploaded):
    answer = api.post("/api/ask", json={"question": OUT_OF_SCOPE}).json()
    assert answer["refused"] is True and "documents" in answer["answer"]
    assert answer["sources"] == [] and answer["usage"] == {"prompt_tokens": 0, "completion_tokens": 0}


@pytest.mark.slow
def test_ask_streams_the_passages_the_tokens_and_the_answer(api, uploaded):
    with api.stream("POST", "/api/ask", json={"question": REACTOR, "stream": True, "max_tokens": 60}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response.iter_lines())
    names = [name for name, _ in events]
    assert names[0] == "retrieved" and names[-1] == "done" and "token" in names, names
    retrieved, done = events[0][1], events[-1][1]
    assert any((s["source"], s["page"]) == ("zorblax-review.pdf", 3) for s in retrieved["sources"])
    assert done["sources"] == retrieved["sources"]
    assert not done["refused"] and "418" in done["answer"] and done["citations"], done
    cited = {s["n"]: s for s in done["sources"]}[done["citations"][0]]
    assert (cited["source"], cited["page"]) == ("zorblax-review.pdf", 3)
    assert f"[{done['citations'][0]}]" in done["answer"] and done["usage"]["completion_tokens"] > 0


@pytest.mark.slow
def test_openai_client_gets_a_cited_answer_with_its_sources(client, uploaded):
    completion = client.chat.completions.create(
        model="rag", max_tokens=60,
        messages=[{"role": "system", "content": "You are helpful."}, {"role": "user", "content": REACTOR}])
    content = completion.choices[0].message.content
    assert "418" in content and completion.choices[0].finish_reason == "stop"
    extra = completion.model_extra
    assert extra["refused"] is False and extra["citations"]
    sources = {s["n"]: s for s in extra["sources"]}
    assert f"[{extra['citations'][0]}]" in content
    assert (sources[extra["citations"][0]]["source"], sources[extra["citations"][0]]["page"]) == ("zorblax-review.pdf", 3)
    usage = completion.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


@pytest.mark.slow
def test_openai_client_streams_a_korean_answer_and_gets_the_sources_on_the_last_chunk(client, uploaded):
    chunks = list(client.chat.completions.create(
        model="rag", max_tokens=60, stream=True,
        messages=[{"role": "user", "content": "누리별 항공의 2023년 탑승객 수는 몇 명인가요?"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 3 and "740만" in text, text
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.usage is not None and last.usage.completion_tokens > 0
    extra = last.model_extra
    assert not extra["refused"]
    assert ("누리별 항공 보고서.pdf", 2) in {(s["source"], s["page"]) for s in extra["sources"]}
    assert any(f"[{n}]" in text for n in extra["citations"])


@pytest.mark.slow
def test_a_client_that_leaves_mid_stream_does_not_keep_the_model(api, uploaded):
    body = {"question": REACTOR, "stream": True, "k": 1, "max_tokens": 200}
    with api.stream("POST", "/api/ask", json=body) as response:
        for line in response.iter_lines():
            if line == "event: token":
                break  # and hang up while the model writes
    # the model is free again: a new answer does not wait for the abandoned one's 200 tokens
    answer = api.post("/api/ask", json={"question": "When was the Quillon-7 reactor commissioned?", "k": 1,
                                        "max_tokens": 8}, timeout=120).json()
    assert answer["usage"]["completion_tokens"] <= 8 and answer["sources"]


def test_openai_refusals_are_normal_answers_streamed_or_not(client, uploaded):
    completion = client.chat.completions.create(model="anything", messages=[{"role": "user", "content": OUT_OF_SCOPE}])
    assert completion.model == "rag" and "documents" in completion.choices[0].message.content
    assert completion.model_extra["refused"] is True and completion.model_extra["sources"] == []
    assert completion.usage.total_tokens == 0

    chunks = list(client.chat.completions.create(model="rag", stream=True,
                                                  messages=[{"role": "user", "content": OUT_OF_SCOPE}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == completion.choices[0].message.content
    assert chunks[-1].model_extra["refused"] is True


def test_models_lists_the_one_model(client):
    assert [m.id for m in client.models.list()] == ["rag"]


def test_requests_without_the_right_token_get_401_with_the_fix(server):
    for headers, message in [({}, "missing API token"), ({"Authorization": "Bearer nope"}, "wrong API token"),
                             ({"Authorization": f"Basic {TOKEN}"}, "missing API token")]:
        for method, path in [("GET", "/api/documents"), ("POST", "/api/ask"), ("GET", "/v1/models")]:
            response = httpx.request(method, server.url + path, headers=headers, json={"question": "x"})
            assert response.status_code == 401, (path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            error = response.json()["error"]
            assert message in error["message"] and TOKEN_ENV in error["hint"], error
            assert TOKEN not in response.text
    with pytest.raises(AuthenticationError, match="wrong API token"):  # the OpenAI error shape: its client reads it
        OpenAI(base_url=server.url + "/v1", api_key="sk-wrong", max_retries=0).models.list()
    assert httpx.get(server.url + "/docs").status_code == 200  # the documentation is open


def test_errors_are_json_with_a_hint_never_a_traceback(api, client):
    response = api.post("/api/ask", json={"question": ""})
    assert response.status_code == 422 and response.json()["error"]["message"].startswith("invalid request")
    response = api.post("/api/ask", json={"question": "x", "unknown": 1})
    assert response.status_code == 422 and "unknown" in response.json()["error"]["message"]
    with pytest.raises(BadRequestError, match="no question"):
        client.chat.completions.create(model="rag", messages=[{"role": "system", "content": "Be brief."}])


def test_the_api_refuses_to_serve_beyond_loopback_without_a_token(rag):
    with pytest.raises(ConfigError, match=TOKEN_ENV) as err:
        create_app(rag, host="0.0.0.0")
    assert "127.0.0.1" in err.value.hint and "secrets" in err.value.hint
    create_app(rag, host="0.0.0.0", token=TOKEN)
    for host in ("127.0.0.1", "localhost", "::1", "127.0.1.1"):
        assert is_loopback(host)
        create_app(rag, host=host)
    assert not any(is_loopback(h) for h in ("0.0.0.0", "", "192.168.1.10", "::", "example.com"))
    assert api_token({}) is None and api_token({TOKEN_ENV: "  "}) is None and api_token({TOKEN_ENV: "t"}) == "t"


def test_the_app_does_not_start_on_all_interfaces_without_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"RAG_STORE__PATH": str(tmp_path / "store"), "RAG_APP__UPLOAD_DIR": str(tmp_path / "uploads"),
                "RAG_APP__HOST": "0.0.0.0"})
    done = subprocess.run([sys.executable, "app.py", "--port", str(free_port())], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert TOKEN_ENV in done.stderr and "fix:" in done.stderr and "Traceback" not in done.stderr


def test_the_page_and_the_api_are_one_app(rag):
    from ui.app import asgi_app, launch_options

    options = launch_options(rag.settings, environ={"RAG_APP_USER": "reader", "RAG_APP_PASSWORD": "pw-8d2f"})
    with ServerThread(asgi_app(rag, options, environ={TOKEN_ENV: TOKEN})) as server:
        page = httpx.get(server.url + "/")
        assert page.status_code == 200 and "<html" in page.text
        assert httpx.get(server.url + "/config").status_code == 401  # the page's login still guards the page
        assert httpx.get(server.url + "/api/documents").status_code == 401
        listed = httpx.get(server.url + "/api/documents", headers={"Authorization": f"Bearer {TOKEN}"})
        assert listed.status_code == 200 and isinstance(listed.json(), list)
        assert httpx.get(server.url + "/docs").status_code == 200


def test_a_stream_ends_with_the_checked_answer():
    answer = Answer((Claim("It produces 418 megawatts.", (1,)),), [], refused=False)
    assert ending("It produces 418 megawatts [1].", answer) == ""
    assert ending("It produces  418 megawatts.[1]", answer) == ""
    assert ending("", answer) == "It produces 418 megawatts [1]."
    assert ending("It produces 418 megawatts [2].", answer) == f"\n\n{CHECKED}It produces 418 megawatts [1]."
    refusal = Answer.of_text("The documents do not say.", refused=True)
    assert ending("It makes 9000 megawatts.", refusal).endswith("The documents do not say.")


def _events(lines) -> list[tuple[str, dict]]:
    events, name = [], "message"
    for line in lines:
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[len("data: "):])))
            name = "message"
    return events
