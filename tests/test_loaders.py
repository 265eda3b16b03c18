import os

import pytest
from pypdf import PdfWriter

from rag.errors import DocumentError
from rag.ingest.loaders import load_file
from rag.text import is_korean, normalise
from tests.conftest import NURIBYEOL, ZORBLAX
from tests.pdfs import write_pdf


def pages_of(data, source):
    return load_file(data, source).pages


def test_pdf_pages_are_one_based_with_text(corpus):
    pages = pages_of((corpus / "zorblax-review.pdf").read_bytes(), "zorblax-review.pdf")
    assert [p.page for p in pages] == [1, 2, 3, 4]
    assert "Quillon-7 reactor at Vessmark produces 418 megawatts" in " ".join(pages[2].text.split())
    assert all(p.source == "zorblax-review.pdf" for p in pages)


def test_korean_text_survives_intact(corpus):
    pages = pages_of((corpus / "누리별 항공 보고서.pdf").read_bytes(), "누리별 항공 보고서.pdf")
    assert len(pages) == len(NURIBYEOL)
    assert "탑승객 수는 740만 명으로" in pages[1].text
    assert is_korean(pages[1].text)


def test_whitespace_is_normalised(corpus):
    # fpdf2 justifies text, and pypdf then doubles the spaces between words.
    for page in pages_of((corpus / "zorblax-review.pdf").read_bytes(), "z.pdf"):
        assert "  " not in page.text
        assert "\t" not in page.text


def test_normalise_unicode_and_hyphenation():
    assert normalise("ﬁnancial  re-\nport\x00 here\u3000now") == "financial report here now"
    assert normalise("\u1112\u1161\u11ab") == "한"  # decomposed jamo are composed
    assert normalise("a\n\n\n\nb") == "a\n\nb"


@pytest.fixture
def good_pdf(tmp_path):
    return write_pdf(tmp_path / "good.pdf", ZORBLAX[:2])


@pytest.mark.parametrize("kind, data_of, reason", [
    ("empty", lambda good: b"", "empty file"),
    ("random bytes", lambda good: os.urandom(4096), "not a PDF"),
    ("truncated", lambda good: good.read_bytes()[: len(good.read_bytes()) // 2], "damaged PDF"),
    ("html named .pdf", lambda good: b"<!DOCTYPE html><html><body>404 Not Found</body></html>", "HTML"),
])
def test_bad_files_raise_a_one_line_reason(good_pdf, kind, data_of, reason):
    with pytest.raises(DocumentError) as err:
        pages_of(data_of(good_pdf), f"{kind}.pdf")
    assert reason in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("algorithm", ["AES-256", "RC4-128"])
def test_password_protected_pdf_is_reported(good_pdf, tmp_path, algorithm):
    writer = PdfWriter(clone_from=good_pdf)
    writer.encrypt("secret", algorithm=algorithm)
    locked = tmp_path / "locked.pdf"
    writer.write(locked)
    with pytest.raises(DocumentError, match="password-protected"):
        pages_of(locked.read_bytes(), "locked.pdf")


def test_owner_password_only_pdf_is_readable(good_pdf, tmp_path):
    writer = PdfWriter(clone_from=good_pdf)
    writer.encrypt("", owner_password="owner", algorithm="AES-128")
    path = tmp_path / "restricted.pdf"
    writer.write(path)
    assert "Zorblax" in pages_of(path.read_bytes(), "restricted.pdf")[0].text


def test_pdf_without_text_is_reported(tmp_path):
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    path = tmp_path / "blank.pdf"
    writer.write(path)
    with pytest.raises(DocumentError, match="no text"):
        pages_of(path.read_bytes(), "blank.pdf")


def test_unsupported_type(tmp_path):
    with pytest.raises(DocumentError, match="unsupported file type"):
        pages_of(b"abc", "notes.xyz")
