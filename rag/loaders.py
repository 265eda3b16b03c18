"""Turn a file's bytes into pages of normalised text, or raise DocumentError with a one-line reason.

Loaders are plain top-level functions (picklable), so ingestion can run them in worker processes.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path

from rag.errors import DocumentError
from rag.text import normalise
from rag.types import Page

logger = logging.getLogger(__name__)

Loader = Callable[[bytes, str], list[Page]]


def load_pdf(data: bytes, source: str) -> list[Page]:
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

    pages: list[Page] = []
    for number in range(1, count + 1):
        try:
            raw = reader.pages[number - 1].extract_text() or ""
        except Exception as exc:  # noqa: BLE001 - one unreadable page must not lose the rest of the file
            logger.warning("%s: page %d could not be read: %s", source, number, _short(exc))
            raw = ""
        pages.append(Page(source=source, page=number, text=normalise(raw)))
    return pages


def load_text(data: bytes, source: str) -> list[Page]:
    """Plain text and Markdown: one 'page' per block of up to 60 lines, numbered from 1."""
    text = _decode_text(data)
    lines = text.splitlines()
    pages = []
    for start in range(0, max(len(lines), 1), 60):
        block = normalise("\n".join(lines[start:start + 60]))
        pages.append(Page(source=source, page=start // 60 + 1, text=block))
    return pages


LOADERS: dict[str, Loader] = {
    ".pdf": load_pdf,
    ".txt": load_text,
    ".md": load_text,
}


def supported(path: Path) -> bool:
    return path.suffix.lower() in LOADERS


def load(data: bytes, source: str) -> list[Page]:
    """Pages of ``data`` (the bytes of the file named ``source``); raises DocumentError when unreadable."""
    suffix = Path(source).suffix.lower()
    loader = LOADERS.get(suffix)
    if loader is None:
        raise DocumentError(f"unsupported file type '{suffix}'", hint=f"supported: {', '.join(sorted(LOADERS))}")
    if not data:
        raise DocumentError("empty file (0 bytes)", hint="re-export or re-download the file")
    pages = loader(data, source)
    if not any(page.text for page in pages):
        raise DocumentError("no text found in the file", hint="if it is a scan, enable OCR (ingest.ocr: auto)")
    return pages


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


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
