"""Table rows stay with their header (``ingest.pdf_tables``): in the text, and in every chunk cut from it."""

from __future__ import annotations

from rag.ingest.loaders import load_file
from rag.ingest.loading import LoadOptions
from rag.ingest.splitting import Splitter
from rag.ingest.tables import table_text
from tests.pdfs import write_table_pdf

LAYOUT = """\
                    ZORBLAX DYNAMICS
          CONSOLIDATED STATEMENTS OF INCOME
                                              Years Ended
                                  December 2,      November 27,
                                     2016              2015
Revenue:
 Subscription                 $   4,584,833     $   3,223,904
 Product                            800,498         1,125,146
     Total revenue                5,854,430         4,795,511

Operating income                  1,493,602           903,095

(a) Restated for the change in accounting policy described in note 2, which affected 2015 only.
"""


def test_layout_table_becomes_header_led_rows():
    text = table_text(LAYOUT)
    assert "| December 2, 2016 | November 27, 2015" in text
    assert "Subscription | $4,584,833 | $3,223,904" in text
    assert "Total revenue | 5,854,430 | 4,795,511" in text
    assert "Operating income | 1,493,602 | 903,095" in text
    assert "CONSOLIDATED STATEMENTS OF INCOME" in text.split("| December 2, 2016")[0].splitlines()[-1]
    assert text.rstrip().endswith("which affected 2015 only.")  # a footnote is not a row


def test_prose_is_left_alone():
    prose = "The company trained 312 apprentices in 2023.\nSafety training takes eleven days.\n"
    assert table_text(prose) == prose.rstrip("\n")


def test_every_chunk_of_a_long_pdf_table_carries_its_header(tmp_path):
    rows = [[f"Plant {i:02d} output", f"{100 + i * 7:,}", f"{1200 + i * 13:,}", f"{(i * 37) % 900:,}"] for i in range(1, 36)]
    path = write_table_pdf(tmp_path / "table.pdf", "Zorblax Dynamics: output by plant (MWh)", ["Plant", "2021", "2022", "2023"],
                           rows, intro="Output of each plant, by year.")
    plain = load_file(path.read_bytes(), "table.pdf", LoadOptions(pdf_tables=False)).pages
    tables = load_file(path.read_bytes(), "table.pdf").pages  # the default
    assert "Plant 17 output | 219 | 1,421 | 629" in tables[0].text

    def chunks_with_rows(pages):
        return [c.text for c in Splitter(800, 120).split(pages, "d" * 64) if "output" in c.text and "Plant" in c.text]

    with_tables = chunks_with_rows(tables)
    assert len(with_tables) >= 2
    assert all("Plant | 2021 | 2022 | 2023" in text for text in with_tables)
    assert all("output by plant (MWh)" in text for text in with_tables)
    # Without table mode, the later chunks lose the header: the reason for the option.
    assert not all("2021" in text and "2023" in text and "Plant 35" not in text.split("2021")[0]
                   for text in chunks_with_rows(plain)[1:])


def test_pages_layout_mode_cannot_read_fall_back_to_plain_text(tmp_path, monkeypatch):
    from pypdf import PageObject

    from tests.conftest import ZORBLAX
    from tests.pdfs import write_pdf

    original = PageObject.extract_text

    def no_layout(self, *args, **kwargs):  # what pypdf's layout mode does on some real Korean reports
        return "" if kwargs.get("extraction_mode") == "layout" else original(self, *args, **kwargs)

    monkeypatch.setattr(PageObject, "extract_text", no_layout)
    path = write_pdf(tmp_path / "t.pdf", [ZORBLAX[2]])
    [page] = load_file(path.read_bytes(), "t.pdf", LoadOptions(ocr="never")).pages
    assert "Quillon-7 reactor" in page.text and not page.ocr
