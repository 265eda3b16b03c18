"""OCR of scanned and garbled PDF pages with the real Tesseract, and what happens when Tesseract is missing."""

from __future__ import annotations

import pytest
from pypdf import PdfReader

from rag import Rag
from rag.config import load_config
from rag.errors import DocumentError
from rag.ingest.loaders import load_file
from rag.ingest.loading import LoadOptions
from rag.ingest.ocr import text_layer_problem, text_quality
from rag.ingest.pdf import page_ranges
from tests.conftest import NURIBYEOL, ZORBLAX
from tests.pdfs import write_garbled_pdf, write_image_pdf, write_mixed_pdf, write_pdf

HINT = "apt-get install tesseract-ocr tesseract-ocr-kor"


def lines(text: str) -> str:
    """One sentence a line, so that every line fits the picture of a scanned page."""
    return text.replace(". ", ".\n").replace("다. ", "다.\n")


SCANNED = [lines(ZORBLAX[0]), lines(ZORBLAX[2]), lines(NURIBYEOL[1])]


@pytest.fixture(scope="module")
def scanned_pdf(tmp_path_factory):
    return write_image_pdf(tmp_path_factory.mktemp("scan") / "scanned-report.pdf", SCANNED)


@pytest.fixture
def no_tesseract(tmp_path, monkeypatch):
    """A PATH without the tesseract binary, as on a machine where it was never installed."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def flat(text: str) -> str:
    return " ".join(text.split())


# -- the "no usable text layer" heuristic ------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    ZORBLAX[2],
    NURIBYEOL[1],
    "목   차\n Ⅰ. 검 토 배 경 ········································ 1\nⅡ. 인가 방식 ··········· 3\n 1. 인가 방식 ······ 3",
    "Total revenue 5,854,430 4,795,511 4,147,065\nNet income $ 1,168,782 $ 629,551 $ 268,395\nGross profit 5,034,522",
])
def test_real_text_layers_are_usable(text):
    assert text_layer_problem(text) == ""


@pytest.mark.parametrize("text, problem", [
    ("", "no text layer"),
    ("  - 3 -  \n", "no text layer"),
    ("\x01\x02\x03\x04\x05 \x06\x04\x07\x04\x05\x08\t\n\x02\x07\n\x0b\x0c\x04 \r\x0e\n\x0f\x0f\x02\x07\x10\x11 \x05",
     "garbled text layer"),
    ("\ue000\ue001\ue002 \ue003\ue004\ue005\ue006 \ue007\ue008\ue009\ue00a \ue00b\ue00c\ue00d\ue00e\ue00f\ue010" * 2,
     "garbled text layer"),
    ("%& '(\n)*+ &,- ./ 012 34 5 678 9:;<= >? %&@A B.CD=", "garbled text layer"),
    ("\ufffd\ufffd\ufffd\ufffd \ufffd\ufffd 2023 \ufffd\ufffd\ufffd\ufffd\ufffd \ufffd\ufffd\ufffd \ufffd\ufffd\ufffd\ufffd",
     "garbled text layer"),
])
def test_missing_and_garbled_text_layers_are_detected(text, problem):
    assert text_layer_problem(text) == problem


def test_quality_measures_shares():
    q = text_quality("abc \ue000 12 ····· x")
    assert q.chars == 7  # the dot leader counts as nothing
    assert q.bad_share == pytest.approx(1 / 7)
    assert q.letter_share == pytest.approx(4 / 7)


def test_garbled_text_layer_is_detected_in_a_real_pdf_and_read_by_ocr(tmp_path):
    path = write_garbled_pdf(tmp_path / "garbled.pdf", [lines(ZORBLAX[2]), lines(NURIBYEOL[1])])
    raw = [p.extract_text() for p in PdfReader(path).pages]
    assert all(text_layer_problem(t) == "garbled text layer" for t in raw)
    assert "Quillon" not in raw[0] and "탑승객" not in raw[1]

    pages = load_file(path.read_bytes(), "garbled.pdf").pages
    assert [p.ocr for p in pages] == [True, True]
    assert "Quillon-7 reactor at Vessmark produces 418 megawatts" in flat(pages[0].text)
    assert "740만 명" in pages[1].text


def test_garbled_page_is_dropped_not_indexed_when_ocr_is_off(tmp_path):
    path = write_mixed_pdf(tmp_path / "m.pdf", [(ZORBLAX[1], False), (ZORBLAX[3], False)])
    bad = write_garbled_pdf(tmp_path / "bad.pdf", [ZORBLAX[2]])
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=str(path))
    writer.append(str(bad))
    writer.write(str(path))
    loaded = load_file(path.read_bytes(), "m.pdf", LoadOptions(ocr="never"))
    assert [bool(p.text) for p in loaded.pages] == [True, True, False]
    assert loaded.warnings == ["m.pdf: page 3 skipped: garbled text layer, and OCR is off (ingest.ocr: never) "
                               "(fix: set ingest.ocr: auto)"]


# -- scanned pages ---------------------------------------------------------------------------------------

def test_scanned_pages_are_read_by_ocr_english_and_korean(scanned_pdf):
    assert all(not (p.extract_text() or "").strip() for p in PdfReader(scanned_pdf).pages)  # no text layer
    loaded = load_file(scanned_pdf.read_bytes(), "scanned-report.pdf")
    assert loaded.warnings == []
    assert [p.page for p in loaded.pages] == [1, 2, 3]
    assert all(p.ocr for p in loaded.pages)
    assert "founded in 1998 in the town of Orlen Ridge" in flat(loaded.pages[0].text)
    assert "Quillon-7 reactor at Vessmark produces 418 megawatts" in flat(loaded.pages[1].text)
    assert "누리별 항공의 2023년 탑승객 수는 740만 명으로 집계되었다" in loaded.pages[2].text


def test_scanned_pdf_is_ingested_marked_as_ocr_and_found_on_the_right_page(make_rag, scanned_pdf):
    rag = make_rag()
    report = rag.ingestor.ingest([scanned_pdf])
    assert report.added == ["scanned-report.pdf"] and report.warnings == []
    info = rag.store.document("scanned-report.pdf")
    assert (info.pages, info.ocr_pages) == (3, 3)

    hit = rag.retriever.search("How many megawatts does the Quillon-7 reactor produce?", k=1)[0]
    assert (hit.source, hit.page, hit.ocr) == ("scanned-report.pdf", 2, True)
    hit = rag.retriever.search("누리별 항공의 2023년 탑승객 수는?", k=1)[0]
    assert (hit.page, hit.ocr) == (3, True)
    metas = rag.store._get_collection().get(include=["metadatas"])["metadatas"]
    assert metas and all(m["ocr"] is True for m in metas)


@pytest.mark.slow
def test_question_about_a_scan_is_answered_citing_the_right_page(make_rag, scanned_pdf):
    rag = make_rag()
    rag.ingestor.ingest([scanned_pdf])
    answer = rag.answerer.ask("In which town was Zorblax Dynamics founded?")
    assert not answer.refused
    assert "Orlen Ridge" in answer.text
    cited = answer.cited()
    assert cited and all((s.hit.source, s.hit.page) == ("scanned-report.pdf", 1) for s in cited)


def test_always_ocrs_pages_that_have_text(tmp_path):
    path = write_pdf(tmp_path / "text.pdf", [lines(ZORBLAX[2])])
    page = load_file(path.read_bytes(), "text.pdf", LoadOptions(ocr="always")).pages[0]
    assert page.ocr
    assert "Quillon-7 reactor at Vessmark" in flat(page.text)


def test_never_leaves_a_scan_unread_with_a_hint(scanned_pdf):
    with pytest.raises(DocumentError) as err:
        load_file(scanned_pdf.read_bytes(), "scanned-report.pdf", LoadOptions(ocr="never"))
    assert "OCR is off" in err.value.message and err.value.hint == "set ingest.ocr: auto"


# -- Tesseract missing -----------------------------------------------------------------------------------

def test_without_tesseract_scanned_pages_are_skipped_and_the_rest_ingested(make_rag, tmp_path, no_tesseract):
    path = write_mixed_pdf(tmp_path / "mixed.pdf", [(ZORBLAX[0], False), (lines(ZORBLAX[2]), True),
                                                    (ZORBLAX[1], False), (lines(ZORBLAX[3]), True)])
    rag = make_rag()
    report = rag.ingestor.ingest([path])
    assert report.added == ["mixed.pdf"] and report.failed == []
    assert report.warnings == [f"mixed.pdf: pages 2, 4 skipped: no usable text layer; Tesseract OCR is not installed "
                               f"(fix: {HINT})"]
    info = rag.store.document("mixed.pdf")
    assert (info.pages, info.ocr_pages) == (4, 0)
    assert {h.page for h in rag.retriever.search("apprentices trained in 2023", k=10)} == {1, 3}


def test_without_tesseract_a_fully_scanned_pdf_fails_with_the_install_hint(make_rag, scanned_pdf, no_tesseract, capsys):
    rag = make_rag()
    report = rag.ingestor.ingest([scanned_pdf])
    assert report.added == []
    [failure] = report.failed
    assert failure.file == "scanned-report.pdf"
    assert "Tesseract OCR is not installed" in failure.reason and HINT in failure.reason
    assert rag.store.document("scanned-report.pdf") is None


def test_missing_language_data_names_the_package(scanned_pdf):
    with pytest.raises(DocumentError) as err:
        load_file(scanned_pdf.read_bytes(), "s.pdf", LoadOptions(ocr_languages="eng+xyz"))
    assert "no language data for xyz" in err.value.message
    assert err.value.hint == "apt-get install tesseract-ocr-xyz"


def test_always_without_tesseract_falls_back_to_the_text_layer(tmp_path, no_tesseract):
    path = write_pdf(tmp_path / "t.pdf", [ZORBLAX[0], ZORBLAX[1]])
    loaded = load_file(path.read_bytes(), "t.pdf", LoadOptions(ocr="always"))
    assert [p.ocr for p in loaded.pages] == [False, False]
    assert "Orlen Ridge" in loaded.pages[0].text
    assert loaded.warnings == [f"t.pdf: pages 1-2 read from the text layer: Tesseract OCR is not installed (fix: {HINT})"]


def test_config_reaches_the_loader(tmp_path, embedder):
    settings = load_config(environ={"RAG_STORE__PATH": str(tmp_path / "s"), "RAG_INGEST__OCR": "never",
                                    "RAG_INGEST__OCR_LANGUAGES": "eng", "RAG_INGEST__PDF_TABLES": "false"})
    options = Rag(settings, embedder=embedder).ingestor.options
    assert (options.ocr, options.ocr_languages, options.pdf_tables) == ("never", "eng", False)


def test_page_ranges():
    assert page_ranges([5, 1, 2, 3, 9, 10]) == "1-3, 5, 9-10"
    assert page_ranges([4]) == "4"
