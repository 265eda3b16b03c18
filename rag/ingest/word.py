"""Word files (.docx): sections start at headings (Title / Heading n styles, or an outline level), with
``location`` "section 3: Results"; without headings, groups of ``docx_paragraphs`` paragraphs ("paragraphs 31-60").
Tables become ``cell | cell`` lines."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from rag.errors import DocumentError
from rag.ingest.loading import Loaded, LoadOptions, OnPage, clip, short, span
from rag.text import normalise
from rag.types import Page


def load_docx(data: bytes, source: str, options: LoadOptions, on_page: OnPage | None = None) -> Loaded:
    """Word documents: sections start at headings (Title / Heading n styles, or an outline level)."""
    try:
        import docx
        from docx.opc.exceptions import OpcError
    except ImportError:
        raise DocumentError("reading .docx files needs python-docx", hint="pip install python-docx") from None
    if not data.startswith(b"PK"):
        raise DocumentError("not a .docx file (no ZIP header)", hint="save it again as .docx (Word 2007 or later)")
    _check_unpacked(data)
    try:
        document = docx.Document(io.BytesIO(data))
        blocks = list(_docx_blocks(document))
    except (OpcError, zipfile.BadZipFile, KeyError, ValueError, AttributeError) as exc:
        raise DocumentError(f"damaged .docx ({short(exc)})", hint="open it in Word and save it again") from None
    except Exception as exc:
        if type(exc).__module__.startswith("lxml"):
            raise DocumentError(f"damaged .docx ({short(exc)})", hint="open it in Word and save it again") from None
        raise

    pages: list[Page] = []
    if any(title for _, title in blocks):
        section: list[str] = []
        heading = ""
        for text, title in blocks:
            if title and (section or heading):
                _add_section(pages, source, section, heading)
                section = []
            if title:
                heading = title
            if text:
                section.append(text)
        _add_section(pages, source, section, heading)
    else:
        size = options.docx_paragraphs
        for start in range(0, len(blocks), size):
            group = [text for text, _ in blocks[start:start + size] if text]
            location = span("paragraphs", start + 1, start + len(blocks[start:start + size]))
            pages.append(Page(source=source, page=len(pages) + 1, text=normalise("\n\n".join(group)), location=location))
    return Loaded(pages)


MAX_UNPACKED_MB = 100  # a .docx may unpack to more than this only at a ratio a real one has (text, images)
MAX_RATIO = 100  # unpacked / packed: Word's XML packs about 5-20x, images about 1x; a zip bomb 1000x


def _check_unpacked(data: bytes) -> None:
    """Refuse a zip bomb before unpacking it: python-docx reads every part into memory. The sizes are those the
    ZIP declares, which bound what ``zipfile`` will unpack."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(item.file_size for item in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise DocumentError(f"damaged .docx ({short(exc)})", hint="open it in Word and save it again") from None
    mb = unpacked / 1024 / 1024
    if mb > MAX_UNPACKED_MB and unpacked > MAX_RATIO * len(data):
        raise DocumentError(f"the .docx unpacks to {mb:,.0f} MB from {len(data) / 1024 / 1024:,.1f} MB (a zip bomb?)",
                            hint="open it in Word and save it again")


def _add_section(pages: list[Page], source: str, texts: list[str], heading: str) -> None:
    if not texts:
        return
    number = len(pages) + 1
    location = f"section {number}: {clip(heading)}" if heading else f"section {number}"
    pages.append(Page(source=source, page=number, text=normalise("\n\n".join(texts)), location=location))


def _docx_blocks(document: Any) -> Any:
    """(text, heading title or "") for each paragraph and table of the body, in order."""
    from docx.table import Table

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            rows = []
            for row in block.rows:
                cells: list[str] = []
                for cell in row.cells:
                    text = " ".join(cell.text.split())
                    if not cells or cells[-1] != text:  # merged cells repeat their text
                        cells.append(text)
                if any(cells):
                    rows.append(" | ".join(cells))
            yield "\n".join(rows), ""
            continue
        text = block.text.strip()
        yield text, (" ".join(text.split()) if text and _is_heading(block) else "")


def _is_heading(paragraph: Any) -> bool:
    style = paragraph.style
    name = (style.name or "").lower() if style is not None else ""
    if name.startswith(("heading", "title")):
        return True
    ppr = paragraph._p.pPr
    return ppr is not None and ppr.find("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}outlineLvl") is not None
