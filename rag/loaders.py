"""Turn a file's bytes into pages of normalised text, or raise DocumentError with a one-line reason.

``parse_file(data, source, options)`` is the one entry point. Loaders are plain top-level functions taking only
picklable arguments (bytes, a name, a frozen ``LoadOptions``), so ingestion can run them in worker processes.

What a "page" is depends on the file type; ``page`` is always a 1-based int and ``location`` says what it means:

- PDF: the page. A page without a usable text layer (see ``rag.ocr``) is read by OCR when ``ocr`` allows it.
- .txt: blocks of ``text_lines`` lines (``location`` "lines 61-120").
- .md: sections that start at headings (``location`` "Installation (lines 12-40)"); blocks of lines without any.
- .docx: sections that start at headings (``location`` "section 3: Results"); groups of ``docx_paragraphs``
  paragraphs without any (``location`` "paragraphs 31-60"). Tables become ``cell | cell`` lines.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import DocumentError
from rag.ocr import INSTALL_HINT, OcrUnavailable, PageRenderer, check_tesseract, ocr_image, text_layer_problem
from rag.text import normalise
from rag.types import Page

if TYPE_CHECKING:
    from rag.config import IngestSettings

logger = logging.getLogger(__name__)

OnPage = Callable[[int, int], None]  # (pages done, pages in the file)


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """What loaders need from the settings; small, frozen and picklable."""

    ocr: str = "auto"  # auto: pages without a usable text layer | always: every PDF page | never
    ocr_languages: str = "kor+eng"
    ocr_dpi: int = 200
    tesseract: str = "tesseract"  # command name or path of the Tesseract binary
    pdf_tables: bool = True  # PDF text in layout mode, tables rewritten as header-led rows (rag.tables)
    text_lines: int = 60  # lines per section of a .txt file (and of a .md file without headings)
    docx_paragraphs: int = 30  # paragraphs per section of a .docx file without headings
    first_page: int = 1  # a range of PDF pages, to parse one large PDF in parts (see rag.parsing)
    last_page: int = 0  # 0: to the end

    @classmethod
    def from_settings(cls, ingest: IngestSettings) -> LoadOptions:
        return cls(ocr=ingest.ocr, ocr_languages=ingest.ocr_languages, pdf_tables=ingest.pdf_tables)


@dataclass(slots=True)
class Loaded:
    pages: list[Page]
    warnings: list[str] = field(default_factory=list)  # one line each, naming the file and pages
    ocr_unavailable: str = ""  # why OCR could not run, when a page needed it
    ocr_hint: str = ""  # what to install


Loader = Callable[[bytes, str, LoadOptions, "OnPage | None"], Loaded]


# -- PDF -------------------------------------------------------------------------------------------------

def load_pdf(data: bytes, source: str, options: LoadOptions, on_page: OnPage | None = None) -> Loaded:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    _check_pdf_bytes(data)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError("password-protected PDF", hint="remove the password (e.g. print to PDF) and add it again")
        count = len(reader.pages)
    except DocumentError:
        raise
    except (FileNotDecryptedError, DependencyError):
        raise DocumentError("password-protected PDF", hint="remove the password (e.g. print to PDF) and add it again") from None
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise DocumentError(f"damaged PDF ({_short(exc)})", hint="re-export or re-download the file") from None
    if count == 0:
        raise DocumentError("the PDF has no pages", hint="re-export or re-download the file")

    ocr = _PdfOcr(data, options)
    pages: list[Page] = []
    try:
        for number in range(options.first_page, min(count, options.last_page or count) + 1):
            pages.append(_pdf_page(reader, number, source, options, ocr))
            if on_page is not None:
                on_page(number, count)
    finally:
        ocr.close()
    missing = ocr.unavailable if ocr.needed_missing else None
    return Loaded(pages, ocr.warnings(source), missing.message if missing else "", missing.hint if missing else "")


def _pdf_page(reader: Any, number: int, source: str, options: LoadOptions, ocr: _PdfOcr) -> Page:
    page = reader.pages[number - 1]
    raw = _extract(page, source, number, layout=options.pdf_tables)
    problem = text_layer_problem(raw)
    if options.pdf_tables and problem:
        # Layout mode returns nothing for some pages plain mode reads (seen on a Korean report): judge the
        # text layer by plain mode, and use it.
        raw = _extract(page, source, number, layout=False)
        problem = text_layer_problem(raw)
    elif options.pdf_tables:
        from rag.tables import table_text

        raw = table_text(raw)
    text = normalise(raw)
    if problem == "garbled text layer":
        text = ""  # garbage never helps retrieval, with or without OCR
    if options.ocr == "never":
        if problem == "garbled text layer":
            ocr.skipped(number, "garbled text layer, and OCR is off (ingest.ocr: never)", "set ingest.ocr: auto")
        return Page(source=source, page=number, text=text)
    if options.ocr == "always" or problem:
        read = ocr.read(number, required=problem == "garbled text layer" or not text,
                        fallback=bool(text) and options.ocr == "always")
        if read is not None:
            read = normalise(read)
            if options.ocr == "always" or len(read) > len(text):
                return Page(source=source, page=number, text=read, ocr=True)
    return Page(source=source, page=number, text=text)


def _extract(page: Any, source: str, number: int, layout: bool) -> str:
    if layout:
        try:
            return page.extract_text(extraction_mode="layout") or ""
        except Exception as exc:  # noqa: BLE001 - layout mode is pickier; plain mode may still read the page
            logger.debug("%s: page %d: layout extraction failed (%s); using plain mode", source, number, _short(exc))
    try:
        return page.extract_text() or ""
    except Exception as exc:  # noqa: BLE001 - one unreadable page must not lose the rest of the file
        logger.warning("%s: page %d could not be read: %s", source, number, _short(exc))
        return ""


class _PdfOcr:
    """OCR for the pages of one PDF: Tesseract is looked up on first need; pages it could not read are
    collected into one warning per reason."""

    def __init__(self, data: bytes, options: LoadOptions) -> None:
        self._renderer = PageRenderer(data, options.ocr_dpi)
        self._options = options
        self._binary: str | None = None
        self.unavailable: OcrUnavailable | None = None
        self._skipped: dict[tuple[str, str], list[int]] = {}
        self.needed_missing = False  # a page needed OCR while it was unavailable

    def read(self, number: int, *, required: bool, fallback: bool) -> str | None:
        """Text of page ``number`` by OCR, or None (recorded as skipped when the page has nothing else)."""
        if self.unavailable is None and self._binary is None:
            try:
                self._binary = check_tesseract(self._options.ocr_languages, self._options.tesseract)
            except OcrUnavailable as exc:
                self.unavailable = exc
        if self.unavailable is not None:
            if required:
                self.needed_missing = True
                self.skipped(number, f"no usable text layer; {self.unavailable.message}", self.unavailable.hint)
            elif fallback:
                self.skipped(number, f"read from the text layer: {self.unavailable.message}", self.unavailable.hint)
            return None
        assert self._binary is not None
        try:
            return ocr_image(self._renderer.render(number - 1), self._options.ocr_languages, self._binary)
        except OcrUnavailable as exc:
            self.unavailable = exc
            return self.read(number, required=required, fallback=fallback)
        except Exception as exc:  # noqa: BLE001 - a page that fails to render or OCR must not lose the file
            logger.warning("OCR of page %d failed: %s", number, _short(exc))
            if required:
                self.skipped(number, f"OCR failed ({_short(exc)})", "")
            return None

    def skipped(self, number: int, reason: str, hint: str) -> None:
        self._skipped.setdefault((reason, hint), []).append(number)

    def warnings(self, source: str) -> list[str]:
        out = []
        for (reason, hint), numbers in self._skipped.items():
            noun = "page" if len(numbers) == 1 else "pages"
            fix = f" (fix: {hint})" if hint else ""
            verb = "" if reason.startswith("read from") else " skipped:"
            out.append(f"{source}: {noun} {page_ranges(numbers)}{verb} {reason}{fix}")
        return out

    def close(self) -> None:
        self._renderer.close()


def page_ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3, 5"``."""
    parts: list[str] = []
    start = prev = None
    for n in sorted(numbers):
        if prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            parts.append(f"{start}-{prev}" if prev != start else f"{start}")
        start = prev = n
    if start is not None:
        parts.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ", ".join(parts)


# -- plain text and Markdown -----------------------------------------------------------------------------

_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
_MD_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def load_text(data: bytes, source: str, options: LoadOptions, on_page: OnPage | None = None) -> Loaded:
    """Plain text: one section per block of ``text_lines`` lines, numbered from 1."""
    lines = _decode_text(data).splitlines()
    return Loaded(_line_blocks(lines, source, options.text_lines, first_line=1, first_page=1))


def load_markdown(data: bytes, source: str, options: LoadOptions, on_page: OnPage | None = None) -> Loaded:
    """Markdown: a section starts at each heading (not inside fenced code); without headings, line blocks."""
    lines = _decode_text(data).splitlines()
    starts: list[tuple[int, str]] = []  # (0-based line, heading text)
    fenced = False
    for i, line in enumerate(lines):
        if _MD_FENCE.match(line):
            fenced = not fenced
        elif not fenced and (m := _MD_HEADING.match(line)):
            starts.append((i, m.group(2).strip()))
    if not starts:
        return Loaded(_line_blocks(lines, source, options.text_lines, first_line=1, first_page=1))
    pages: list[Page] = []
    bounds = ([(0, "")] if starts[0][0] > 0 else []) + starts
    for k, (start, title) in enumerate(bounds):
        end = bounds[k + 1][0] if k + 1 < len(bounds) else len(lines)
        text = normalise("\n".join(lines[start:end]))
        if not text and not title:
            continue
        span = _span("lines", start + 1, max(start + 1, end))
        pages.append(Page(source=source, page=len(pages) + 1, text=text,
                          location=f"{_clip(title)} ({span})" if title else span))
    return Loaded(pages)


def _line_blocks(lines: list[str], source: str, size: int, first_line: int, first_page: int) -> list[Page]:
    pages = []
    for start in range(0, max(len(lines), 1), size):
        block = lines[start:start + size]
        end = start + max(len(block), 1)
        pages.append(Page(source=source, page=first_page + start // size, text=normalise("\n".join(block)),
                          location=_span("lines", first_line + start, first_line + end - 1)))
    return pages


# -- Word ------------------------------------------------------------------------------------------------

def load_docx(data: bytes, source: str, options: LoadOptions, on_page: OnPage | None = None) -> Loaded:
    """Word documents: sections start at headings (Title / Heading n styles, or an outline level)."""
    try:
        import docx
        from docx.opc.exceptions import OpcError
    except ImportError:
        raise DocumentError("reading .docx files needs python-docx", hint="pip install python-docx") from None
    if not data.startswith(b"PK"):
        raise DocumentError("not a .docx file (no ZIP header)", hint="save it again as .docx (Word 2007 or later)")
    try:
        document = docx.Document(io.BytesIO(data))
        blocks = list(_docx_blocks(document))
    except (OpcError, zipfile.BadZipFile, KeyError, ValueError, AttributeError) as exc:
        raise DocumentError(f"damaged .docx ({_short(exc)})", hint="open it in Word and save it again") from None
    except Exception as exc:
        if type(exc).__module__.startswith("lxml"):
            raise DocumentError(f"damaged .docx ({_short(exc)})", hint="open it in Word and save it again") from None
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
            location = _span("paragraphs", start + 1, start + len(blocks[start:start + size]))
            pages.append(Page(source=source, page=len(pages) + 1, text=normalise("\n\n".join(group)), location=location))
    return Loaded(pages)


def _add_section(pages: list[Page], source: str, texts: list[str], heading: str) -> None:
    if not texts:
        return
    number = len(pages) + 1
    location = f"section {number}: {_clip(heading)}" if heading else f"section {number}"
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


# -- registry and entry point ----------------------------------------------------------------------------

LOADERS: dict[str, Loader] = {
    ".pdf": load_pdf,
    ".txt": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".docx": load_docx,
}


def supported(path: Path) -> bool:
    return path.suffix.lower() in LOADERS


def parse_file(data: bytes, source: str, options: LoadOptions | None = None, on_page: OnPage | None = None) -> Loaded:
    """Pages of ``data`` (the bytes of the file named ``source``) and warnings about pages that were skipped;
    raises DocumentError when the file is unreadable or has no text at all."""
    options = options or LoadOptions()
    suffix = Path(source).suffix.lower()
    loader = LOADERS.get(suffix)
    if loader is None:
        raise DocumentError(f"unsupported file type '{suffix}'", hint=f"supported: {', '.join(sorted(LOADERS))}")
    if not data:
        raise DocumentError("empty file (0 bytes)", hint="re-export or re-download the file")
    loaded = loader(data, source, options, on_page)
    if not any(page.text for page in loaded.pages):
        raise _no_text(suffix, options, loaded)
    return loaded


def pdf_page_count(data: bytes) -> int:
    """Pages of a PDF, or 0 when it cannot be read (its parse reports why)."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        return 0 if reader.is_encrypted else len(reader.pages)
    except Exception:  # noqa: BLE001 - a damaged file is reported by the real parse
        return 0


def join_parts(parts: list[Loaded], options: LoadOptions) -> Loaded:
    """One PDF's parts (``load_pdf`` with ``first_page``/``last_page``), in page order, as ``parse_file`` would
    have returned them (or its error: the whole-file "no text" check happens here)."""
    missing = next((part for part in parts if part.ocr_unavailable), None)
    loaded = Loaded([page for part in parts for page in part.pages], [w for part in parts for w in part.warnings],
                    missing.ocr_unavailable if missing else "", missing.ocr_hint if missing else "")
    if not any(page.text for page in loaded.pages):
        raise _no_text(".pdf", options, loaded)
    return loaded


def load(data: bytes, source: str, options: LoadOptions | None = None) -> list[Page]:
    """Just the pages (see ``parse_file``)."""
    return parse_file(data, source, options).pages


def _no_text(suffix: str, options: LoadOptions, loaded: Loaded) -> DocumentError:
    if suffix != ".pdf":
        return DocumentError("no text found in the file", hint="check that the file is not empty")
    if options.ocr == "never":
        return DocumentError("no usable text layer in the PDF (a scan?), and OCR is off", hint="set ingest.ocr: auto")
    if loaded.ocr_unavailable:
        return DocumentError(f"no usable text layer in the PDF (a scan?), and {loaded.ocr_unavailable}",
                             hint=loaded.ocr_hint or INSTALL_HINT)
    return DocumentError("no text found in the file, not even by OCR", hint="check that the pages are not blank")


def _check_pdf_bytes(data: bytes) -> None:
    head = data[:1024]
    if b"%PDF-" in head:
        return
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")) or b"<html" in lowered:
        raise DocumentError("not a PDF: the file is an HTML page named .pdf", hint="download the actual PDF")
    raise DocumentError("not a PDF: no %PDF header", hint="check that the file is a PDF and not damaged")


def _decode_text(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp949", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", "replace")  # unreachable: latin-1 decodes anything


def _span(noun: str, first: int, last: int) -> str:
    return f"{noun} {first}-{last}" if last > first else f"{noun[:-1]} {first}"


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
