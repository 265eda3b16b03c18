"""The search tool (llm.tools): a loopback OpenAI-compatible server answers with tool calls from a script
(tests/servers/tools_api.py); the store, retrieval, numbering and grounding are the real ones."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from rag import Rag
from rag.config import LLMSettings, load_config
from rag.providers import build_chat_model
from rag.types import Done, Retrieved, Search
from tests.servers.running import ServerThread
from tests.servers.tools_api import tools_app

ZORBLAX, NURIBYEOL = "zorblax-review.pdf", "누리별 항공 보고서.pdf"
_PASSAGE = re.compile(r"\[(\d+)\] \(([^\n]*)\)\n(.*?)(?=\n\n\[\d+\] \(|\n\nQuestion:|\Z)", re.S)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(tools_app()) as running:
        yield running


@pytest.fixture(scope="module")
def rag(server, corpus, embedder, tmp_path_factory) -> Rag:
    folder = tmp_path_factory.mktemp("tools")
    settings = load_config(environ={"RAG_STORE__PATH": str(folder / "store"), "RAG_LLM__PROVIDER": "openai",
                                    "RAG_LLM__BASE_URL": f"{server.url}/v1", "RAG_LLM__MODEL": "tool-model",
                                    "RAG_LLM__TOOLS": "true", "RAG_LLM__MAX_RETRIES": "0"})
    rag = Rag(settings, embedder=embedder)
    assert rag.ingest([corpus]).ok
    return rag


@pytest.fixture(scope="module")
def openai_llm(rag) -> LLMSettings:
    return rag.settings.llm


@pytest.fixture
def script(server, rag, openai_llm) -> list:
    server.app.state.requests.clear()
    server.app.state.script.clear()
    rag.use_llm(openai_llm.model_copy(update={"tools": True, "max_tool_calls": 4}))
    return server.app.state.script


def passages(body: dict[str, Any]) -> dict[int, str]:
    """The numbered passages the model was shown so far (tool results, or the standard prompt)."""
    found = {}
    for message in body["messages"]:
        if message["role"] in ("tool", "user") and isinstance(message.get("content"), str):
            for n, _where, text in _PASSAGE.findall(message["content"]):
                found[int(n)] = text
    return found


def citing(*needles: str, prefix: str = "It says so"):
    """A step that answers with one sentence per needle, citing the passage that holds it."""
    def step(body: dict[str, Any]) -> dict[str, Any]:
        shown = passages(body)
        parts = []
        for needle in needles:
            n = next(n for n, text in shown.items() if needle in text)
            parts.append(f"{prefix}: {needle} [{n}].")
        return {"content": " ".join(parts)}
    return step


def calls(*pairs: tuple[str, dict[str, Any]]):
    return lambda body: {"tool_calls": list(pairs)}


def test_the_model_searches_a_document_and_cites_what_the_tool_returned(rag, script, server):
    script += [calls(("search_documents", {"query": "Quillon-7 reactor output", "documents": [ZORBLAX]})),
               citing("418 megawatts")]
    events = list(rag.stream("How much power does the Quillon-7 reactor produce?"))
    answer = next(e.answer for e in events if isinstance(e, Done))

    first, second = server.app.state.requests
    assert {t["function"]["name"] for t in first["tools"]} == {"search_documents", "list_documents"}
    tool_message = next(m for m in second["messages"] if m["role"] == "tool")
    call = next(m for m in second["messages"] if m.get("tool_calls"))["tool_calls"][0]
    assert tool_message["tool_call_id"] == call["id"] and "418 megawatts" in tool_message["content"]

    [search] = answer.searches
    assert search.query == "Quillon-7 reactor output" and search.documents == (ZORBLAX,)
    assert search.sources == tuple(range(1, len(search.sources) + 1))
    assert all(s.hit.source == ZORBLAX for s in answer.sources)  # the tool ran with the requested document
    assert not answer.refused and answer.cited()[0].hit.page == 3 and "418" in answer.cited()[0].hit.text
    assert any(isinstance(e, Retrieved) and e.sources for e in events)
    assert answer.to_json()["searches"] == [search.to_json()]


def test_searches_across_documents_are_numbered_once_and_all_can_be_cited(rag, script):
    script += [calls(("list_documents", {}),
                     ("search_documents", {"query": "reactor megawatts", "documents": [ZORBLAX]}),
                     ("search_documents", {"query": "탑승객 수", "documents": [NURIBYEOL]})),
               calls(("search_documents", {"query": "reactor megawatts", "documents": [ZORBLAX]})),
               citing("418 megawatts", "740만 명")]
    answer = rag.ask("Compare the Quillon-7 reactor's output with 누리별 항공's passengers.")

    listed, zorblax, nuribyeol, again = answer.searches
    assert listed.tool == "list_documents"
    assert again.sources == zorblax.sources  # the same passages keep their numbers
    assert set(zorblax.sources).isdisjoint(nuribyeol.sources)
    assert [s.n for s in answer.sources] == list(range(1, len(answer.sources) + 1))
    assert {s.hit.source for s in answer.cited()} == {ZORBLAX, NURIBYEOL}
    assert not answer.refused


def test_the_loop_stops_at_its_limit_and_answers_from_all_it_found(rag, script, server):
    rag.use_llm(rag.settings.llm.model_copy(update={"max_tool_calls": 2}))
    endless = calls(("search_documents", {"query": "Quillon-7 reactor megawatts"}),
                    ("search_documents", {"query": "Lake Thessaly cooling"}),
                    ("search_documents", {"query": "apprentices trained"}))
    script += [endless, citing("418 megawatts")]
    answer = rag.ask("Tell me about the Quillon-7 reactor.")

    requests = server.app.state.requests
    assert len(requests) == 2  # one model turn asked for three searches; two ran, then the final answer
    [turn, final] = requests
    assert "tools" in turn and "tools" not in final and final["stream"]
    tool_results = [m["content"] for m in final["messages"] if m["role"] == "tool"]
    assert tool_results == [] and "Passages:" in final["messages"][-1]["content"]  # the standard prompt
    assert [s.query for s in answer.searches] == ["Quillon-7 reactor megawatts", "Lake Thessaly cooling"]
    assert not answer.refused and "418" in answer.cited()[0].hit.text


def test_the_limit_counts_calls_over_several_turns(rag, script, server):
    rag.use_llm(rag.settings.llm.model_copy(update={"max_tool_calls": 2}))
    script += [calls(("search_documents", {"query": "Quillon-7 reactor"})),
               calls(("search_documents", {"query": "Calloway Bay plant"})),
               citing("2029")]
    answer = rag.ask("When is the plant near Calloway Bay planned?")
    requests = server.app.state.requests
    assert len(requests) == 3 and "tools" not in requests[2]
    assert len(answer.searches) == 2 and "2029" in answer.text and not answer.refused


def test_an_answer_the_passages_do_not_support_is_refused_like_today(rag, script):
    script += [calls(("search_documents", {"query": "Quillon-7 reactor"})), lambda body: {"content": "I don't know."}]
    answer = rag.ask("What does the Quillon-7 reactor cost?")
    assert answer.refused and len(answer.searches) == 1 and answer.sources


def test_unknown_documents_are_told_to_the_model(rag, script, server):
    script += [calls(("search_documents", {"query": "reactor", "documents": ["nope.pdf"]})),
               calls(("search_documents", {"query": "Quillon-7 reactor megawatts", "documents": [ZORBLAX.upper()]})),
               citing("418 megawatts")]
    answer = rag.ask("How much power does the Quillon-7 reactor produce?")
    told = next(m["content"] for m in server.app.state.requests[1]["messages"] if m["role"] == "tool")
    assert "No document is named nope.pdf" in told and ZORBLAX in told
    assert answer.searches[0].sources == () and answer.searches[1].documents == (ZORBLAX,)
    assert not answer.refused


def test_a_server_that_refuses_tools_gets_the_single_search_flow(rag, script, server):
    script += [lambda body: {"error": (400, "registry.ollama.ai/library/gemma does not support tools")},
               citing("418 megawatts")]
    answer = rag.ask("How much power does the Quillon-7 reactor produce?")
    first, second = server.app.state.requests
    assert "tools" in first and "tools" not in second and "Passages:" in second["messages"][-1]["content"]
    assert answer.searches == () and not answer.refused


def test_a_model_that_answers_without_searching_gets_the_single_search_flow(rag, script, server):
    script += [lambda body: {"content": "It is 418 megawatts."}, citing("418 megawatts")]
    answer = rag.ask("How much power does the Quillon-7 reactor produce?")
    assert len(server.app.state.requests) == 2 and answer.searches == () and not answer.refused


def test_tools_off_by_default_and_only_for_providers_that_have_them(rag, script, server, chat):
    assert LLMSettings().tools is False
    rag.use_llm(rag.settings.llm.model_copy(update={"tools": False}))
    script += [citing("418 megawatts")]
    answer = rag.ask("How much power does the Quillon-7 reactor produce?")
    assert "tools" not in server.app.state.requests[0] and answer.searches == ()
    assert build_chat_model(rag.settings.llm).supports_tools
    assert not chat.supports_tools  # the bundled llama.cpp model: the single-search flow


def test_the_sources_panel_lists_the_searches():
    from ui import render

    html = render.sources_panel([], "q", "2", "en", searches=[Search("<b>reactor</b>", (ZORBLAX,), (1, 2)),
                                                              Search("", (), (), tool="list_documents")])
    assert "&lt;b&gt;reactor&lt;/b&gt;" in html and 'href="#src-2-1"' in html and ZORBLAX in html
    assert "Searches the model made (2)" in html


def test_the_cli_prints_the_searches_and_the_json_holds_them(rag, script, monkeypatch, capsys):
    from rag.cli import main

    for key, value in {"RAG_STORE__PATH": str(rag.settings.store.path), "RAG_LLM__PROVIDER": "openai",
                       "RAG_LLM__BASE_URL": rag.settings.llm.base_url, "RAG_LLM__MODEL": "tool-model",
                       "RAG_LLM__TOOLS": "true"}.items():
        monkeypatch.setenv(key, value)
    script += [calls(("search_documents", {"query": "Quillon-7 reactor output", "documents": [ZORBLAX]})),
               citing("418 megawatts")]
    assert main(["ask", "How much power does the Quillon-7 reactor produce?"]) == 0
    out = capsys.readouterr().out
    assert "Searches:\n  search_documents('Quillon-7 reactor output') in zorblax-review.pdf: [1]" in out
    assert "[1] zorblax-review.pdf, page 3" in out


def test_ollama_models_call_the_tools_the_same_way(rag, script, server):
    rag.use_llm(LLMSettings(provider="ollama", model="qwen3", base_url=server.url, tools=True, max_retries=0))
    script += [calls(("search_documents", {"query": "Quillon-7 reactor output", "documents": [ZORBLAX]})),
               citing("418 megawatts")]
    answer = rag.ask("How much power does the Quillon-7 reactor produce?")
    first, second = server.app.state.requests
    assert {t["function"]["name"] for t in first["tools"]} == {"search_documents", "list_documents"}
    assert any(m["role"] == "tool" and "418 megawatts" in m["content"] for m in second["messages"])
    assert [s.query for s in answer.searches] == ["Quillon-7 reactor output"]
    assert not answer.refused and "418" in answer.cited()[0].hit.text
