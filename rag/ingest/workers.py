"""The parse pool: file -> pages -> chunks -> search texts, ahead of the embedding model.

pypdf is pure Python and holds the GIL (about 70-100 ms a page for SEC filings in layout mode): in a thread it
can use one core at most, and once the embedding model is fast it is as costly as the model. So when several
files, or one long PDF, are to be ingested, they are parsed in worker processes (``forkserver``: forked from a
clean server process, never from this one with its model threads) while this process embeds what is already
parsed; the OS shares the cores between them. A long PDF is cut into page ranges, one per worker, so even one
file uses every core. One short file is parsed in a thread (starting processes would cost more than it saves),
unless a per-file time or memory limit is set (``ingest.file_timeout``, ``ingest.file_memory_mb``, on by default):
only a process can be held to those, so then every file is parsed in a worker process of its own, which a
hostile file (a decompression bomb, a 20,000-page PDF, a zip bomb) can exhaust without harming the others.

Keyword terms are not made here but by the process that embeds (``Ingestor.write``): Korean terms need Kiwi,
whose model takes seconds to load, and worker processes are new for every ingest call (an upload, a watched
folder's batch), where the embedding process loads it once.

Workers send page progress back through a pipe, and errors back as values (exception objects do not all
survive pickling), which ``ParsePool`` raises again in this process, so callers see the same errors either way.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rag import errors
from rag.errors import DocumentError, RagError
from rag.ingest.loaders import join_parts, load_file
from rag.ingest.loading import Loaded, LoadOptions, OnPage
from rag.ingest.pdf import load_pdf
from rag.ingest.splitting import Splitter, search_text
from rag.types import Chunk, Page

logger = logging.getLogger(__name__)

OnFilePage = Callable[[str, int, int], None]  # (source, pages done, pages in the file)
STARTUP = 300  # seconds a worker process may take to start (not counted in ingest.file_timeout)
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
    texts: list[str]  # search text of each chunk (what is embedded and indexed): rag.ingest.splitting.search_text
    path: str = ""
    warnings: list[str] = field(default_factory=list)


def parse(data: bytes, source: str, doc_id: str, options: LoadOptions, splitter: Splitter, path: str = "",
          on_page: OnPage | None = None) -> Parsed:
    """Parse one file's bytes in this thread."""
    return finish(load_file(data, source, options, on_page), source, doc_id, splitter, path, options.max_chunks)


def finish(loaded: Loaded, source: str, doc_id: str, splitter: Splitter, path: str = "", max_chunks: int = 0) -> Parsed:
    """Chunks of a file's pages, with their search texts (at most ``max_chunks``, if set)."""
    chunks = splitter.split(loaded.pages, doc_id)
    if not chunks:
        raise DocumentError("no text found in the file", hint="check that the file is not empty")
    if max_chunks and len(chunks) > max_chunks:
        raise DocumentError(f"the file gives {len(chunks):,} passages; the limit is {max_chunks:,} per file",
                            hint="split the file, or raise ingest.file_max_chunks")
    texts = [search_text(c) for c in chunks]
    return Parsed(source, doc_id, loaded.pages, chunks, texts, path, loaded.warnings)


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


@dataclass(frozen=True, slots=True)
class _Died:
    """A worker process that ended without sending a value."""

    exitcode: int | None

    def how(self) -> str:
        if self.exitcode is not None and self.exitcode < 0:
            import signal

            try:
                return f"killed by {signal.Signals(-self.exitcode).name}"
            except ValueError:
                return f"killed by signal {-self.exitcode}"
        return f"exit code {self.exitcode}"


_worker: dict[str, Any] = {}  # in a worker process: options, splitter, progress pipe


def _serve(jobs: Any, pages: Any, options: LoadOptions, splitter: Splitter, environ: dict[str, str]) -> None:
    """A worker process: jobs (a file or a part of one) one at a time, each value sent back with whether this
    process takes another (not once it has used half its memory limit: Python keeps what it allocated).
    ``environ`` is the pool's environment now (the forkserver's is that of when it started: PATH for Tesseract)."""
    import resource

    os.environ.clear()
    os.environ.update(environ)

    limit = options.memory_mb * 1024 * 1024
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # inherited by Tesseract, which OCR starts
    _worker.update(options=options, splitter=splitter, pages=pages)
    jobs.send("ready")  # started: the time limit of a job does not include starting a process on a busy machine
    while (job := jobs.recv()) is not None:
        fn, args = job
        value = fn(*args)
        fresh = not limit or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 < limit / 2
        try:
            jobs.send((value, fresh))
        except MemoryError:  # pickling a huge result: the file is too large for the limit all the same
            jobs.send((_too_big(options), False))
        if not fresh:
            break
    jobs.close()


class _Worker:
    """A worker process and the pipe to it, owned by one thread of ``ParsePool``."""

    def __init__(self, context: Any, pages: Any, options: LoadOptions, splitter: Splitter) -> None:
        self.jobs, theirs = context.Pipe(duplex=True)
        self.process = context.Process(target=_serve, args=(theirs, pages, options, splitter, dict(os.environ)),
                                       name="rag-parse-worker", daemon=True)
        self.process.start()
        theirs.close()
        self.usable = True
        self.started = False

    def _start(self) -> bool:
        """Wait for the process to be ready (at most STARTUP seconds); False when it died or hung."""
        if not self.started:
            self.started = self.jobs.poll(STARTUP) and self.jobs.recv() == "ready"
        return self.started

    def run(self, fn: Callable[..., Any], args: tuple[Any, ...], timeout: float | None) -> Any:
        """The job's value (or ``_Raised``); ``_Died`` when the process died; None past ``timeout`` (killed)."""
        try:
            if not self._start():
                self.stop()
                return _Died(self.process.exitcode)
            self.jobs.send((fn, args))
            if not self.jobs.poll(timeout):
                self.stop()
                return None
            value, self.usable = self.jobs.recv()
            return value
        except (EOFError, OSError):
            self.stop()
            logger.debug("parse worker %s died (exit code %s)", self.process.pid, self.process.exitcode)
            return _Died(self.process.exitcode)

    def stop(self) -> None:
        self.usable = False
        if self.process.is_alive():
            try:
                self.jobs.send(None)
            except OSError:
                pass
            self.process.join(timeout=0.2)
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.jobs.close()


def _too_big(options: LoadOptions) -> _Raised:
    return _Raised("DocumentError", f"parsing the file needs more than {options.memory_mb} MB of memory",
                   "the file may be a decompression bomb; if it is genuine, raise ingest.file_memory_mb")


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
    except MemoryError:
        return _too_big(_worker["options"])
    except OSError as exc:
        return _Raised("DocumentError", f"cannot read the file ({exc.strerror or exc})")
    except Exception as exc:  # noqa: BLE001 - reported for this file only, by the caller
        return _Raised("", f"{type(exc).__name__}: {str(exc)[:200]}")


def processes_for(files: list[Planned]) -> int:
    """Worker processes worth starting to parse these files: none for one short file (a thread is enough),
    else one per core, at most 2 (each holds a file's pages in memory). With per-file limits
    (``LoadOptions.limited``) ``ParsePool`` uses at least one process all the same."""
    workers = min(2, os.cpu_count() or 1)
    if workers < 2 or not files:
        return 0
    if len(files) > 1:
        return workers
    return workers if files[0].pages >= 2 * SPLIT_PAGES else 0


class ParsePool:
    """Parses files in the background; ``submit`` returns a future of ``Parsed`` (or its error).

    ``processes`` > 0 parses in that many worker processes at a time, 0 in one thread of this process (but at
    least one process when ``options`` set a time or memory limit: only a process can be held to them).

    Each thread of the pool owns one worker process and hands it one job at a time (a file, or a page range of
    a long PDF), watching it:

    - past ``options.timeout`` seconds the process is killed (and replaced) and the file fails, saying so;
    - ``options.memory_mb`` caps its address space (``RLIMIT_AS``): an allocation past it raises MemoryError,
      reported as the file needing more memory (a decompression bomb, a zip bomb); a worker that has used half
      of it is replaced after its job;
    - a process that dies (a crash in a native library, the OOM killer) is replaced and the job tried once
      more; dying twice fails the file. The other threads' files never notice.
    """

    def __init__(self, options: LoadOptions, splitter: Splitter, on_page: OnFilePage, *, processes: int = 0) -> None:
        self._options = options
        self._splitter = splitter
        self._on_page = on_page
        self._processes = max(processes, 1) if options.limited else processes
        self._pages: Any = None  # (reading end, writing end) of the page-progress pipe, with processes
        self._pages_in: Any = None
        self._drain: threading.Thread | None = None
        self._workers: list[_Worker] = []  # one per thread of the executor, replaced when it dies or is killed
        self._mine = threading.local()  # the executor thread's worker
        self._closed = False
        self._lock = threading.Lock()
        self._context: Any = None
        if self._processes:
            self._context = multiprocessing.get_context("forkserver")
            self._context.set_forkserver_preload(["rag.ingest.workers", "pypdf"])
            # A plain pipe, no lock: page messages are far below PIPE_BUF, so each write is atomic even with
            # several writers, and a worker killed mid-write cannot leave a lock held (a Queue's would be).
            self._pages, self._pages_in = self._context.Pipe(duplex=False)
            self._drain = threading.Thread(target=self._relay_pages, name="rag-parse-progress", daemon=True)
            self._drain.start()
        # Threads that run (thread mode) or watch (process mode) one job each.
        self._executor = ThreadPoolExecutor(max_workers=self._processes or 1, thread_name_prefix="rag-parse")

    def _relay_pages(self) -> None:
        done: dict[str, int] = {}  # pages read per file: the parts of a file report their pages at the same time
        while (item := self._pages.recv()) is not None:
            source, _, pages = item
            done[source] = done.get(source, 0) + 1
            try:
                self._on_page(source, min(done[source], pages), pages)
            except Exception:  # a progress display must not stop the relay: workers would block on a full pipe
                logger.debug("page progress callback failed", exc_info=True)

    def pids(self) -> list[int]:
        """Process ids of the worker processes."""
        with self._lock:
            return [worker.process.pid for worker in self._workers]

    def submit(self, file: Planned) -> Future[Parsed]:
        path, source, doc_id = file.path, file.source, file.doc_id
        if not self._processes:
            return self._executor.submit(_parse_in_thread, path, source, doc_id, self._options, self._splitter,
                                         self._on_page)
        parts = self._parts(file.pages)
        if len(parts) == 1:
            return self._executor.submit(self._supervise, _parse_in_worker, (str(path), source, doc_id))
        return self._join([self._executor.submit(self._supervise, _load_part_in_worker, (str(path), source, first, last))
                           for first, last in parts], path, source, doc_id)

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
                result.set_result(finish(loaded, source, doc_id, self._splitter, str(path), self._options.max_chunks))
            except Exception as exc:  # noqa: BLE001 - handed to the caller as it is
                result.set_exception(exc)

        for part in parts:
            part.add_done_callback(part_done)
        return result

    def _supervise(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Run one job in this thread's worker process and return its value, or raise its error."""
        value = self._attempt(fn, args)
        if isinstance(value, _Died):
            # The process died (a crash in a native library, or the OOM killer): once more, in a fresh one.
            value = self._attempt(fn, args)
        if isinstance(value, _Died):
            memory = self._options.memory_mb
            raise DocumentError(f"the parser crashed on this file ({value.how()})",
                                hint=f"the file may be damaged, or need more than {memory} MB of memory "
                                     "(ingest.file_memory_mb); try re-saving it (e.g. print it to PDF)" if memory else
                                     "the file may be damaged; try re-saving it (e.g. print it to PDF)")
        if value is None:
            raise DocumentError(f"parsing took longer than {self._options.timeout:g} s, so it was stopped",
                                hint="if the file is genuine (a long scan?), raise ingest.file_timeout")
        if isinstance(value, _Raised):
            raise value.error()
        return value

    def _attempt(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        worker: _Worker | None = getattr(self._mine, "worker", None)
        if worker is None or not worker.usable:
            if worker is not None:
                worker.stop()
            with self._lock:
                if self._closed:
                    raise RuntimeError("the parse pool is closed")
                worker = _Worker(self._context, self._pages_in, self._options, self._splitter)
                self._workers.append(worker)
            self._mine.worker = worker
        try:
            return worker.run(fn, args, self._options.timeout or None)
        finally:
            if not worker.usable:
                worker.stop()
                with self._lock:
                    self._workers.remove(worker)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._closed = True
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()
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
