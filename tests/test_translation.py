"""Cross-lingual questions (retrieval.translate): a Korean question about an English document is also searched
in English, translated by the chat model. The chat model here is a loopback OpenAI-compatible server answering
from a script (tests/servers/tools_api.py), standing in for a remote model; the PDFs, store, embeddings and
retrieval are the real ones. The bundled models' translations are measured in docs/EVAL.md."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rag import Rag
from rag.config import load_config
from rag.types import Done
from tests.pdfs import write_pdf
from tests.servers.running import ServerThread
from tests.servers.tools_api import tools_app

STATEMENTS = [
    "Harborline Freight Inc. Annual report 2024. Harborline moves containers between twelve ports and runs a "
    "fleet of 340 trucks. The company opened two inland depots during the year.",
    "Consolidated Statements of Operations (in millions)\nFreight revenue 8,410\nFuel surcharges 640\n"
    "Operating expenses 7,020\nOperating income 2,030\nInterest expense 115",
    "Consolidated Balance Sheets (in millions)\nCash and cash equivalents 1,220\nTotal current assets 6,300\n"
    "Accounts payable 2,480\nAccrued payroll 510\nTotal current liabilities 4,120\nLong-term debt 3,900",
    "Consolidated Statements of Cash Flows (in millions)\nNet cash provided by operating activities 2,870\n"
    "Capital expenditures (1,140)\nDividends paid (300)",
]
QUESTION = "하버라인의 2024년 유동부채 합계는 얼마인가요?"
TRANSLATION = "What were Harborline's total current liabilities in 2024?"
TRANSLATE_REPLY = f"{TRANSLATION}\n"  # as a model writes it, with a line break


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(tools_app()) as running:
        yield running


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> object:
    docs = tmp_path_factory.mktemp("translation")
    write_pdf(docs / "harborline-2024.pdf", STATEMENTS)
    write_pdf(docs / "항만 물류 동향.pdf", ["2024년 국내 항만 물동량은 전년보다 3.1% 늘었고, 컨테이너 처리량은 "
                                           "1,620만 TEU를 기록했다."])
    return docs


@pytest.fixture
def make(server, folder, embedder, tmp_path):
    server.app.state.requests.clear()
    server.app.state.script.clear()

    def build(docs=folder, **retrieval: str) -> Rag:
        environ = {"RAG_STORE__PATH": str(tmp_path / "store"), "RAG_LLM__PROVIDER": "openai",
                   "RAG_LLM__BASE_URL": f"{server.url}/v1", "RAG_LLM__MODEL": "tool-model",
                   "RAG_LLM__MAX_RETRIES": "0", "RAG_LLM__GROUNDING": "lenient",
                   **{f"RAG_RETRIEVAL__{key.upper()}": value for key, value in retrieval.items()}}
        rag = Rag(load_config(environ=environ), embedder=embedder)
        assert rag.ingest([docs]).ok
        return rag

    return build


def reply(text: str):
    return lambda body: {"content": text}


def test_a_korean_question_about_an_english_filing_is_also_searched_in_english(make, server):
    rag = make(translate="false")
    alone = rag.search(QUESTION, k=3)
    assert alone[0].source == "harborline-2024.pdf"  # the vectors find the document across languages ...
    assert alone[0].page != 3  # ... but not the balance sheet
    assert server.app.state.requests == []  # no translation asked for

    rag = make(translate="true")
    server.app.state.script.append(reply(TRANSLATE_REPLY))
    hits = rag.search(QUESTION, k=3)
    assert hits[0].page == 3 and hits[0].source == "harborline-2024.pdf"
    body = server.app.state.requests[-1]
    assert "into English" in body["messages"][0]["content"] and body["temperature"] == 0.0
    assert body["messages"][-1]["content"] == QUESTION
    assert any(m["content"].startswith("2023년 삼성전자") for m in body["messages"])  # the worked examples


def test_the_answer_counts_the_translation_and_reads_the_balance_sheet(make, server):
    rag = make()
    script = server.app.state.script
    script.append(reply(TRANSLATE_REPLY))
    script.append(reply("하버라인의 2024년 유동부채 합계는 4,120백만 달러입니다 [1]."))
    events = list(rag.stream(QUESTION))
    assert isinstance(events[-1], Done)
    done = events[-1].answer
    assert not done.refused
    assert done.sources[0].hit.page == 3
    assert "4,120" in done.text
    prompt = server.app.state.requests[-1]["messages"][-1]["content"]
    assert "Total current liabilities 4,120" in prompt.split("[2]")[0]  # the balance sheet is passage [1]
    assert len(server.app.state.requests) == 2


def test_no_translation_when_the_question_and_the_passages_share_a_language(make, server):
    rag = make()
    assert rag.search("2024년 컨테이너 처리량은 얼마인가요?", k=2)[0].source == "항만 물류 동향.pdf"
    assert rag.search("What were Harborline's total current liabilities?", k=2)[0].page == 3
    assert server.app.state.requests == []


@pytest.mark.parametrize("bad", ["", "하버라인의 유동부채는 4,120입니다.", "Total current liabilities were 4,120 [1].",
                                 "What were the liabilities?" * 40, None])
def test_an_unusable_translation_leaves_the_search_as_it_was(make, server, bad):
    before = [(h.source, h.page) for h in make(translate="false").search(QUESTION, k=3, mode="vector")]
    rag = make()
    # the model said nothing, answered (in Korean, or in English with no question), wrote pages, or the
    # server failed (no step scripted: HTTP 500): the question's own search stands
    if bad is not None:
        server.app.state.script.append(reply(bad))
    assert [(h.source, h.page) for h in rag.search(QUESTION, k=3, mode="vector")] == before
    assert len(server.app.state.requests) == 1


REPORT = ["Aurora Tidal Power - Annual Report 2024. Aurora Tidal Power Ltd. is a renewable energy company "
          "headquartered in Port Calder, Scotland.",
          "Financial results. Revenue for 2024 was 184.6 million pounds, an increase of 12 percent from 164.8 "
          "million pounds in 2023. Operating profit rose to 41.3 million pounds."]
보고서 = ["한빛스마트팜 2024 연례 보고서. 한빛스마트팜은 2016년 나주에 설립된 스마트팜 기업이다.",
        "재무 성과. 2024년 매출액은 312억 원, 영업이익은 27억 원을 기록했다. 2025년에는 일본 수출을 시작한다."]


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> object:
    """An English and a Korean report about different companies, as in the app's sample folder."""
    docs = tmp_path_factory.mktemp("both")
    write_pdf(docs / "aurora-2024.pdf", REPORT)
    write_pdf(docs / "hanbit-2024-ko.pdf", 보고서)
    return docs


def test_in_a_library_of_both_languages_a_korean_question_about_an_english_report_is_translated(make, server, both):
    question = "오로라 타이달 파워의 2024년 매출은 얼마인가요?"
    alone = make(both, translate="false").search(question, k=4)
    assert alone[0].source == "hanbit-2024-ko.pdf"  # its Korean words match "2024년 매출" ...
    assert any(h.source == "aurora-2024.pdf" for h in alone)  # ... and the report's pages come after
    server.app.state.script.append(reply("What was Aurora Tidal Power's revenue in 2024?"))
    hits = make(both).search(question, k=4)
    assert hits[0].source == "aurora-2024.pdf"  # the report the question is about now leads
    assert {(h.source, h.page) for h in hits} == {(h.source, h.page) for h in alone}
    assert len(server.app.state.requests) == 1  # translated although the best passage was Korean ...
    assert "into English" in server.app.state.requests[0]["messages"][0]["content"]  # ... into the report's language


def test_a_question_about_nothing_in_a_library_of_both_languages_asks_no_translation(make, server, both):
    answer = make(both).ask("조선 왕조를 세운 사람은 누구인가요?")
    assert answer.refused and answer.usage.prompt_tokens == 0
    assert server.app.state.requests == []
