"""What loaders take and give: ``LoadOptions`` (from the settings; small, frozen, picklable), ``Loaded`` (pages
and warnings), the page-progress callback, and the small helpers the loaders share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rag.types import Page

if TYPE_CHECKING:
    from rag.config import IngestSettings, TranscriptionSettings

OnPage = Callable[[int, int], None]  # (pages done, pages in the file)


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """What loaders need from the settings; small, frozen and picklable."""

    ocr: str = "auto"  # auto: pages without a usable text layer | always: every PDF page | never
    ocr_languages: str = "kor+eng"
    ocr_dpi: int = 200
    tesseract: str = "tesseract"  # command name or path of the Tesseract binary
    pdf_tables: bool = True  # PDF text in layout mode, tables rewritten as header-led rows (rag.ingest.tables)
    text_lines: int = 60  # lines per section of a .txt file (and of a .md file without headings)
    docx_paragraphs: int = 30  # paragraphs per section of a .docx file without headings
    first_page: int = 1  # a range of PDF pages, to parse one large PDF in parts (see rag.ingest.workers)
    last_page: int = 0  # 0: to the end
    transcription: TranscriptionSettings | None = None  # speech to text for audio files (rag.ingest.audio)
    timeout: float = 0  # seconds one file (or part of a PDF) may take in its worker process; 0: no limit
    memory_mb: int = 0  # address-space limit of that process; 0: no limit (either limit: parsed in a process)
    max_chunks: int = 0  # passages one file may give (they are all embedded); 0: no limit

    @classmethod
    def from_settings(cls, ingest: IngestSettings) -> LoadOptions:
        return cls(ocr=ingest.ocr, ocr_languages=ingest.ocr_languages, pdf_tables=ingest.pdf_tables,
                   timeout=ingest.file_timeout, memory_mb=ingest.file_memory_mb, max_chunks=ingest.file_max_chunks)

    @property
    def limited(self) -> bool:
        return bool(self.timeout or self.memory_mb)


@dataclass(slots=True)
class Loaded:
    pages: list[Page]
    warnings: list[str] = field(default_factory=list)  # one line each, naming the file and pages
    ocr_unavailable: str = ""  # why OCR could not run, when a page needed it
    ocr_hint: str = ""  # what to install


def span(noun: str, first: int, last: int) -> str:
    return f"{noun} {first}-{last}" if last > first else f"{noun[:-1]} {first}"


def clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
