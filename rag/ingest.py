"""Ingestion: files -> pages -> chunks -> vectors -> store, incrementally and file by file.

A file whose bytes hash to what the manifest already holds is skipped before any parsing or embedding. A file
that fails is reported with a one-line reason and leaves the store as it was; the other files go on.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from rag.errors import DocumentError, RagError
from rag.loaders import LoadOptions, parse_file, supported
from rag.providers.embeddings import Embedder
from rag.splitting import Splitter
from rag.store import Store
from rag.types import Chunk, DocumentInfo, Failure, IngestReport, Page

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Progress:
    """One step of an ingest run, for progress bars: ``stage`` is parsing, embedding, added, updated,
    skipped or failed; ``done`` files of ``total`` are finished. While a file is parsed, ``page`` of ``pages``
    are read; while it is embedded, ``page`` of ``pages`` counts chunks instead (``unit`` says which)."""

    file: str
    stage: str
    done: int
    total: int
    detail: str = ""
    page: int = 0
    pages: int = 0
    unit: str = "page"


OnProgress = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class Parsed:
    source: str
    doc_id: str
    pages: list[Page]
    chunks: list[Chunk]
    path: str = ""
    warnings: list[str] = field(default_factory=list)


def discover(paths: Iterable[str | Path]) -> tuple[list[Path], list[Failure]]:
    """Supported files under ``paths`` (folders recursively, sorted), and failures for paths that are unusable."""
    files: list[Path] = []
    failures: list[Failure] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(p for p in sorted(path.rglob("*")) if p.is_file() and supported(p) and not p.name.startswith("."))
        elif path.is_file():
            if supported(path):
                files.append(path)
            else:
                failures.append(Failure(path.name, f"unsupported file type '{path.suffix}'"))
        else:
            failures.append(Failure(str(path), "no such file or folder"))
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, failures


def source_name(path: Path) -> str:
    return unicodedata.normalize("NFC", path.name)


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


EMBED_BATCH = 256  # chunks per embedding call, so a large file shows progress while it is embedded


class Ingestor:
    def __init__(self, store: Store, embedder_factory: Callable[[], Embedder], splitter: Splitter,
                 options: LoadOptions | None = None) -> None:
        self._store = store
        self._embedder_factory = embedder_factory  # called only when something needs embedding
        self._splitter = splitter
        self.options = options or LoadOptions()

    def ingest(self, paths: Iterable[str | Path], on_progress: OnProgress | None = None,
               names: dict[Path, str] | None = None) -> IngestReport:
        """Ingest files and folders. ``names`` maps a path to the source name to record (for uploads whose
        temporary path differs from the user's file name)."""
        report = IngestReport()
        files, report.failed = discover(paths)
        notify = on_progress or (lambda _p: None)
        try:
            self._ingest_files(files, report, notify, names or {})
        finally:
            self._store.commit()
        return report

    def _ingest_files(self, files: list[Path], report: IngestReport, notify: OnProgress, names: dict[Path, str]) -> None:
        total = len(files)
        seen: dict[str, str] = {}
        for done, path in enumerate(files):
            source = names.get(path) or source_name(path)
            try:
                data = path.read_bytes()
            except OSError as exc:
                report.failed.append(Failure(source, f"cannot read the file ({exc.strerror or exc})"))
                notify(Progress(source, "failed", done + 1, total, exc.strerror or str(exc)))
                continue
            doc_id = file_hash(data)
            if source in seen and seen[source] != doc_id:
                reason = "another file with the same name but different content is in this batch; rename one"
                report.failed.append(Failure(source, reason))
                notify(Progress(source, "failed", done + 1, total, reason))
                continue
            seen[source] = doc_id
            existing = self._store.document(source)
            if existing is not None and existing.doc_id == doc_id:
                report.skipped.append(source)
                notify(Progress(source, "skipped", done + 1, total, "unchanged"))
                continue
            notify(Progress(source, "parsing", done, total))

            def on_page(page: int, pages: int, source: str = source, done: int = done) -> None:
                notify(Progress(source, "parsing", done, total, f"page {page}/{pages}", page, pages))

            def on_embedded(count: int, chunks: int, source: str = source, done: int = done) -> None:
                notify(Progress(source, "embedding", done, total, f"{count}/{chunks} chunks", count, chunks, "chunk"))

            try:
                parsed = self.parse(data, source, doc_id, path=str(path), on_page=on_page)
                notify(Progress(source, "embedding", done, total, f"{len(parsed.chunks)} chunks", 0,
                                len(parsed.chunks), "chunk"))
                self.write(parsed, on_embedded=on_embedded)
            except RagError as exc:
                if not isinstance(exc, DocumentError):
                    raise  # config, embedding-model or provider trouble: every other file would fail the same way
                report.failed.append(Failure(source, str(exc)))
                notify(Progress(source, "failed", done + 1, total, str(exc)))
                continue
            except Exception as exc:
                logger.exception("unexpected failure ingesting %s", path)
                reason = f"unexpected error: {type(exc).__name__}: {str(exc)[:200]}"
                report.failed.append(Failure(source, reason))
                notify(Progress(source, "failed", done + 1, total, reason))
                continue
            report.warnings.extend(parsed.warnings)
            stage = "added" if existing is None else "updated"
            (report.added if existing is None else report.updated).append(source)
            notify(Progress(source, stage, done + 1, total, f"{len(parsed.pages)} pages, {len(parsed.chunks)} chunks"))

    def parse(self, data: bytes, source: str, doc_id: str, path: str = "",
              on_page: Callable[[int, int], None] | None = None) -> Parsed:
        loaded = parse_file(data, source, self.options, on_page)
        chunks = self._splitter.split(loaded.pages, doc_id)
        if not chunks:
            raise DocumentError("no text found in the file", hint="check that the file is not empty")
        return Parsed(source, doc_id, loaded.pages, chunks, path, loaded.warnings)

    def write(self, parsed: Parsed, on_embedded: Callable[[int, int], None] | None = None) -> DocumentInfo:
        embedder = self._embedder_factory()
        self._store.check_embedding(embedder.provider, embedder.model)
        texts = [c.text for c in parsed.chunks]
        parts = []
        for start in range(0, len(texts), EMBED_BATCH):
            parts.append(embedder.embed_documents(texts[start:start + EMBED_BATCH]))
            if on_embedded is not None:
                on_embedded(min(start + EMBED_BATCH, len(texts)), len(texts))
        vectors = np.concatenate(parts) if len(parts) > 1 else parts[0]
        info = DocumentInfo(
            source=parsed.source,
            doc_id=parsed.doc_id,
            pages=len(parsed.pages),
            chunks=len(parsed.chunks),
            ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
            ocr_pages=sum(1 for p in parsed.pages if p.ocr),
            path=parsed.path,
        )
        self._store.replace(info, parsed.chunks, vectors, provider=embedder.provider, model=embedder.model)
        return info
