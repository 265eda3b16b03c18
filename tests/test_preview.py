"""Page previews: the cited passage is located on the real PDF page and marked on the rendered image."""

from pathlib import Path

import pytest
from PIL import Image

from rag.answer.previews import Previews, locate
from rag.errors import DocumentError
from rag.ingest.loaders import load_file
from rag.ingest.pipeline import file_hash
from rag.ingest.splitting import Splitter
from tests.conftest import NURIBYEOL, ZORBLAX
from tests.pdfs import write_image_pdf, write_pdf


def marked_rows(image: Path) -> list[int]:
    """Rows of the image that contain marked (yellow-tinted) pixels."""
    with Image.open(image) as img:
        rgb = img.convert("RGB")
        width, height = rgb.size
        pixels = rgb.load()
        return [y for y in range(0, height, 2)
                if any(_yellow(pixels[x, y]) for x in range(0, width, 4))]


def _yellow(pixel: tuple[int, int, int]) -> bool:
    r, g, b = pixel
    return r > 200 and g > 180 and b < 150


def chunks_of(pdf: Path):
    data = pdf.read_bytes()
    return Splitter(800, 120).split(load_file(data, pdf.name).pages, file_hash(data))


def test_locate_ignores_layout_whitespace_and_hyphenation():
    page = "Power generation\r\nThe Quillon-7 reac-\r\ntor produces 418 megawatts.\r\nOther text."
    [(start, end)] = locate(page, "The Quillon-7 reactor produces 418 megawatts.")
    assert page[start:end].startswith("The Quillon") and page[start:end].endswith("megawatts")
    assert locate(page, "Nothing like this appears anywhere on the page at all") == []
    assert locate("", "x") == [] and locate(page, "") == []


def test_locate_finds_the_pieces_of_a_trimmed_or_altered_passage():
    page = ("The company trained 312 apprentices in 2023. Safety training takes eleven days and is repeated every "
            "two years. The canteen serves lunch from noon.")
    passage = "The company trained 312 apprentices in 2023. Safety training takes eleven days and is rep…"
    spans = locate(page, passage)
    assert spans and page[spans[0][0]:].startswith("The company")
    assert spans[-1][1] > page.index("eleven")


@pytest.mark.parametrize("pages, page_no", [(ZORBLAX, 3), (NURIBYEOL, 2)])
def test_preview_marks_the_cited_passage_on_its_page(tmp_path, pages, page_no):
    pdf = write_pdf(tmp_path / "doc.pdf", pages)
    chunk = next(c for c in chunks_of(pdf) if c.page == page_no)
    renderer = Previews(tmp_path / "previews", width=600)
    preview = renderer.render(pdf, page_no, chunk.text, doc_id=chunk.doc_id)
    assert preview.located and preview.page == page_no
    with Image.open(preview.image) as img:
        assert img.width == 600 and img.height > 800  # A4 portrait
    rows = marked_rows(preview.image)
    assert rows and max(rows) < 300  # the text sits at the top of the page, and so do the marks
    unmarked = renderer.render(pdf, page_no, "", doc_id=chunk.doc_id)
    assert not unmarked.located and marked_rows(unmarked.image) == []
    again = renderer.render(pdf, page_no, chunk.text, doc_id=chunk.doc_id)
    assert again == preview  # cached
    assert renderer.forget(chunk.doc_id) == 2 and not preview.image.exists()


def test_a_scanned_page_is_previewed_without_marks(tmp_path):
    pdf = write_image_pdf(tmp_path / "scan.pdf", ["Scanned page with no text layer"])
    preview = Previews(tmp_path / "previews", width=400).render(pdf, 1, "Scanned page with no text layer")
    assert preview.image.is_file() and not preview.located


def test_missing_pages_and_broken_files_raise_document_errors(tmp_path):
    pdf = write_pdf(tmp_path / "doc.pdf", ["one page"])
    renderer = Previews(tmp_path / "previews")
    with pytest.raises(DocumentError, match="no page 5"):
        renderer.render(pdf, 5)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"not a pdf at all")
    with pytest.raises(DocumentError, match="cannot open"):
        renderer.render(broken, 1)
