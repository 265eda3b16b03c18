""".txt, .md and .docx: sections with a 1-based number in ``page`` and a ``location`` the UI can show."""

from __future__ import annotations

import pytest

from rag.errors import DocumentError
from rag.ingest.loaders import load_file
from rag.ingest.loading import LoadOptions


def make_docx(path, blocks):
    """blocks: ("h1"/"h2"/"title", text) | ("p", text) | ("table", rows)."""
    import docx

    document = docx.Document()
    for kind, value in blocks:
        if kind == "table":
            table = document.add_table(rows=len(value), cols=len(value[0]))
            for r, row in enumerate(value):
                for c, text in enumerate(row):
                    table.cell(r, c).text = text
        elif kind == "title":
            document.add_heading(value, level=0)
        elif kind.startswith("h"):
            document.add_heading(value, level=int(kind[1]))
        else:
            document.add_paragraph(value)
    document.save(str(path))
    return path


# -- .txt ------------------------------------------------------------------------------------------------

def test_txt_sections_are_line_ranges():
    data = "\n".join(f"line {i}: the Vessmark plant log" for i in range(1, 131)).encode()
    pages = load_file(data, "log.txt").pages
    assert [(p.page, p.location) for p in pages] == [(1, "lines 1-60"), (2, "lines 61-120"), (3, "lines 121-130")]
    assert pages[1].text.startswith("line 61:") and pages[2].text.endswith("line 130: the Vessmark plant log")


def test_txt_in_cp949_korean_is_decoded():
    pages = load_file("누리별 항공의 2023년 탑승객 수는 740만 명이다.".encode("cp949"), "메모.txt").pages
    assert pages[0].text == "누리별 항공의 2023년 탑승객 수는 740만 명이다."


def test_empty_txt_fails_with_a_reason():
    with pytest.raises(DocumentError, match="no text"):
        load_file(b"\n\n  \n", "blank.txt")


# -- .md -------------------------------------------------------------------------------------------------

MARKDOWN = """Zorblax handbook, internal.

# Staff and training

The company trained 312 apprentices in 2023.

```bash
# not a heading: a comment in a code block
make train
```

## Safety

Safety training takes eleven days.

# 향후 계획

2026년까지 친환경 항공기 12대를 새로 도입할 예정이다.
"""


def test_markdown_sections_start_at_headings_outside_code():
    pages = load_file(MARKDOWN.encode(), "handbook.md").pages
    assert [(p.page, p.location) for p in pages] == [
        (1, "lines 1-2"),
        (2, "Staff and training (lines 3-11)"),
        (3, "Safety (lines 12-15)"),
        (4, "향후 계획 (lines 16-18)"),
    ]
    assert "# not a heading" in pages[1].text and "312 apprentices" in pages[1].text
    assert pages[3].text.startswith("# 향후 계획")


def test_markdown_without_headings_uses_line_blocks():
    data = "\n".join(f"note {i}" for i in range(1, 71)).encode()
    pages = load_file(data, "notes.md", LoadOptions(text_lines=50)).pages
    assert [p.location for p in pages] == ["lines 1-50", "lines 51-70"]


# -- .docx -----------------------------------------------------------------------------------------------

def test_docx_sections_by_heading_with_tables(tmp_path):
    path = make_docx(tmp_path / "review.docx", [
        ("title", "Zorblax Dynamics review"),
        ("p", "This review describes the company's plants."),
        ("h1", "Power generation"),
        ("p", "The Quillon-7 reactor at Vessmark produces 418 megawatts."),
        ("table", [["Plant", "2022", "2023"], ["Vessmark", "401", "418"]]),
        ("h2", "운항 실적"),
        ("p", "누리별 항공의 2023년 탑승객 수는 740만 명으로 집계되었다."),
    ])
    pages = load_file(path.read_bytes(), "review.docx").pages
    assert [(p.page, p.location) for p in pages] == [
        (1, "section 1: Zorblax Dynamics review"), (2, "section 2: Power generation"), (3, "section 3: 운항 실적")]
    assert "418 megawatts" in pages[1].text
    assert "Plant | 2022 | 2023\nVessmark | 401 | 418" in pages[1].text
    assert "740만 명" in pages[2].text


def test_docx_without_headings_groups_paragraphs(tmp_path):
    path = make_docx(tmp_path / "plain.docx", [("p", f"Paragraph {i} about the Calloway Bay plant.") for i in range(1, 8)])
    pages = load_file(path.read_bytes(), "plain.docx", LoadOptions(docx_paragraphs=3)).pages
    assert [(p.page, p.location) for p in pages] == [(1, "paragraphs 1-3"), (2, "paragraphs 4-6"), (3, "paragraph 7")]
    assert pages[2].text == "Paragraph 7 about the Calloway Bay plant."


@pytest.mark.parametrize("data, reason", [
    (b"PK\x03\x04 this is not really a zip", "damaged .docx"),
    (b"{\\rtf1 an RTF file renamed}", "not a .docx file"),
])
def test_bad_docx_is_reported(data, reason):
    with pytest.raises(DocumentError, match=reason):
        load_file(data, "bad.docx")


# -- through the whole pipeline --------------------------------------------------------------------------

def test_folder_of_mixed_types_is_ingested_with_locations(make_rag, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "handbook.md").write_text(MARKDOWN, encoding="utf-8")
    (folder / "log.txt").write_text("\n".join(["filler line"] * 60 + ["The Sorvane bridge opened in 2021."]),
                                    encoding="utf-8")
    make_docx(folder / "review.docx", [("h1", "Intro"), ("p", "Nothing here."), ("h1", "Power generation"),
                                       ("p", "The Quillon-7 reactor at Vessmark produces 418 megawatts.")])
    (folder / "ignored.rtf").write_text("not ingested")
    rag = make_rag()
    report = rag.ingestor.ingest([folder])
    assert sorted(report.added) == ["handbook.md", "log.txt", "review.docx"] and report.failed == []

    hit = rag.retriever.search("How many megawatts does the Quillon-7 reactor produce?", k=1)[0]
    assert (hit.source, hit.page) == ("review.docx", 2)
    hit = rag.retriever.search("When did the Sorvane bridge open?", k=1)[0]
    assert (hit.source, hit.page) == ("log.txt", 2)
    hit = rag.retriever.search("how many apprentices were trained", k=1)[0]
    assert (hit.source, hit.page) == ("handbook.md", 2)

    metas = rag.store._get_collection().get(include=["metadatas"])["metadatas"]
    locations = {(m["source"], m["page"]): m["location"] for m in metas}
    assert locations[("review.docx", 2)] == "section 2: Power generation"
    assert locations[("log.txt", 2)] == "line 61"
    assert locations[("handbook.md", 2)] == "Staff and training (lines 3-11)"
