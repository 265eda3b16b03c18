"""The parse pool: file -> pages -> chunks -> search texts and keyword terms, ahead of the embedding model.

pypdf is pure Python and holds the GIL (about 70-100 ms a page for SEC filings in layout mode): in a thread it
can use one core at most, and once the embedding model is fast it is as costly as the model. So when several
files, or one long PDF, are to be ingested, they are parsed in worker processes (``forkserver``: forked from a
clean server process, never from this one with its model threads) while this process embeds what is already
parsed; the OS shares the cores between them. A long PDF is cut into page ranges, one per worker, so even one
file uses every core. One short file is parsed in a thread (starting processes would cost more than it saves).

Workers send page progress back through a pipe, and errors back as values (exception objects do not all
survive pickling), which ``ParsePool`` raises again in this process, so callers see the same errors either way.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rag import errors
from rag.errors import DocumentError, RagError
from rag.ingest.loaders import join_parts, load_file
from rag.ingest.loading import Loaded, LoadOptions, OnPage
from rag.ingest.pdf import load_pdf
from rag.ingest.splitting import Splitter, search_text
from rag.text import tokenize
from rag.types import Chunk, Page

logger = logging.getLogger(__name__)

OnFilePage = Callable[[str, int, int], None]  # (source, pages done, pages in the file)
SPLIT_PAGES = 40  # a PDF of at least twice this many pages is parsed in parts, one per worker process


@dataclass(frozen=True, slots=True)
class Planned:
    """A file to ingest, as planning found it (read once: hashed, and its PDF pages counted)."""

    path: Path
    source: str  # the name shown to users and recorded in the store
    doc_id: str  # sha256 of the bytes
    pages: int = 0  # pages of a PDF (0: another file type, or unreadable: its parse says why)


@dataclass(frozen=True, slots=True)
class Parsed:
    """A file ready to embed: its pages, chunks, and what is embedded and indexed of each chunk."""

    source: str
    doc_id: str
    pages: list[Page]
    chunks: list[Chunk]
    texts: list[str]  # search text of each chunk (what is embedded): rag.ingest.splitting.search_text
    terms: list[list[str]]  # keyword-index terms of each search text
    path: str = ""
    warnings: list[str] = field(default_factory=list)


def parse(data: bytes, source: str, doc_id: str, options: LoadOptions, splitter: Splitter, path: str = "",
          on_page: OnPage | None = None) -> Parsed:
    """Parse one file's bytes in this thread."""
    return finish(load_file(data, source, options, on_page), source, doc_id, splitter, path)


def finish(loaded: Loaded, source: str, doc_id: str, splitter: Splitter, path: str = "") -> Parsed:
    """Chunks of a file's pages, with their search texts and keyword terms."""
    chunks = splitter.split(loaded.pages, doc_id)
    if not chunks:
        raise DocumentError("no text found in the file", hint="check that the file is not empty")
    texts = [search_text(c) for c in chunks]
    return Parsed(source, doc_id, loaded.pages, chunks, texts, [tokenize(t) for t in texts], path, loaded.warnings)


@dataclass(frozen=True, slots=True)
class _Raised:
    """An error from a worker, as plain data: the ``rag.errors`` class name (or ``""``), message and hint."""

    kind: str
    message: str
    hint: str = ""

    def error(self) -> Exception:
        cls = getattr(errors, self.kind, None)
        if isinstance(cls, type) and issubclass(cls, RagError):
            return cls(self.message, hint=self.hint)
        return RuntimeError(self.message)


_worker: dict[str, Any] = {}  # per worker process: options, splitter, progress queue


def _init_worker(options: LoadOptions, splitter: Splitter, pages: Any) -> None:
    _worker.update(options=options, splitter=splitter, pages=pages)


def _parse_in_worker(path: str, source: str, doc_id: str) -> Parsed | _Raised:
    return _in_worker(lambda on_page: parse(Path(path).read_bytes(), source, doc_id, _worker["options"],
                                            _worker["splitter"], path, on_page), source)


def _load_part_in_worker(path: str, source: str, first: int, last: int) -> Loaded | _Raised:
    options = replace(_worker["options"], first_page=first, last_page=last)
    return _in_worker(lambda on_page: load_pdf(Path(path).read_bytes(), source, options, on_page), source)


def _in_worker(work: Callable[[OnPage], Any], source: str) -> Any:
    def on_page(page: int, total: int) -> None:
        _worker["pages"].send((source[:1000], page, total))

    try:
        return work(on_page)
    except RagError as exc:
        return _Raised(type(exc).__name__, exc.message, exc.hint)
    except OSError as exc:
        return _Raised("DocumentError", f"cannot read the file ({exc.strerror or exc})")
    except Exception as exc:  # noqa: BLE001 - reported for this file only, by the caller
        return _Raised("", f"{type(exc).__name__}: {str(exc)[:200]}")


def processes_for(files: list[Planned]) -> int:
    """Worker processes worth starting to parse these files: none for one short file (a thread is enough),
    else one per core, at most 2 (each holds a file's pages in memory)."""
    workers = min(2, os.cpu_count() or 1)
    if workers < 2 or not files:
        return 0
    if len(files) > 1:
        return workers
    return workers if files[0].pages >= 2 * SPLIT_PAGES else 0


class ParsePool:
    """Parses files in the background; ``submit`` returns a future of ``Parsed`` (or its error).

    ``processes`` > 0 parses in that many worker processes, 0 in one thread of this process."""

    def __init__(self, options: LoadOptions, splitter: Splitter, on_page: OnFilePage, *, processes: int = 0) -> None:
        self._options = options
        self._splitter = splitter
        self._on_page = on_page
        self._processes = processes
        self._pages: Any = None  # (reading end, writing end) of the page-progress pipe, with processes
        self._pages_in: Any = None
        self._drain: threading.Thread | None = None
        self._restart_lock = threading.Lock()
        self._executor = self._start()

    def _start(self) -> Executor:
        if not self._processes:
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-parse")
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["rag.ingest.workers"])
        if self._pages is None:
            # A plain pipe, no lock: page messages are far below PIPE_BUF, so each write is atomic even with
            # several writers, and a worker killed mid-write cannot leave a lock held (a Queue's would be).
            self._pages, self._pages_in = context.Pipe(duplex=False)
            self._drain = threading.Thread(target=self._relay_pages, name="rag-parse-progress", daemon=True)
            self._drain.start()
        return ProcessPoolExecutor(max_workers=self._processes, mp_context=context, initializer=_init_worker,
                                   initargs=(self._options, self._splitter, self._pages_in))

    def _relay_pages(self) -> None:
        done: dict[str, int] = {}  # pages read per file: the parts of a file report their pages at the same time
        while (item := self._pages.recv()) is not None:
            source, _, pages = item
            done[source] = done.get(source, 0) + 1
            try:
                self._on_page(source, min(done[source], pages), pages)
            except Exception:  # a progress display must not stop the relay: workers would block on a full pipe
                logger.debug("page progress callback failed", exc_info=True)

    def submit(self, file: Planned) -> Future[Parsed]:
        path, source, doc_id = file.path, file.source, file.doc_id
        if not self._processes:
            return self._run(_parse_in_thread, path, source, doc_id, self._options, self._splitter, self._on_page)
        parts = self._parts(file.pages)
        if len(parts) == 1:
            return self._run(_parse_in_worker, str(path), source, doc_id)
        return self._join([self._run(_load_part_in_worker, str(path), source, first, last) for first, last in parts],
                          path, source, doc_id)

    def _parts(self, pages: int) -> list[tuple[int, int]]:
        """Page ranges of a long PDF, one per worker, so its parse is spread over the cores; else one range."""
        count = min(self._processes, pages // SPLIT_PAGES)
        if count < 2:
            return [(1, 0)]
        bounds = [round(pages * i / count) for i in range(count + 1)]
        return [(bounds[i] + 1, bounds[i + 1]) for i in range(count)]

    def _join(self, parts: list[Future[Loaded]], path: Path, source: str, doc_id: str) -> Future[Parsed]:
        result: Future[Parsed] = Future()
        left = [len(parts)]
        lock = threading.Lock()

        def part_done(_: Future[Loaded]) -> None:
            with lock:
                left[0] -= 1
                if left[0]:
                    return
            try:
                loaded = join_parts([part.result() for part in parts], self._options)
                result.set_result(finish(loaded, source, doc_id, self._splitter, str(path)))
            except Exception as exc:  # noqa: BLE001 - handed to the caller as it is
                result.set_exception(exc)

        for part in parts:
            part.add_done_callback(part_done)
        return result

    def _run(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        result: Future[Any] = Future()
        self._attempt(result, fn, args, retried=False)
        return result

    def _attempt(self, result: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...], *, retried: bool) -> None:
        inner = self._executor.submit(fn, *args)
        inner.add_done_callback(lambda f: self._settle(f, result, fn, args, retried))

    def _settle(self, inner: Future[Any], result: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...],
                retried: bool) -> None:
        try:
            value = inner.result()
        except BrokenProcessPool:
            # A worker died (a crash in a native library, or the OOM killer); every job in flight sees this.
            # Each gets one more try in a fresh pool; a file that breaks that one too is the cause.
            if retried:
                result.set_exception(DocumentError("the PDF parser crashed on this file",
                                                   hint="the file may be damaged; try re-saving it as PDF"))
                return
            self._restart()
            self._attempt(result, fn, args, retried=True)
            return
        except Exception as exc:  # noqa: BLE001 - handed to the caller as it is
            result.set_exception(exc)
            return
        if isinstance(value, _Raised):
            result.set_exception(value.error())
        else:
            result.set_result(value)

    def _restart(self) -> None:
        with self._restart_lock:
            if getattr(self._executor, "_broken", False):
                self._executor.shutdown(wait=False, cancel_futures=False)
                self._executor = self._start()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._pages is not None:
            self._pages_in.send(None)
            if self._drain is not None:
                self._drain.join(timeout=5)
            self._pages.close()
            self._pages_in.close()

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse_in_thread(path: Path, source: str, doc_id: str, options: LoadOptions, splitter: Splitter,
                    on_page: OnFilePage) -> Parsed:
    return parse(path.read_bytes(), source, doc_id, options, splitter, str(path),
                 lambda page, pages: on_page(source, page, pages))
