"""Turn a file's bytes into pages of normalised text, or raise DocumentError with a one-line reason.

``load_file(data, source, options)`` is the one entry point; it picks the loader by the file's suffix
(``rag.ingest.pdf``, ``rag.ingest.plaintext``, ``rag.ingest.word``, ``rag.ingest.audio``). Loaders are plain
top-level functions taking only picklable arguments (bytes, a name, a frozen ``LoadOptions``), so ingestion can run
them in worker processes.

What a "page" is depends on the file type; ``page`` is always a 1-based int and ``location`` says what it means
(empty for PDF pages; "lines 61-120", "section 3: Results" for the others; "00:03:12-00:04:05" for audio).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rag.errors import DocumentError
from rag.ingest.loading import Loaded, LoadOptions, OnPage
from rag.ingest.ocr import INSTALL_HINT

AUDIO = (".mp3", ".wav", ".m4a", ".ogg", ".webm")  # transcribed (rag.ingest.audio; needs transcription.provider)
SUFFIXES = (".pdf", ".txt", ".md", ".markdown", ".docx", *AUDIO)  # the file types ingestion reads

Loader = Callable[[bytes, str, LoadOptions, "OnPage | None"], Loaded]


def loader_for(suffix: str) -> Loader:
    """The loader of a file type (imported on first use: a PDF-only folder never imports python-docx)."""
    if suffix == ".pdf":
        from rag.ingest.pdf import load_pdf

        return load_pdf
    if suffix == ".txt":
        from rag.ingest.plaintext import load_text

        return load_text
    if suffix in (".md", ".markdown"):
        from rag.ingest.plaintext import load_markdown

        return load_markdown
    if suffix == ".docx":
        from rag.ingest.word import load_docx

        return load_docx
    if suffix in AUDIO:
        from rag.ingest.audio import load_audio

        return load_audio
    raise DocumentError(f"unsupported file type '{suffix}'", hint=f"supported: {', '.join(sorted(SUFFIXES))}")


def supported(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def load_file(data: bytes, source: str, options: LoadOptions | None = None, on_page: OnPage | None = None) -> Loaded:
    """Pages of ``data`` (the bytes of the file named ``source``) and warnings about pages that were skipped;
    raises DocumentError when the file is unreadable or has no text at all."""
    options = options or LoadOptions()
    suffix = Path(source).suffix.lower()
    loader = loader_for(suffix)
    if not data:
        raise DocumentError("empty file (0 bytes)", hint="re-export or re-download the file")
    loaded = loader(data, source, options, on_page)
    if not any(page.text for page in loaded.pages):
        raise _no_text(suffix, options, loaded)
    return loaded


def join_parts(parts: list[Loaded], options: LoadOptions) -> Loaded:
    """One PDF's parts (``load_pdf`` with ``first_page``/``last_page``), in page order, as ``load_file`` would
    have returned them (or its error: the whole-file "no text" check happens here)."""
    missing = next((part for part in parts if part.ocr_unavailable), None)
    loaded = Loaded([page for part in parts for page in part.pages], [w for part in parts for w in part.warnings],
                    missing.ocr_unavailable if missing else "", missing.ocr_hint if missing else "")
    if not any(page.text for page in loaded.pages):
        raise _no_text(".pdf", options, loaded)
    return loaded


def _no_text(suffix: str, options: LoadOptions, loaded: Loaded) -> DocumentError:
    if suffix != ".pdf":
        return DocumentError("no text found in the file", hint="check that the file is not empty")
    if options.ocr == "never":
        return DocumentError("no usable text layer in the PDF (a scan?), and OCR is off", hint="set ingest.ocr: auto")
    if loaded.ocr_unavailable:
        return DocumentError(f"no usable text layer in the PDF (a scan?), and {loaded.ocr_unavailable}",
                             hint=loaded.ocr_hint or INSTALL_HINT)
    if loaded.warnings:  # pages were skipped: say why (the first reason; the file name is known)
        source = loaded.pages[0].source if loaded.pages else ""
        reason = loaded.warnings[0].removeprefix(f"{source}: ")
        return DocumentError(f"no text found in the file; {reason}")
    return DocumentError("no text found in the file, not even by OCR", hint="check that the pages are not blank")
