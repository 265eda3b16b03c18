"""The answer-accuracy eval: how gold answers' key values are read and matched, and `rag eval --answers` end to end
with the bundled chat model."""

import json

import pytest

from rag.cli import main
from rag.eval.answers import figures, judge
from tests.test_eval import write_qa


@pytest.mark.parametrize("text, value", [
    ("16만 2천 톤", 162_000), ("162,000 tons", 162_000), ("16.2만 톤", 162_000), ("1억 2천만 원", 120_000_000),
    ("4.2조 USD", 4.2e12), ("5,200억원", 5.2e11), ("$1,577", 1577), ("-$1561M", -1.561e9), ("(1.2)", -1.2),
    ("$2.5bn", 2.5e9), ("4.2%", 4.2), ("162 thousand", 162_000),
])
def test_figures_are_read_whatever_their_writing(text, value):
    assert figures(text)[0].value == pytest.approx(value)


def test_words_with_digits_are_not_figures():
    assert [f.value for f in figures("FY2018 - FY2020 10-K")] == []


@pytest.mark.parametrize("question, gold, answer, found", [
    ("What is the FY2019 ratio?", "0.66", "The ratio was 0.657 [1].", True),  # rounded to the gold's decimals
    ("What is the FY2019 ratio?", "0.66", "The ratio was 0.7 [1].", False),
    ("Net working capital?", "$5818.00", "It was $5,818 million [2].", True),  # a unit apart
    ("쌀 생산량은?", "16만 2천 톤", "생산량은 162,000톤입니다 [1].", True),
    ("2020년 시장 규모는?", "2020년 시장 규모는 4.2조 USD를 넘어섰다", "2020년에 4.2조 달러 [1].", True),
    ("2020년 시장 규모는?", "2020년 시장 규모는 4.2조 USD를 넘어섰다", "2020년에 큰 규모였다 [1].", False),  # the year is asked
    ("Did the risk decrease?", "Yes. It decreased.", "Yes, it decreased [1].", True),
    ("Did the risk decrease?", "Yes. It decreased.", "No, it did not decrease.", False),
    # a yes/no question's key value is the yes or no, not the figure that supports it
    ("Has Microsoft increased its debt?", "No. Microsoft decreased its debt by $2.5bn.", "No. [1]", True),
    ("Has Microsoft increased its debt?", "No. Microsoft decreased its debt by $2.5bn.", "Yes, by $2.5bn. [1]", False),
    ("Which activity brought in the most cash?", "Cash flow from operations was the highest for Nike.",
     "Operations brought in the most cash flow [1].", True),
    ("Which activity brought in the most cash?", "Cash flow from operations was the highest for Nike.",
     "Investing activities [1].", False),
])
def test_an_answer_holds_the_key_value_or_not(question, gold, answer, found):
    assert judge(question, gold, answer).key_found is found


@pytest.mark.slow
def eval_answers(rows, corpus, tmp_path, capsys):
    """Run `rag eval --answers --json --details` on ``rows``: (report, summary, details by question id)."""
    qa = write_qa(tmp_path / "qa.jsonl", rows)
    argv = ["eval", str(qa), "--docs", str(corpus), "--cache", str(tmp_path / "cache"), "--answers", "--json",
            "--details"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    return report, report["answers"], {row["id"]: row for row in report["questions"]}


def test_eval_answers_asks_every_question_and_scores_the_answers(corpus, tmp_path, capsys):
    rows = [
        {"id": "en-1", "question": "How many megawatts does the Quillon-7 reactor at Vessmark produce?",
         "answer": "418 megawatts", "doc": "zorblax-review.pdf", "pages": [3]},
        {"id": "ko-1", "question": "누리별 항공의 2023년 탑승객 수는?", "answer": "740만 명", "doc": "누리별 항공 보고서.pdf",
         "pages": [2]},
        {"id": "un-1", "question": "What was Tesla's revenue in 2022?", "answerable": False},
    ]
    report, summary, details = eval_answers(rows, corpus, tmp_path, capsys)
    assert (summary["answerable"], summary["unanswerable"]) == (2, 1)
    assert summary["refused_unanswerable"] == 1.0 and details["un-1"]["refused"]
    assert details["en-1"]["key_found"] is ("418" in details["en-1"]["answer"])  # the judgement follows the text
    assert summary["key_value_found"] == sum(bool(row["key_found"]) for row in details.values()) / 2
    assert summary["cited_gold_page"] >= 0.5  # the bundled model, strict grounding: the right page is cited
    assert summary["seconds_per_answer"] > 0 and report["model"].startswith("llamacpp ")


def test_a_provider_error_is_counted_per_question_and_the_run_goes_on(corpus, tmp_path, capsys, monkeypatch):
    """Nothing listens on the chat server's port: each answerable question records the error; the refusal of the
    unanswerable one needs no model call and is still counted."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: connections are refused
    for name, value in {"RAG_LLM__PROVIDER": "openai", "RAG_LLM__BASE_URL": f"http://127.0.0.1:{port}/v1",
                        "RAG_LLM__MODEL": "nothing", "RAG_LLM__MAX_RETRIES": "0", "OPENAI_API_KEY": "sk-test"}.items():
        monkeypatch.setenv(name, value)
    rows = [{"id": "en-1", "question": "How many megawatts does the Quillon-7 reactor at Vessmark produce?",
             "answer": "418 megawatts", "doc": "zorblax-review.pdf", "pages": [3]},
            {"id": "un-1", "question": "What was Tesla's revenue in 2022?", "answerable": False}]
    _, summary, details = eval_answers(rows, corpus, tmp_path, capsys)
    assert summary["errors"] == 1 and summary["key_value_found"] == 0.0
    assert details["en-1"]["error"] and "127.0.0.1" in details["en-1"]["error"]
    assert details["un-1"]["refused"] and details["un-1"]["error"] is None
