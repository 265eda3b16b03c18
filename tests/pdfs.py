"""Write real PDFs (English and Korean text, one string a page) with fpdf2, for tests and the sample data."""

from __future__ import annotations

import glob
from pathlib import Path

FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/truetype/nanum/NanumBarunGothic.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
]


def korean_font() -> str:
    for path in FONT_CANDIDATES + sorted(glob.glob("/usr/share/fonts/**/Nanum*.ttf", recursive=True)):
        if Path(path).exists():
            return path
    raise RuntimeError("no Korean font found: install it with `apt-get install fonts-nanum` (make test does this)")


def write_pdf(path: str | Path, pages: list[str], *, title: str = "") -> Path:
    """One page per string; lines wrap; Hangul works (NanumGothic embedded with a ToUnicode map)."""
    import logging

    from fpdf import FPDF

    logging.getLogger("fontTools").setLevel(logging.ERROR)  # "TSI0 NOT subset" noise while subsetting Nanum
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=False)
    pdf.add_font("Nanum", fname=korean_font())
    pdf.set_font("Nanum", size=11)
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def write_image_pdf(path: str | Path, pages: list[str], *, font_size: int = 28) -> Path:
    """A 'scanned' PDF: each page is a picture of its text, with no text layer."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(korean_font(), font_size)
    images = []
    for text in pages:
        image = Image.new("RGB", (1240, 1754), "white")
        draw = ImageDraw.Draw(image)
        y = 120
        for line in text.split("\n"):
            draw.text((100, y), line, fill="black", font=font)
            y += int(font_size * 1.6)
        images.append(image)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, "PDF", resolution=150, save_all=True, append_images=images[1:])
    return path


def write_garbled_pdf(path: str | Path, pages: list[str]) -> Path:
    """Pages that look right but whose text layer decodes to garbage: the font's ToUnicode map is removed (as in
    PDFs from some older Korean word processors), so text extraction returns glyph ids, not the text."""
    from pypdf import PdfWriter
    from pypdf.generic import NameObject

    path = Path(path)
    write_pdf(path, pages)
    writer = PdfWriter(clone_from=str(path))
    for page in writer.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            if "/ToUnicode" in font:
                del font[NameObject("/ToUnicode")]
    writer.write(str(path))
    return path


def write_mixed_pdf(path: str | Path, pages: list[tuple[str, bool]]) -> Path:
    """One page per (text, scanned): scanned pages are pictures without a text layer, the others have text."""
    import tempfile

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    with tempfile.TemporaryDirectory() as tmp:
        for i, (text, scanned) in enumerate(pages):
            one = Path(tmp) / f"{i}.pdf"
            (write_image_pdf if scanned else write_pdf)(one, [text])
            writer.add_page(PdfReader(one).pages[0])
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer.write(str(path))
    return path


def write_table_pdf(path: str | Path, title: str, header: list[str], rows: list[list[str]], *, intro: str = "") -> Path:
    """A page with a title, an optional paragraph and a table (fpdf2's table layout: aligned columns, ruled)."""
    import logging

    from fpdf import FPDF
    from fpdf.enums import Align
    from fpdf.fonts import FontFace

    logging.getLogger("fontTools").setLevel(logging.ERROR)
    pdf = FPDF(format="A4")
    pdf.add_font("Nanum", fname=korean_font())
    pdf.set_font("Nanum", size=9)
    pdf.add_page()
    pdf.multi_cell(0, 6, title, new_x="LMARGIN", new_y="NEXT")
    if intro:
        pdf.multi_cell(0, 5, intro, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    with pdf.table(text_align=(Align.L, *[Align.R] * (len(header) - 1)), line_height=5,
                   headings_style=FontFace(emphasis=None)) as table:
        table.row(header)
        for row in rows:
            table.row(row)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path
