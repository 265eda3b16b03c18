"""Ingestion: files -> pages -> chunks -> vectors -> store, incrementally and file by file, in three steps:

    plan    read each file once: hash it, skip it when the store holds these bytes already, count a PDF's pages
    parse   in the parse pool (rag.ingest.workers), a few files ahead of the embedding
    write   embed the chunks' search texts and replace the document's chunks in the store (rag.search.store)

A file that fails is reported with a one-line reason and leaves the store as it was; the other files go on.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import DocumentError, RagError
from rag.ingest.loaders import supported
from rag.ingest.loading import LoadOptions
from rag.ingest.pdf import pdf_page_count
from rag.ingest.splitting import Splitter
from rag.ingest.workers import Parsed, ParsePool, Planned, processes_for
from rag.search.store import Store
from rag.text import tokenize
from rag.types import DocumentInfo, Failure, IngestReport, Progress

if TYPE_CHECKING:
    from rag.providers.embeddings import Embedder

logger = logging.getLogger(__name__)

PREFETCH = 2  # files parsed ahead of the one being embedded
EMBED_BATCH = 256  # chunks per embedding call, so a large file shows progress while it is embedded
# Bumped when parsing or chunking changes what is stored: documents ingested by an older version are redone.
VERSION = 3

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
                failures.append(Failure(path.name, f"unsupported file type '{path.suffix}'", "unsupported",
                                        {"suffix": path.suffix}))
        else:
            failures.append(Failure(str(path), "no such file or folder", "unreadable"))
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, failures


def source_name(path: Path) -> str:
    return unicodedata.normalize("NFC", path.name)


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class _Task:
    """A planned file and where it stands in the run (for progress: ``position`` files are done before it)."""

    file: Planned
    position: int
    existing: DocumentInfo | None  # the document this file replaces, if any


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
            self._store.sync(force=True)  # on a shared store, what other workers wrote a moment ago is skipped too
            tasks = list(self._plan(files, report, notify, names or {}))
            if tasks:
                self._parse_and_write(tasks, len(files), report, notify)
        finally:
            self._store.commit()
        return report

    # -- the steps ---------------------------------------------------------------------------------------

    def _plan(self, files: list[Path], report: IngestReport, notify: OnProgress,
              names: dict[Path, str]) -> Iterator[_Task]:
        """Each file read once: unreadable files, name clashes and unchanged files are settled here."""
        total = len(files)
        seen: dict[str, str] = {}
        for done, path in enumerate(files):
            source = names.get(path) or source_name(path)
            try:
                data = path.read_bytes()
            except OSError as exc:
                self._failed(report, notify, Failure(source, f"cannot read the file ({exc.strerror or exc})",
                                                     "unreadable"), done + 1, total)
                continue
            doc_id = file_hash(data)
            if source in seen and seen[source] != doc_id:
                reason = "another file with the same name but different content is in this batch; rename one"
                self._failed(report, notify, Failure(source, reason, "same_name"), done + 1, total)
                continue
            seen[source] = doc_id
            existing = self._store.document(source)
            if existing is not None and existing.doc_id == doc_id and existing.version == VERSION:
                report.skipped.append(source)
                notify(Progress(source, "skipped", done + 1, total, document=existing))
                continue
            pages = pdf_page_count(data) if path.suffix.lower() == ".pdf" else 0
            yield _Task(Planned(path, source, doc_id, pages), done, existing)

    def _parse_and_write(self, tasks: list[_Task], total: int, report: IngestReport, notify: OnProgress) -> None:
        """Parse ahead while this thread embeds: several files or a long PDF in worker processes, one short
        file in a thread (rag.ingest.workers). At most PREFETCH files are parsed or waiting in memory at a time."""
        checked: list[Embedder] = []

        def embedder() -> Embedder:
            """The embedder, loaded when the first file is parsed, and checked against the store once a run."""
            if not checked:
                loaded = self._embedder_factory()
                self._store.check_embedding(loaded.provider, loaded.model)
                checked.append(loaded)
            return checked[0]

        position = {task.file.source: task.position for task in tasks}

        def on_page(source: str, page: int, pages: int) -> None:
            notify(Progress(source, "parsing", position[source], total, page, pages))

        with ParsePool(self.options, self._splitter, on_page, processes=processes_for([t.file for t in tasks])) as pool:
            queue: deque[tuple[_Task, Future[Parsed]]] = deque()
            upcoming = iter(tasks)

            def submit_next() -> None:
                task = next(upcoming, None)
                if task is not None:
                    queue.append((task, pool.submit(task.file)))

            for _ in range(PREFETCH):
                submit_next()
            while queue:
                task, future = queue.popleft()
                submit_next()
                self._write_one(task, future, embedder, total, report, notify)

    def _write_one(self, task: _Task, future: Future[Parsed], embedder: Callable[[], Embedder], total: int,
                   report: IngestReport, notify: OnProgress) -> None:
        source, done = task.file.source, task.position

        def on_embedded(count: int, chunks: int) -> None:
            notify(Progress(source, "embedding", done, total, count, chunks, "chunk"))

        try:
            parsed = future.result()
            on_embedded(0, len(parsed.chunks))
            info = self.write(parsed, embedder(), on_embedded=on_embedded)
        except RagError as exc:
            if not isinstance(exc, DocumentError):
                raise  # config, embedding-model or provider trouble: every other file would fail the same way
            self._failed(report, notify, Failure(source, str(exc)), done + 1, total)
            return
        except Exception as exc:  # one bad file must never stop the folder
            logger.debug("unexpected failure ingesting %s", task.file.path, exc_info=True)
            reason = f"unexpected error: {type(exc).__name__}: {str(exc)[:200]}"
            self._failed(report, notify, Failure(source, reason), done + 1, total)
            return
        report.warnings.extend(parsed.warnings)
        stage = "added" if task.existing is None else "updated"
        (report.added if task.existing is None else report.updated).append(source)
        notify(Progress(source, stage, done + 1, total, document=info))

    def write(self, parsed: Parsed, embedder: Embedder,
              on_embedded: Callable[[int, int], None] | None = None) -> DocumentInfo:
        """Embed a parsed file's search texts and make its chunks the document's only chunks in the store. Their
        keyword terms are made meanwhile, in a thread (the model runs outside the GIL)."""
        import numpy as np

        texts = parsed.texts
        with ThreadPoolExecutor(1, thread_name_prefix="rag-terms") as pool:
            terms = pool.submit(lambda: [tokenize(t) for t in texts])
            parts = []
            for start in range(0, len(texts), EMBED_BATCH):
                parts.append(embedder.embed_documents(texts[start:start + EMBED_BATCH]))
                if on_embedded is not None:
                    on_embedded(min(start + EMBED_BATCH, len(texts)), len(texts))
            vectors = np.concatenate(parts) if len(parts) > 1 else parts[0]
            keyword_terms = terms.result()
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
                            terms=keyword_terms)
        return info

    @staticmethod
    def _failed(report: IngestReport, notify: OnProgress, failure: Failure, done: int, total: int) -> None:
        report.failed.append(failure)
        notify(Progress(failure.file, "failed", done, total, failure=failure))
