"""The one object built at start-up: settings, store, providers and the two flows, wired together.

The CLI and the app build it the same way. Nothing heavy happens here: the embedding model and the chat model
load on first use, so listing documents or skipping unchanged files never loads a model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from rag.cache import AnswerCache
from rag.config import LLMSettings, Settings
from rag.generation import Answerer
from rag.ingest import Ingestor
from rag.loaders import LoadOptions
from rag.providers import ChatModel, Embedder, build_chat_model, build_embedder
from rag.retrieval import Retriever
from rag.splitting import Splitter
from rag.store import Store

T = TypeVar("T")


class Lazy:
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
        from ``settings`` on first use."""
        self.settings = settings
        self.store = store or Store.open(settings.store.path, settings.store.collection)
        self.embedder: Callable[[], Embedder] = Lazy(
            (lambda: embedder) if embedder else lambda: build_embedder(settings.embeddings,
                                                                       max_retries=settings.llm.max_retries))
        self._chat = Lazy((lambda: chat) if chat else lambda: build_chat_model(settings.llm))
        self.retriever = Retriever(self.store, self.embedder, settings.retrieval)
        self.ingestor = Ingestor(self.store, self.embedder,
                                 Splitter(settings.ingest.chunk_size, settings.ingest.chunk_overlap),
                                 LoadOptions.from_settings(settings.ingest))
        self.cache = AnswerCache.in_store(settings.store.path) if settings.llm.cache else None
        self.answerer = Answerer(self.retriever, self.chat, settings.retrieval, settings.llm, self.cache)

    def chat(self) -> ChatModel:
        return self._chat()

    def use_llm(self, llm: LLMSettings) -> None:
        """Switch the chat provider or model (from the UI's settings); the new model loads on first use."""
        self.settings = self.settings.model_copy(update={"llm": llm})
        self._chat = Lazy(lambda: build_chat_model(llm))
        self.cache = AnswerCache.in_store(self.settings.store.path) if llm.cache else None
        self.answerer = Answerer(self.retriever, self.chat, self.settings.retrieval, llm, self.cache)
