from dataclasses import replace

from rag.ingest import pipeline as ingest
from rag.ingest.splitting import Splitter, chunk_id, page_heading, search_text
from rag.text import document_title, normalise
from rag.types import Page


def test_chunks_never_cross_pages_and_ids_are_stable():
    pages = [Page("r.pdf", 1, "alpha " * 300), Page("r.pdf", 2, "beta " * 50)]
    chunks = Splitter(400, 50).split(pages, "f" * 64)
    assert {c.page for c in chunks} == {1, 2}
    assert all(("alpha" in c.text) != ("beta" in c.text) for c in chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[0].id == chunk_id("f" * 64, 0)
    assert all(len(c.text) <= 400 for c in chunks)


def test_page_headings_are_detected():
    assert page_heading("59\nADOBE SYSTEMS INCORPORATED\nCONSOLIDATED BALANCE SHEETS\n(In thousands)\nAssets") == \
        "ADOBE SYSTEMS INCORPORATED / CONSOLIDATED BALANCE SHEETS"
    assert page_heading("Financial results\nRevenue for 2024 was 184.6 million pounds.") == "Financial results"
    assert page_heading("Ⅱ. 주요 내용\n가. 인가 요건\n시중은행은 최저자본금이 필요하다.") == "Ⅱ. 주요 내용 / 가. 인가 요건"
    assert page_heading("2024년 딸기 생산량은 1,850톤으로\n증가했다.") == ""
    assert page_heading("and the sentence from the previous page goes on here.\nNext") == ""


def test_chunks_from_the_middle_of_a_page_carry_its_heading():
    text = "CONSOLIDATED BALANCE SHEETS\n" + "\n".join(f"Line item {i} 1,234 5,678" for i in range(80))
    chunks = Splitter(300, 0).split([Page("ACME_2015_10K.pdf", 7, text)], "a" * 64)
    assert chunks[0].heading == ""  # it starts with the heading already
    assert all(c.heading == "CONSOLIDATED BALANCE SHEETS" for c in chunks[1:])
    assert search_text(chunks[1]).startswith("ACME 2015 10K | CONSOLIDATED BALANCE SHEETS\n")
    assert document_title("[별첨] 지방은행 전환.pdf") == "[별첨] 지방은행 전환"


def test_dot_leaders_are_removed():
    assert normalise("Cash and equivalents.............. $ 876,560") == "Cash and equivalents $ 876,560"
    assert normalise("Revenue was 1.5 million. Costs fell.") == "Revenue was 1.5 million. Costs fell."


def test_documents_from_an_older_pipeline_version_are_ingested_again(make_rag, corpus):
    rag = make_rag()
    rag.ingestor.ingest([corpus / "zorblax-review.pdf"])
    info = rag.store.document("zorblax-review.pdf")
    rag.store._documents[info.source] = replace(info, version=ingest.VERSION - 1)
    report = rag.ingestor.ingest([corpus / "zorblax-review.pdf"])
    assert report.updated == ["zorblax-review.pdf"]
    assert rag.store.document("zorblax-review.pdf").version == ingest.VERSION
