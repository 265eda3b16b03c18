"""Find the chunks that answer a question: vector search, optionally restricted to chosen documents."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from rag.config import RetrievalSettings
from rag.providers.embeddings import Embedder
from rag.store import Store
from rag.types import Hit


class Retriever:
    def __init__(self, store: Store, embedder: Callable[[], Embedder], settings: RetrievalSettings) -> None:
        self._store = store
        self._embedder = embedder
        self.settings = settings

    def search(self, query: str, k: int | None = None, sources: Iterable[str] | None = None) -> list[Hit]:
        k = k or self.settings.k
        if not query.strip() or self._store.count() == 0:
            return []
        embedder = self._embedder()
        self._store.check_embedding(embedder.provider, embedder.model)
        vector = embedder.embed_query(query)
        self._store.check_embedding(embedder.provider, embedder.model, len(vector))
        return self._store.query(vector, k, sources=sources)

    def similarities(self, query: str, texts: Sequence[str]) -> list[float]:
        return self._embedder().similarities(query, list(texts)).tolist()

    def relevance(self, hits: list[Hit]) -> float:
        """The signal compared with ``retrieval.min_score``: how well the best passage matches."""
        return max((h.score for h in hits), default=0.0)
