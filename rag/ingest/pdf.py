"""PDF files: one page per page, text from pypdf (layout mode with table rows kept under their header, see
``rag.ingest.tables``), and OCR for pages without a usable text layer (see ``rag.ingest.ocr``)."""

from __future__ import annotations

import io
import logging
from typing import Any

from rag.errors import DocumentError
from rag.ingest.loading import Loaded, LoadOptions, OnPage, short
from rag.ingest.ocr import OcrUnavailable, PageImages, check_tesseract, ocr_image, text_layer_problem
from rag.text import normalise
from rag.types import Page

logger = logging.getLogger(__name__)


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
        raise DocumentError(f"damaged PDF ({short(exc)})", hint="re-export or re-download the file") from None
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
    try:
        raw = _extract(page, source, number, layout=options.pdf_tables)
    except _TooLarge as exc:
        # Rendering it for OCR would inflate the same stream: the page is skipped, with the reason.
        ocr.skipped(number, f"its content inflates past {exc} (a decompression bomb?)", "")
        return Page(source=source, page=number, text="")
    problem = text_layer_problem(raw)
    if options.pdf_tables and problem:
        # Layout mode returns nothing for some pages plain mode reads (seen on a Korean report): judge the
        # text layer by plain mode, and use it.
        raw = _extract(page, source, number, layout=False)
        problem = text_layer_problem(raw)
    elif options.pdf_tables:
        from rag.ingest.tables import table_text

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


class _TooLarge(Exception):
    """A stream of the page inflates past pypdf's decompression limit."""


def _extract(page: Any, source: str, number: int, layout: bool) -> str:
    """The page's text (layout or plain mode), "" when unreadable; ``_TooLarge`` for a decompression bomb."""
    from pypdf.errors import LimitReachedError

    if layout:
        try:
            return page.extract_text(extraction_mode="layout") or ""
        except LimitReachedError:
            raise _TooLarge(_limit()) from None
        except Exception as exc:  # noqa: BLE001 - layout mode is pickier; plain mode may still read the page
            logger.debug("%s: page %d: layout extraction failed (%s); using plain mode", source, number, short(exc))
    try:
        return page.extract_text() or ""
    except LimitReachedError:
        raise _TooLarge(_limit()) from None
    except Exception as exc:  # noqa: BLE001 - one unreadable page must not lose the rest of the file
        logger.warning("%s: page %d could not be read: %s", source, number, short(exc))
        return ""


def _limit() -> str:
    """pypdf's limit on an inflated stream, for messages."""
    try:
        from pypdf.filters import ZLIB_MAX_OUTPUT_LENGTH as limit
    except ImportError:
        return "the decompression limit"
    return f"{limit / 1e6:g} MB"


class _PdfOcr:
    """OCR for the pages of one PDF: Tesseract is looked up on first need; pages it could not read are
    collected into one warning per reason."""

    def __init__(self, data: bytes, options: LoadOptions) -> None:
        self._renderer = PageImages(data, options.ocr_dpi)
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
            logger.warning("OCR of page %d failed: %s", number, short(exc))
            if required:
                self.skipped(number, f"OCR failed ({short(exc)})", "")
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


def pdf_page_count(data: bytes) -> int:
    """Pages of a PDF, or 0 when it cannot be read (its parse reports why)."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        return 0 if reader.is_encrypted else len(reader.pages)
    except Exception:  # noqa: BLE001 - a damaged file is reported by the real parse
        return 0


def _check_pdf_bytes(data: bytes) -> None:
    head = data[:1024]
    if b"%PDF-" in head:
        return
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")) or b"<html" in lowered:
        raise DocumentError("not a PDF: the file is an HTML page named .pdf", hint="download the actual PDF")
    raise DocumentError("not a PDF: no %PDF header", hint="check that the file is a PDF and not damaged")
