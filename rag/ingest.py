"""Ingestion: files -> pages -> chunks -> vectors -> store, incrementally and file by file.

A file whose bytes hash to what the manifest already holds is skipped before any parsing or embedding. A file
that fails is reported with a one-line reason and leaves the store as it was; the other files go on.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from rag.errors import DocumentError, RagError
from rag.loaders import LoadOptions, supported
from rag.parsing import Parsed, ParsePool, parse, processes_for
from rag.providers.embeddings import Embedder
from rag.splitting import Splitter, search_text
from rag.store import Store
from rag.types import DocumentInfo, Failure, IngestReport

logger = logging.getLogger(__name__)

PREFETCH = 2  # files parsed ahead of the one being embedded
# Bumped when parsing or chunking changes what is stored: documents ingested by an older version are redone.
VERSION = 3


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
        planned: list[tuple[int, Path, str, str, DocumentInfo | None]] = []
        for done, path in enumerate(files):
            source = names.get(path) or source_name(path)
            try:
                doc_id = file_hash(path.read_bytes())
            except OSError as exc:
                report.failed.append(Failure(source, f"cannot read the file ({exc.strerror or exc})"))
                notify(Progress(source, "failed", done + 1, total, exc.strerror or str(exc)))
                continue
            if source in seen and seen[source] != doc_id:
                reason = "another file with the same name but different content is in this batch; rename one"
                report.failed.append(Failure(source, reason))
                notify(Progress(source, "failed", done + 1, total, reason))
                continue
            seen[source] = doc_id
            existing = self._store.document(source)
            if existing is not None and existing.doc_id == doc_id and existing.version == VERSION:
                report.skipped.append(source)
                notify(Progress(source, "skipped", done + 1, total, "unchanged"))
                continue
            planned.append((done, path, source, doc_id, existing))

        # Parse ahead while this thread embeds: several files or a long PDF in worker processes, one short file in
        # a thread (rag.parsing).
        # At most PREFETCH files are parsed or waiting in memory at a time.
        position = {source: done for done, _, source, _, _ in planned}

        def on_page(source: str, page: int, pages: int) -> None:
            notify(Progress(source, "parsing", position[source], total, f"page {page}/{pages}", page, pages))

        processes = processes_for([path for _, path, _, _, _ in planned])
        with ParsePool(self.options, self._splitter, on_page, processes=processes) as pool:
            queue: deque[tuple[tuple[int, Path, str, str, DocumentInfo | None], Future[Parsed]]] = deque()
            upcoming = iter(planned)

            def submit_next() -> None:
                item = next(upcoming, None)
                if item is not None:
                    _, path, source, doc_id, _ = item
                    queue.append((item, pool.submit(path, source, doc_id)))

            for _ in range(PREFETCH):
                submit_next()
            while queue:
                (done, path, source, _, existing), future = queue.popleft()
                submit_next()

                def on_embedded(count: int, chunks: int, source: str = source, done: int = done) -> None:
                    notify(Progress(source, "embedding", done, total, f"{count}/{chunks} chunks", count, chunks, "chunk"))

                try:
                    parsed = future.result()
                    notify(Progress(source, "embedding", done, total, f"{len(parsed.chunks)} chunks", 0,
                                    len(parsed.chunks), "chunk"))
                    self.write(parsed, on_embedded=on_embedded)
                except RagError as exc:
                    if not isinstance(exc, DocumentError):
                        raise  # config, embedding-model or provider trouble: every other file would fail the same way
                    report.failed.append(Failure(source, str(exc)))
                    notify(Progress(source, "failed", done + 1, total, str(exc)))
                    continue
                except Exception as exc:  # one bad file must never stop the folder
                    logger.debug("unexpected failure ingesting %s", path, exc_info=True)
                    reason = f"unexpected error: {type(exc).__name__}: {str(exc)[:200]}"
                    report.failed.append(Failure(source, reason))
                    notify(Progress(source, "failed", done + 1, total, reason))
                    continue
                report.warnings.extend(parsed.warnings)
                (report.added if existing is None else report.updated).append(source)
                notify(Progress(source, "added" if existing is None else "updated", done + 1, total,
                                f"{len(parsed.pages)} pages, {len(parsed.chunks)} chunks"))

    def parse(self, data: bytes, source: str, doc_id: str, path: str = "",
              on_page: Callable[[int, int], None] | None = None) -> Parsed:
        """Parse one file's bytes in this thread."""
        return parse(data, source, doc_id, self.options, self._splitter, path, on_page)

    def write(self, parsed: Parsed, on_embedded: Callable[[int, int], None] | None = None) -> DocumentInfo:
        embedder = self._embedder_factory()
        self._store.check_embedding(embedder.provider, embedder.model)
        texts = [search_text(c) for c in parsed.chunks]
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
            version=VERSION,
        )
        self._store.replace(info, parsed.chunks, vectors, provider=embedder.provider, model=embedder.model,
                            terms=parsed.terms)
        return info
