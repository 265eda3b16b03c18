"""``Rag``: the library's public entry point. One object per process holds the settings, the store and the
models, and offers the two flows (a file to the store; a question to a cited answer) and what surrounds them.

    rag = Rag.from_config()                      # config.yaml + RAG_* variables; nothing heavy happens yet
    rag.ingest(["papers/"], on_progress=print)   # IngestReport: added, updated, skipped, failed (with reasons)
    rag.ask("What was the revenue in 2024?")     # Answer: claims with their citations, sources, refused, usage
    for event in rag.stream(question): ...       # Retrieved, then Token..., then Done(answer)

The CLI and the app use only this class and the values in ``rag.types``. Models load on first use, so listing
documents or skipping unchanged files never loads a model.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from rag.answer.previews import Preview, Previews
from rag.config import LLMSettings, Settings, load_config
from rag.ingest.loading import LoadOptions
from rag.ingest.pipeline import Ingestor, OnProgress
from rag.ingest.splitting import Splitter, keyword_terms
from rag.ingest.uploads import Staged, UploadFolder, safe_name
from rag.search.retrieval import Retriever
from rag.search.store import Store
from rag.types import Answer, Batch, Check, DocumentInfo, Event, Failure, Hit, IngestReport, Progress

if TYPE_CHECKING:
    from rag.answer.answerer import Answerer
    from rag.ingest.watch import FolderWatcher
    from rag.providers.chat import ChatModel
    from rag.providers.embeddings import Embedder
    from rag.providers.transcription import Transcriber

# The answer side (langchain-core's chat models, the providers) is imported when first needed: re-ingesting an
# unchanged folder reads the manifest and exits without loading it, or Chroma, or a model.

T = TypeVar("T")


class Lazy(Generic[T]):
    """Build a value on first call, once, even from several threads. ``built`` tells whether it has been."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        return self._value is not None

    def __call__(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
        return self._value


class Rag:
    def __init__(self, settings: Settings, *, store: Store | None = None, embedder: Embedder | None = None,
                 chat: ChatModel | None = None) -> None:
        """Collaborators may be passed in (tests share one loaded embedding model); otherwise they are built
        from ``settings``, the store now (one client per process) and the models on first use."""
        self.settings = settings
        self.store = store or Store.open(settings.store.path, settings.store.collection, url=settings.store.url,
                                         analyzer=keyword_terms, sync_seconds=settings.store.sync_seconds)
        self.embedder: Callable[[], Embedder] = Lazy((lambda: embedder) if embedder else self._build_embedder)
        self._chat: Callable[[], ChatModel] = Lazy((lambda: chat) if chat else lambda: _build_chat(settings.llm))
        self.retriever = Retriever(self.store, self.embedder, settings.retrieval)
        self.ingestor = Ingestor(self.store, self.embedder,
                                 Splitter(settings.ingest.chunk_size, settings.ingest.chunk_overlap),
                                 replace(LoadOptions.from_settings(settings.ingest),
                                         transcription=settings.transcription))
        self.uploads = UploadFolder(settings.app.upload_dir, settings.app.max_upload_mb)
        self.previews = Previews(self.uploads.previews)
        self._answerer: Lazy[Answerer] = Lazy(lambda: self._build_answerer(self.settings.llm))
        self._transcriber: Callable[[], Transcriber] = Lazy(lambda: _build_transcriber(settings))

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Rag:
        """A Rag for ``config.yaml`` at ``path`` (default: the project's) with RAG_* overrides."""
        return cls(load_config(path, environ))

    # -- documents ---------------------------------------------------------------------------------------

    def ingest(self, paths: Iterable[str | Path], *, on_progress: OnProgress | None = None,
               names: dict[Path, str] | None = None) -> IngestReport:
        """Add or update files and folders (recursively); unchanged files are skipped before any work.
        ``names`` maps a path to the document name to record, when it differs from the file's name."""
        return self.ingestor.ingest(paths, on_progress=on_progress, names=names)

    def upload(self, files: Sequence[tuple[str | Path, str]], *, on_progress: OnProgress | None = None) -> IngestReport:
        """Ingest uploaded files, given as (temporary path, the user's file name). Each is copied into
        ``app.upload_dir`` under ``safe_name(name)`` (so previews and "open page" links outlive the temporary
        file) and ingested from there. Files refused up front (unsupported type, two of one name, over
        ``app.max_upload_mb``) and files that fail are in ``failed``, with their copies removed and any previous
        file of the same name put back; ``on_progress`` hears of refusals first, then of the ingest."""
        notify = on_progress or (lambda _p: None)
        report = IngestReport()
        counts = Counter(safe_name(name) for _, name in files)
        staged: dict[Path, tuple[str, Staged]] = {}
        for temp, raw_name in files:
            name = safe_name(raw_name)
            failure = self.uploads.check(Path(temp), name, duplicate=counts[name] > 1)
            if failure is None:
                try:
                    stage = self.uploads.stage(Path(temp), name)
                    staged[stage.path.resolve()] = (name, stage)
                    continue
                except OSError as exc:
                    failure = Failure(name, f"cannot store the upload ({exc.strerror or exc})", "unreadable")
            report.failed.append(failure)
            notify(Progress(name, "failed", len(report.failed), len(files), failure=failure))
        if not staged:
            return report
        try:
            ingested = self.ingest(list(staged), on_progress=on_progress,
                                   names={path: name for path, (name, _) in staged.items()})
        except BaseException:
            for _, stage in staged.values():
                self.uploads.rollback(stage)
            raise
        failed = {f.file for f in ingested.failed}
        for name, stage in staged.values():
            (self.uploads.rollback if name in failed else self.uploads.commit)(stage)
        report.added, report.updated, report.skipped = ingested.added, ingested.updated, ingested.skipped
        report.failed.extend(ingested.failed)
        report.warnings.extend(ingested.warnings)
        return report

    def documents(self) -> list[DocumentInfo]:
        return self.store.documents()

    def document(self, source: str) -> DocumentInfo | None:
        return self.store.document(source)

    def delete(self, source: str) -> DocumentInfo:
        """Remove a document: its chunks (vectors and keywords), its page previews and, when it was uploaded
        through the app, the uploaded copy. Files elsewhere are never touched."""
        info = self.store.delete(source)
        self.previews.forget(info.doc_id)
        if info.path:
            self.uploads.remove(info.path)
        return info

    def watch(self, folder: str | Path, *, progress: Callable[[], OnProgress] | None = None,
              on_batch: Callable[[Batch], None] | None = None, **options: Any) -> FolderWatcher:
        """A watcher that keeps the store in step with ``folder`` (``run()`` it; Ctrl-C stops)."""
        from rag.ingest.watch import FolderWatcher

        return FolderWatcher(self, folder, ignored=[self.store.folder], progress=progress, on_batch=on_batch,
                             **options)

    def preview(self, pdf: Path, page: int, passage: str = "", *, doc_id: str = "") -> Preview:
        """A PNG of ``page`` of ``pdf`` with ``passage`` marked where it can be found (cached)."""
        return self.previews.render(pdf, page, passage, doc_id=doc_id)

    # -- questions ---------------------------------------------------------------------------------------

    def search(self, query: str, *, k: int | None = None, sources: Iterable[str] | None = None,
               mode: str | None = None) -> list[Hit]:
        """The passages retrieval finds, best first; ``sources`` limits the search to those documents. A
        question with a relevant passage in another language is also searched translated (``retrieval.translate``,
        which loads the chat model)."""
        from rag.answer import translation

        return translation.search(self.retriever, self._chat, query, k=k, sources=sources, mode=mode).hits

    def stream(self, question: str, **options: Any) -> Iterator[Event]:
        """Answer events: ``Retrieved`` (the numbered passages), ``Token`` pieces as the model writes, then
        ``Done`` with the checked ``Answer``. Options: ``history`` (earlier turns), ``k``, ``sources``,
        ``params`` (temperature, top_p, max_tokens) and ``on_retry``."""
        return self.answerer.stream(question, **options)

    def ask(self, question: str, **options: Any) -> Answer:
        """The checked answer (see ``stream`` for the options)."""
        return self.answerer.ask(question, **options)

    def transcribe(self, audio: str | Path, *, on_retry: Any = None) -> str:
        """The text spoken in the audio file ``audio`` (a recorded question), by the configured transcription
        provider; ConfigError with the fix when none is configured."""
        path = Path(audio)
        return self._transcriber().transcribe(path.read_bytes(), path.name, on_retry=on_retry).text

    # -- models ------------------------------------------------------------------------------------------

    @staticmethod
    def providers() -> dict[str, list[str]]:
        """The provider names config accepts: {"chat": [...], "embeddings": [...]}."""
        from rag.providers import CHAT, EMBEDDINGS

        return {"chat": CHAT.names(), "embeddings": EMBEDDINGS.names()}

    def chat(self) -> ChatModel:
        """The chat model in use (built on first call)."""
        return self._chat()

    def use_llm(self, llm: LLMSettings) -> None:
        """Switch the chat provider or model (from the UI's settings); the new model loads on first use."""
        self.settings = self.settings.model_copy(update={"llm": llm})
        self._chat = Lazy(lambda: _build_chat(llm))
        self._answerer = Lazy(lambda: self._build_answerer(llm))

    @property
    def answerer(self) -> Answerer:
        return self._answerer()

    @property
    def cache(self) -> Any:
        """The answer cache (``llm.cache``), or None when it is off."""
        return self.answerer.cache

    @staticmethod
    def doctor(config: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None,
               **options: Any) -> Iterator[Check]:
        """Check a set-up (config, chat model, embeddings, collection, disk) one by one, without building a Rag:
        a broken config or store is one of the things it reports."""
        from rag.doctor import run_checks

        return run_checks(config, environ, **options)

    def _build_answerer(self, llm: LLMSettings) -> Answerer:
        from rag.answer.answerer import Answerer
        from rag.answer.cache import AnswerCache

        cache = AnswerCache.in_store(self.settings.store.path) if llm.cache else None
        return Answerer(self.retriever, self.chat, self.settings.retrieval, llm, cache, documents=self.store.documents)

    def _build_embedder(self) -> Embedder:
        from rag.providers.embeddings import build_embedder

        return build_embedder(self.settings.embeddings, max_retries=self.settings.llm.max_retries)


def _build_transcriber(settings: Settings) -> Transcriber:
    from rag.providers.transcription import build_transcriber

    return build_transcriber(settings.transcription)


def _build_chat(llm: LLMSettings) -> ChatModel:
    from rag.providers.chat import build_chat_model

    return build_chat_model(llm)
