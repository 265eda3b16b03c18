"""Parsing ahead of the embedding model: file bytes -> pages -> chunks -> keyword terms, off the embedding thread.

pypdf is pure Python and holds the GIL (about 100 ms a page for SEC filings in layout mode): in a thread it
can use one core at most, and once the embedding model is fast it is as costly as the model. So when several
files are to be ingested they are parsed in worker processes (``forkserver``: forked from a clean server
process, never from this one with its model threads), two files at a time, while this process embeds the ones
already parsed; the OS shares the cores between them. A single file is parsed in a thread (starting processes
would cost more than it saves).

Workers send page progress back through a pipe, and errors back as values (exception objects do not all
survive pickling), which ``ParsePool`` raises again in this process, so callers see the same errors either way.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag import errors
from rag.errors import DocumentError, RagError
from rag.lexical import tokenize
from rag.loaders import LoadOptions, parse_file
from rag.splitting import Splitter, search_text
from rag.types import Chunk, Page

logger = logging.getLogger(__name__)

OnPage = Callable[[str, int, int], None]  # (source, page, pages)


@dataclass(frozen=True, slots=True)
class Parsed:
    source: str
    doc_id: str
    pages: list[Page]
    chunks: list[Chunk]
    path: str = ""
    terms: list[list[str]] | None = None  # keyword-search tokens of each chunk
    warnings: list[str] = field(default_factory=list)


def parse(data: bytes, source: str, doc_id: str, options: LoadOptions, splitter: Splitter, path: str = "",
          on_page: Callable[[int, int], None] | None = None) -> Parsed:
    loaded = parse_file(data, source, options, on_page)
    chunks = splitter.split(loaded.pages, doc_id)
    if not chunks:
        raise DocumentError("no text found in the file", hint="check that the file is not empty")
    return Parsed(source, doc_id, loaded.pages, chunks, path, [tokenize(search_text(c)) for c in chunks],
                  loaded.warnings)


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
    def on_page(page: int, total: int) -> None:
        _worker["pages"].send((source[:1000], page, total))

    try:
        return parse(Path(path).read_bytes(), source, doc_id, _worker["options"], _worker["splitter"], path, on_page)
    except RagError as exc:
        return _Raised(type(exc).__name__, exc.message, exc.hint)
    except OSError as exc:
        return _Raised("DocumentError", f"cannot read the file ({exc.strerror or exc})")
    except Exception as exc:  # noqa: BLE001 - reported for this file only, by the caller
        return _Raised("", f"{type(exc).__name__}: {str(exc)[:200]}")


class ParsePool:
    """Parses files in the background; ``submit`` returns a future of ``Parsed`` (or its error).

    ``processes`` > 0 parses in that many worker processes, 0 in one thread of this process."""

    def __init__(self, options: LoadOptions, splitter: Splitter, on_page: OnPage, *, processes: int = 0) -> None:
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
        context.set_forkserver_preload(["rag.parsing"])
        if self._pages is None:
            # A plain pipe, no lock: page messages are far below PIPE_BUF, so each write is atomic even with
            # several writers, and a worker killed mid-write cannot leave a lock held (a Queue's would be).
            self._pages, self._pages_in = context.Pipe(duplex=False)
            self._drain = threading.Thread(target=self._relay_pages, name="rag-parse-progress", daemon=True)
            self._drain.start()
        return ProcessPoolExecutor(max_workers=self._processes, mp_context=context, initializer=_init_worker,
                                   initargs=(self._options, self._splitter, self._pages_in))

    def _relay_pages(self) -> None:
        while (item := self._pages.recv()) is not None:
            try:
                self._on_page(*item)
            except Exception:  # a progress display must not stop the relay: workers would block on a full pipe
                logger.debug("page progress callback failed", exc_info=True)

    def submit(self, path: Path, source: str, doc_id: str) -> Future[Parsed]:
        result: Future[Parsed] = Future()
        self._submit(result, path, source, doc_id, retried=False)
        return result

    def _submit(self, result: Future[Parsed], path: Path, source: str, doc_id: str, *, retried: bool) -> None:
        if self._processes:
            inner = self._executor.submit(_parse_in_worker, str(path), source, doc_id)
        else:
            inner = self._executor.submit(parse_in_thread, path, source, doc_id, self._options, self._splitter,
                                          self._on_page)
        inner.add_done_callback(lambda f: self._settle(f, result, path, source, doc_id, retried))

    def _settle(self, inner: Future[Any], result: Future[Parsed], path: Path, source: str, doc_id: str,
                retried: bool) -> None:
        try:
            value = inner.result()
        except BrokenProcessPool:
            # A worker died (a crash in a native library, or the OOM killer); every file in flight sees this.
            # Each gets one more try in a fresh pool; a file that breaks that one too is the cause.
            if retried:
                result.set_exception(DocumentError("the PDF parser crashed on this file",
                                                   hint="the file may be damaged; try re-saving it as PDF"))
                return
            self._restart()
            self._submit(result, path, source, doc_id, retried=True)
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


def parse_in_thread(path: Path, source: str, doc_id: str, options: LoadOptions, splitter: Splitter,
                    on_page: OnPage) -> Parsed:
    return parse(path.read_bytes(), source, doc_id, options, splitter, str(path),
                 lambda page, pages: on_page(source, page, pages))
