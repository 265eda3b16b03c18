"""Keyword tokenisation, the persistent BM25 index, fusion and the relevance signal, on real generated PDFs."""

import hashlib

import numpy as np
import pytest

from rag import Rag
from rag.providers import build_embedder
from rag.search.bm25 import BM25Index
from rag.search.retrieval import convex, mmr, rrf, spread_over_pages
from rag.text import tokenize
from rag.types import Chunk, Hit
from tests.conftest import ZORBLAX
from tests.pdfs import write_pdf


def test_english_tokens_are_stemmed_without_stop_words():
    assert tokenize("The reactors were commissioned in 2017") == ["reactor", "commiss", "2017"]
    assert tokenize("Revenue of 1,850 tons") == ["revenu", "1850", "ton"]


def test_korean_particles_are_removed_from_nouns():
    tokens = tokenize("2024년 딸기 생산량은 1,850톤으로 증가했다")
    assert "생산량" in tokens and "생산량은" not in tokens
    assert "딸기" in tokens and "1850" in tokens
    # The same noun with another particle gives the same term, which whitespace splitting would not.
    assert "생산량" in tokenize("생산량이 늘었다")


def test_unknown_korean_names_also_match_by_parts():
    assert {"스마", "마트", "트팜"} <= set(tokenize("한빛스마트팜의 매출"))


def chunk(cid: str, text: str, source: str = "a.pdf") -> Chunk:
    return Chunk(id=cid, text=text, source=source, page=1, doc_id="d" * 64, index=0)


def test_bm25_index_persists_and_updates_incrementally(tmp_path):
    index = BM25Index(tmp_path / "idx")
    index.add([chunk("1", "The Quillon reactor produces power"), chunk("2", "Apprentices trained in 2023"),
               chunk("3", "누리별 항공의 탑승객 수", source="b.pdf")])
    index.commit("stamp-1")
    assert [cid for cid, _ in index.search("reactor power", 5)] == ["1"]

    reopened = BM25Index(tmp_path / "idx")
    assert reopened.stamp == "stamp-1" and len(reopened) == 3
    assert [cid for cid, _ in reopened.search("탑승객은", 5)] == ["3"]
    reopened.delete(["1"])
    reopened.add([chunk("4", "A new reactor design")])
    reopened.commit("stamp-2")

    again = BM25Index(tmp_path / "idx")
    assert [cid for cid, _ in again.search("reactor", 5)] == ["4"]
    assert again.search("reactor", 5, sources=["b.pdf"]) == []
    assert again.search("zzz unknown words", 5) == []


def test_bm25_scores_match_bm25s(corpus):
    """Our BM25 matrix (whole-array numpy) scores every chunk as bm25s does, on the real corpus's tokens, with
    repeated terms, a document filter, and terms of one chunk only."""
    import bm25s

    from rag.ingest.loaders import load_file
    from rag.ingest.splitting import Splitter, keyword_terms

    chunks = []
    for path in sorted(corpus.glob("*.pdf")):
        pages = load_file(path.read_bytes(), path.name).pages
        chunks += Splitter(120, 20).split(pages, hashlib.sha256(path.name.encode()).hexdigest())
    index = BM25Index(None)
    index.add(chunks, [keyword_terms(c) for c in chunks])
    assert len(index) >= 12
    vocab = index._vocab
    reference = bm25s.BM25()
    reference.index(([t.tolist() for t in index._tokens], {i: i for i in range(len(vocab))}), show_progress=False,
                    create_empty_token=False)
    for question in ["How often must the Zorblax filter be replaced?", "누리별 항공의 탑승객 수는?", "revenue 2023 2023"]:
        ids = sorted({vocab[t] for t in tokenize(question) if t in vocab})
        assert ids
        ours = index._built().scores(ids)
        assert np.allclose(ours, reference.get_scores(ids), rtol=1e-5, atol=1e-6)
        found = index.search(question, 5)
        best = np.sort(ours)[::-1][:len(found)]
        assert np.allclose([score for _, score in found], best)  # the top chunks, best first (ties in any order)
        assert all(ours[index._ids.index(cid)] == pytest.approx(score) for cid, score in found)
    source_of = {c.id: c.source for c in chunks}
    for source in {c.source for c in chunks}:
        filtered = index.search("Zorblax 누리별 reactor 탑승객 2023", 50, sources=[source])
        assert filtered and {source_of[cid] for cid, _ in filtered} == {source}


def test_top_scores_are_exact_at_scale():
    """The sampled threshold that narrows 1M scores to a few candidates never changes the top n."""
    from rag.search.bm25 import _top

    rng = np.random.default_rng(0)
    for scores in [rng.exponential(1.0, 1_000_000).astype(np.float32) * (rng.random(1_000_000) < 0.3),
                   np.repeat(np.float32([3.0, 1.0, 0.0]), [7, 500_000, 499_993]),  # ties at the threshold
                   np.zeros(200_000, dtype=np.float32)]:
        for n in (1, 5, 40, 1000):
            expected = np.sort(scores[scores > 0])[::-1][:n]
            found = _top(scores, n)
            assert np.array_equal(scores[found], expected)
    assert list(_top(np.float32([0.0, 2.0, 1.0]), 5)) == [1, 2]


def test_coverage_weights_rare_terms(tmp_path):
    index = BM25Index(tmp_path / "idx")
    index.add([chunk(str(i), f"Company {name} revenue was high in 2023") for i, name in enumerate(["Acme", "Globex", "Initech"])])
    index.commit("s")
    full, partial = index.coverage("What was Acme's revenue in 2023?", ["0", "1"])
    assert full == pytest.approx(1.0)
    assert partial < 0.6  # the name is the rarest term, so missing it costs the most


def hit(cid: str, score: float) -> Hit:
    return Hit(chunk_id=cid, text=cid, source="a.pdf", page=1, doc_id="d", score=score)


def test_rrf_and_convex_fusion():
    assert rrf([(["a", "b", "c"], 0.5), (["c", "b"], 0.5)])[0] in {"b", "c"}
    assert rrf([(["a", "b"], 1.0), (["b", "a"], 0.0)]) == ["a", "b"]
    hits = [hit("a", 0.9), hit("b", 0.2), hit("c", 0.5)]
    assert [h.chunk_id for h in convex(hits, {"b": 10.0, "c": 5.0}, alpha=0.0)] == ["b", "c", "a"]
    assert [h.chunk_id for h in convex(hits, {"b": 10.0, "c": 5.0}, alpha=1.0)] == ["a", "c", "b"]


def test_mmr_prefers_diverse_passages():
    query = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    vectors = {"a": np.array([0.9, 0.1, 0.0]), "a2": np.array([0.9, 0.11, 0.0]), "b": np.array([0.7, 0.0, 0.7])}
    hits = [hit("a", 0.99), hit("a2", 0.98), hit("b", 0.7)]
    assert [h.chunk_id for h in mmr(hits, vectors, query, k=2, lam=0.5)] == ["a", "b"]


@pytest.mark.parametrize("mode", ["vector", "bm25", "hybrid"])
def test_modes_find_the_page_in_english(make_rag, corpus, mode):
    rag = make_rag()
    rag.ingestor.ingest([corpus])
    hits = rag.retriever.search("How many megawatts does the Quillon-7 reactor produce?", k=3, mode=mode)
    assert (hits[0].source, hits[0].page) == ("zorblax-review.pdf", 3)
    assert all(-1.0 <= h.score <= 1.0 for h in hits)


def test_hybrid_finds_the_korean_page(make_rag, corpus):
    rag = make_rag()
    rag.ingestor.ingest([corpus])
    hits = rag.retriever.search("누리별 항공의 2023년 탑승객 수는 얼마인가요?", k=3)
    assert (hits[0].source, hits[0].page) == ("누리별 항공 보고서.pdf", 2)


def test_keyword_index_follows_ingest_update_and_delete(make_rag, settings, embedder, tmp_path):
    rag = make_rag()
    assert rag.store.empty() and rag.retriever.search("Quillon Vessmark", k=1) == []
    path = write_pdf(tmp_path / "report.pdf", ZORBLAX)
    rag.ingestor.ingest([path])
    assert not rag.store.empty()
    assert rag.retriever.search("Quillon Vessmark", k=1, mode="bm25")[0].page == 3
    write_pdf(path, ["The Sorvane bridge opened in 2021.", "Nothing else here."])
    rag.ingestor.ingest([path])
    assert rag.retriever.search("Quillon Vessmark", k=3, mode="bm25") == []
    reopened = Rag(settings, embedder=embedder)  # the index on disk holds the update, no rebuild needed
    assert reopened.store.keyword.stamp == reopened.store.stamp()
    assert reopened.retriever.search("Sorvane bridge", k=1, mode="bm25")[0].page == 1
    reopened.store.delete("report.pdf")
    assert len(reopened.store.keyword) == 0
    assert reopened.store.empty() and reopened.retriever.search("Sorvane bridge", k=1) == []


def test_keyword_index_is_rebuilt_when_it_does_not_match_the_store(make_rag, settings, embedder, corpus):
    rag = make_rag()
    rag.ingestor.ingest([corpus])
    folder = rag.store.keyword.folder
    for f in folder.iterdir():
        f.unlink()  # as if the process died before the index was saved
    reopened = Rag(settings, embedder=embedder)
    assert len(reopened.store.keyword) == reopened.store.count()
    assert reopened.retriever.search("Quillon-7 reactor", k=1, mode="bm25")[0].page == 3


def test_relevance_separates_answerable_from_unanswerable(make_rag, corpus):
    rag = make_rag()
    rag.ingestor.ingest([corpus])
    threshold = rag.settings.retrieval.min_score
    for question in ["How many megawatts does the Quillon-7 reactor produce?", "누리별 항공의 탑승객 수는?"]:
        assert rag.retriever.relevance(question, rag.retriever.search(question)) >= threshold, question
    for question in ["What is the boiling point of mercury?", "프랑스 혁명은 몇 년에 일어났나요?"]:
        assert rag.retriever.relevance(question, rag.retriever.search(question)) < threshold, question


def test_with_an_english_only_embedder_korean_questions_rest_on_keywords(settings, corpus):
    """MiniLM reads no Korean: its vectors neither rank Korean questions nor count towards their relevance."""
    minilm = build_embedder(settings.embeddings.model_copy(update={"model": "all-MiniLM-L6-v2"}))
    assert not minilm.reads_korean
    rag = Rag(settings.model_copy(update={"embeddings": settings.embeddings.model_copy(
        update={"model": "all-MiniLM-L6-v2"})}), embedder=minilm)
    rag.ingest([corpus])
    threshold = rag.settings.retrieval.min_score
    hybrid, bm25 = (rag.retriever.search("누리별 항공의 탑승객 수는?", mode=m) for m in ("hybrid", "bm25"))
    assert [h.chunk_id for h in hybrid][:len(bm25)] == [h.chunk_id for h in bm25]  # vectors only fill up
    assert rag.retriever.relevance("누리별 항공의 탑승객 수는?", hybrid) >= threshold
    question = "프랑스 혁명은 몇 년에 일어났나요?"
    assert rag.retriever.relevance(question, rag.retriever.search(question)) < threshold


def test_names_absent_from_every_document_are_found(make_rag, corpus):
    from rag.text import names

    assert names("What was Tesla's margin? Round your answer. DPO is defined as...") == ["Tesla"]
    rag = make_rag()
    rag.ingestor.ingest([corpus])
    def unmentioned(question):
        return rag.retriever.unmentioned_names(question, rag.retriever.search(question))

    assert unmentioned("How much power would the Quillon reactor give Tesla?") == ([], False)  # Quillon is there
    assert unmentioned("How much power does the reactor give Tesla?") == (["Tesla"], True)
    # A romanised name cannot be checked against Hangul: when the best passage is Korean (the multilingual
    # embeddings find 누리별 항공's report for "Nuribyeol"), the names are not held against it.
    assert rag.retriever.search("How many passengers did Nuribyeol fly in 2023?")[0].source == "누리별 항공 보고서.pdf"
    assert unmentioned("How many passengers did Nuribyeol fly in 2023?") == ([], False)
    assert unmentioned("When did Zorblax open its canteen?") == ([], False)
    # mentioned in the documents, but not in any passage found for the question
    assert unmentioned("How many megawatts does the Vessmark plant of Calloway produce?")[0] in ([], ["Calloway"])


def test_a_name_written_with_spaces_finds_the_file_that_writes_it_as_one_word(make_rag, tmp_path):
    from rag.text import compounds

    joined = compounds("Does American Water Works pay? What of Best Buy's stores?")
    assert joined[0] == ("AmericanWaterWorks", "American Water Works")  # longest first
    assert {("AmericanWater", "American Water"), ("WaterWorks", "Water Works"), ("BestBuy", "Best Buy")} <= set(joined)
    assert not any("What" in word or ("Buy" in word and "Best" not in word) for word, _ in joined)  # "What" is a stop word
    folder = tmp_path / "filings"
    # The filing names its company only in its file name; another document says "best" and "buy" in its text.
    write_pdf(folder / "BRIGHTLINE_2019_10K.pdf", ["Consolidated Balance Sheets\nMerchandise inventories 5,409 5,209\n"
                                                  "Total current assets 8,870 9,829"])
    write_pdf(folder / "guide.pdf", ["The best time to buy a bright line of lamps is in spring; inventories of lamps "
                                     "are counted each year."])
    rag = make_rag()
    rag.ingestor.ingest([folder])
    question = "What were the merchandise inventories of Bright Line in 2019?"
    assert "BrightLine" in rag.retriever.keyword_query(question)
    assert rag.retriever.keyword_query("What were the inventories of Dull Line?").endswith("Dull Line?")
    hits = rag.search(question, mode="bm25")
    assert hits[0].source == "BRIGHTLINE_2019_10K.pdf"
    # and the name, written in the file name only, counts as mentioned (no refusal for an unknown name)
    assert rag.retriever.unmentioned_names(question, hits) == ([], False)


def test_documents_named_by_their_title():
    from rag.search.retrieval import named_documents

    sources = ["ADOBE_2015_10K.pdf", "ADOBE_2016_10K.pdf", "ADOBE_2017_10K.pdf", "WALMART_2018_10K.pdf",
               "WALMART_2020_10K.pdf", "BESTBUY_2019_10K.pdf", "이커머스 시장 분석.pdf", "notes.pdf"]
    assert named_documents("What is Adobe's FY2015 operating cash flow ratio?", sources) == ["ADOBE_2015_10K.pdf"]
    # a range names both ends; the year alone or the company alone is not enough of the title
    assert set(named_documents("Adobe's operating income from FY2015 to FY2016?", sources)) == {
        "ADOBE_2015_10K.pdf", "ADOBE_2016_10K.pdf"}
    assert named_documents("What was the revenue in FY2015?", sources) == []
    assert named_documents("How did Adobe's revenue grow?", sources) == []
    # a name written with spaces counts in the form keyword search gives it (Retriever.keyword_query)
    assert named_documents("Best Buy's FY2019 inventories BestBuy", sources) == ["BESTBUY_2019_10K.pdf"]
    # a descriptive title that shares topic words with the question is not named: Hangul has no capitals
    assert named_documents("이커머스 시장 분석 결과는?", sources) == []
    assert named_documents("What is Adobe's FY2015 revenue?", ["ADOBE_2015_10K.pdf"]) == []  # nothing to choose


def test_a_question_that_names_a_filing_gets_its_pages(make_rag, settings, tmp_path):
    """The later filing repeats the earlier year's figures and words the question better; the question names
    the earlier filing (company and year), whose balance sheet must come first."""
    folder = tmp_path / "filings"
    write_pdf(folder / "ORION_2019_10K.pdf", ["Consolidated Balance Sheets\nFiscal 2019 Fiscal 2018\n"
                                             "Merchandise inventories 5,409 5,209\nTotal current assets 8,870 9,829"])
    write_pdf(folder / "ORION_2020_10K.pdf", ["Management's discussion. Orion's total merchandise inventories at the end "
                                             "of fiscal 2019 and fiscal 2020: inventories rose in fiscal 2020 as Orion "
                                             "stocked more merchandise; total inventories at the end of fiscal 2019 "
                                             "were lower."])
    write_pdf(folder / "VESTA_2019_10K.pdf", ["Vesta Holdings. Fiscal 2019 results: revenue 1,200, inventories 300."])
    question = "What were Orion's total merchandise inventories at the end of FY2019?"
    off = make_rag(settings.model_copy(update={"retrieval": settings.retrieval.model_copy(update={"title_focus": 0.0})}))
    off.ingestor.ingest([folder])
    assert off.search(question)[0].source == "ORION_2020_10K.pdf"  # without the focus, the wordier filing wins
    on = make_rag()
    assert on.retriever.settings.title_focus > 0
    hits = on.search(question)
    assert hits[0].source == "ORION_2019_10K.pdf"
    assert {h.source for h in hits} >= {"ORION_2019_10K.pdf", "ORION_2020_10K.pdf"}  # a focus, not a filter
    assert on.search(question, sources=["VESTA_2019_10K.pdf"])[0].source == "VESTA_2019_10K.pdf"  # the user's choice


def test_passages_spread_over_pages():
    def on(cid: str, page: int) -> Hit:
        return Hit(chunk_id=cid, text=cid, source="a.pdf", page=page, doc_id="d", score=0.5)

    hits = [on("a1", 1), on("a2", 1), on("b1", 2), on("a3", 1), on("c1", 3)]
    assert [h.chunk_id for h in spread_over_pages(hits, 1)] == ["a1", "b1", "c1", "a2", "a3"]
    assert [h.chunk_id for h in spread_over_pages(hits, 2)] == ["a1", "a2", "b1", "c1", "a3"]


def test_a_table_cut_into_chunks_leaves_room_for_the_other_page(make_rag, settings, tmp_path):
    """The cash-flow statement fills several chunks of page 1; the ratio also needs page 2's current
    liabilities, which only gets into the top three when one page gives one passage."""
    rows = "\n".join(f"Net cash provided by operating activities, segment {name}: {1000 + i * 37:,}"
                     for i, name in enumerate(["North", "South", "East", "West", "Central", "Pacific", "Atlantic",
                                               "Mountain", "Gulf", "Lakes", "Plains", "Coastal"] * 6))
    write_pdf(tmp_path / "docs" / "statements.pdf",
              [f"Consolidated Statements of Cash Flows\n{rows}",
               "Consolidated Balance Sheets\nTotal current liabilities 4,120\nTotal current assets 6,300"])
    question = "What is the operating cash flow ratio: net cash provided by operating activities / total current liabilities?"
    off = make_rag(settings.model_copy(update={"retrieval": settings.retrieval.model_copy(update={"per_page": 0})}))
    off.ingestor.ingest([tmp_path / "docs"])
    assert [h.page for h in off.search(question, k=3)] == [1, 1, 1]  # the statement's chunks take every place
    on = make_rag()
    assert on.retriever.settings.per_page == 1
    hits = on.search(question, k=3)
    assert sorted(h.page for h in hits) == [1, 1, 2]  # one of page 1, page 2, then page 1 again to fill k
    assert {h.page for h in hits[:2]} == {1, 2}
