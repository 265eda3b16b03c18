"""Asking end to end with the real llama.cpp model, and the grounding rules that keep answers cited."""

from dataclasses import replace

import pytest

from rag.answer.grounding import Grounder
from rag.types import Done, Hit, Retrieved, Source, Token, plain_text


@pytest.fixture
def rag(make_rag, corpus):
    rag = make_rag()
    rag.ingestor.ingest([corpus])
    return rag


def test_answer_cites_the_page_with_the_made_up_fact(rag):
    answer = rag.answerer.ask("How many megawatts does the Quillon-7 reactor at Vessmark produce?")
    assert not answer.refused
    assert "418" in answer.text
    cited = answer.cited()
    assert cited, answer.text
    assert (cited[0].hit.source, cited[0].hit.page) == ("zorblax-review.pdf", 3)
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0


def test_korean_answer_cites_the_korean_page(rag):
    answer = rag.answerer.ask("누리별 항공의 2023년 탑승객 수는 몇 명인가요?")
    assert not answer.refused
    assert "740만" in answer.text
    assert next((s.hit.source, s.hit.page) for s in answer.cited()) == ("누리별 항공 보고서.pdf", 2)


def test_stream_yields_sources_then_tokens_then_the_answer(rag):
    events = list(rag.answerer.stream("When was the Quillon-7 reactor commissioned?"))
    assert isinstance(events[0], Retrieved) and events[0].sources
    assert any(isinstance(e, Token) for e in events)
    assert isinstance(events[-1], Done)
    assert events[-1].answer.sources == events[0].sources


@pytest.mark.parametrize("question, language_word", [
    ("Who won the football world cup in 1998?", "documents"),
    ("조선 왕조를 세운 사람은 누구인가요?", "문서"),
])
def test_out_of_scope_questions_are_refused_without_a_model_call(rag, question, language_word):
    answer = rag.answerer.ask(question)
    assert answer.refused
    assert language_word in answer.text
    assert answer.sources == []
    assert answer.usage.prompt_tokens == 0 and answer.usage.completion_tokens == 0


def test_follow_up_is_condensed_with_the_history(rag):
    history = [{"role": "user", "content": "Tell me about the Quillon-7 reactor."},
               {"role": "assistant", "content": "It is at Vessmark and produces 418 megawatts [1]."}]
    answer = rag.answerer.ask("When was it commissioned?", history=history)
    assert "Quillon" in answer.question or "reactor" in answer.question.lower()
    assert any(s.hit.page == 3 for s in answer.sources)


def test_document_filter_limits_the_sources(rag):
    answer = rag.answerer.ask("How many megawatts does the Quillon-7 reactor produce?", sources=["누리별 항공 보고서.pdf"])
    assert all(s.hit.source == "누리별 항공 보고서.pdf" for s in answer.sources)


def source(n: int, text: str, page: int = 1) -> Source:
    return Source(n, Hit(chunk_id=str(n), text=text, source="r.pdf", page=page, doc_id="d", score=0.8))


PASSAGES = [source(1, "The canteen serves lunch from noon. Staff get eleven days of training."),
            source(2, "The Quillon-7 reactor at Vessmark produces 418 megawatts. It was commissioned in 2017.", page=3)]


MONEY = source(1, "Financial results\n\nRevenue for 2024 was 184.6 million pounds, an increase of 12 percent from "
                  "164.8 million pounds in 2023. Operating profit rose to 41.3 million pounds.", page=3)


def cited(claims) -> list[int]:
    return [n for claim in claims for n in claim.citations]


def test_wrong_and_missing_citations_are_repaired():
    grounder = Grounder("How much power does Quillon-7 produce?", PASSAGES)
    claims = grounder.check("The Quillon-7 reactor at Vessmark produces 418 megawatts [1].", strict=False)
    assert cited(claims) == [2]
    claims = grounder.check("The Quillon-7 reactor at Vessmark produces 418 megawatts.", strict=False)
    assert cited(claims) == [2]
    claims = grounder.check("The reactor produces 418 megawatts [7].", strict=False)
    assert 7 not in cited(claims)


def test_strict_mode_drops_invented_figures_and_falls_back_to_quotes():
    grounder = Grounder("How much power does Quillon-7 produce?", PASSAGES)
    assert grounder.check("The Quillon-7 reactor at Vessmark produces 950 megawatts [2].", strict=True) == ()
    kept = plain_text(grounder.check("The Quillon-7 reactor at Vessmark produces 418 megawatts [2]. "
                          "The passage says the Quillon-7 reactor at Vessmark produces power [2].", strict=True))
    assert kept == "The Quillon-7 reactor at Vessmark produces 418 megawatts [2]."
    quote = plain_text(grounder.quote("en"))
    assert "418 megawatts" in quote and "[2]" in quote


def test_strict_mode_keeps_a_bare_figure_that_answers_how_much():
    """Asked in Korean about an English report, the model answers with the figure alone: that is the answer,
    shown in the passage's sentence that holds it (which says what the figure counts)."""
    said = ("\u201cRevenue for 2024 was 184.6 million pounds, an increase of 12 percent from 164.8 million pounds "
            "in 2023.\u201d [1]")
    grounder = Grounder("오로라 타이달 파워의 2024년 매출은 얼마인가요?", [MONEY])
    assert plain_text(grounder.check("184.6 million pounds [1]", strict=True)) == said
    assert grounder.check("190.2 million pounds [1]", strict=True) == ()  # not in the passage
    assert grounder.check("2024 [1]", strict=True) == ()  # the question's own figure answers nothing
    english = Grounder("What was Aurora Tidal Power's revenue in 2024?", [MONEY])  # asks for a quantity
    assert plain_text(english.check("184.6 million pounds [1]", strict=True)) == said
    assert plain_text(english.check("41.3 million pounds [1]", strict=True)).startswith("\u201cOperating profit")
    assert Grounder("Who runs Aurora?", [MONEY]).check("184.6 million pounds [1]", strict=True) == ()
    assert Grounder("What drove revenue growth?", [MONEY]).check("184.6 million pounds [1]", strict=True) == ()


def test_repeated_sentences_are_dropped():
    grounder = Grounder("When was Quillon-7 commissioned?", PASSAGES)
    text = plain_text(grounder.check("It was commissioned in 2017 [2]. It was commissioned in 2017 [2].", strict=False))
    assert text.count("commissioned") == 1


def test_stopping_a_stream_early_frees_the_model(chat):
    from langchain_core.messages import HumanMessage

    stream = chat.stream([HumanMessage("Count from one to fifty in words.")], params={"max_tokens": 64})
    next(stream)
    stream.close()  # as the UI's stop button does
    text, usage = chat.invoke([HumanMessage("Say hello.")], params={"max_tokens": 8})  # would wait forever if locked
    assert text and usage.completion_tokens > 0


@pytest.mark.parametrize("question, expected", [
    ("When was it commissioned?", True), ("What about 2022?", True), ("그럼 2022년은?", True), ("직원 수는?", True),
    ("What is the boiling point of mercury?", False), ("누리별 항공의 2023년 탑승객 수는 몇 명인가요?", False),
])
def test_follow_ups_that_lean_on_the_conversation_are_recognised(question, expected):
    from rag.answer.followups import needs_context

    assert needs_context(question) is expected


def test_a_self_contained_question_after_a_conversation_is_refused_when_out_of_scope(rag):
    history = [{"role": "user", "content": "Tell me about the Quillon-7 reactor."},
               {"role": "assistant", "content": "It is at Vessmark and produces 418 megawatts [1]."}]
    answer = rag.answerer.ask("Who won the football world cup in 1998?", history=history)
    assert answer.refused and answer.question == "Who won the football world cup in 1998?"


def test_a_question_about_a_name_no_document_mentions_is_refused_and_says_so(rag):
    answer = rag.answerer.ask("What was Tesla's reactor output in 2023?")
    assert answer.refused and "Tesla" in answer.text
    assert answer.usage.prompt_tokens == 0


def test_quotes_prefer_the_sentence_with_the_rare_question_terms():
    """In a report about Aurora every sentence says "Aurora" or "2024"; "revenue" picks the one that answers."""
    people = source(1, "Outlook and people\n\nAurora employed 1,240 people at the end of 2024. The lost-time injury "
                       "rate was 0.18 per 200,000 hours worked.", page=4)
    money = replace(MONEY, n=2)
    other = source(3, "Aurora Tidal Power Ltd. is a renewable energy company founded in 2011. Aurora reports on "
                      "2024 here.", page=1)
    quote = plain_text(Grounder("What was Aurora's revenue in 2024?", [people, money, other]).quote("en"))
    assert quote.startswith("The documents say: \u201cRevenue for 2024 was 184.6 million pounds")
    assert "employed" not in quote
