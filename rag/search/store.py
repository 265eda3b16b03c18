"""The chunk store: one Chroma collection, the manifest of documents beside it, and the keyword index kept in
step with both. The only module that knows Chroma.

Writes are ordered so that a crash at any point leaves a store the next ingest repairs: new chunks are upserted
first (ids are deterministic), then the document's stale chunks are deleted, then the manifest is replaced
atomically. A document whose manifest entry does not match its file is simply ingested again.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import DocumentNotFoundError, EmbeddingMismatchError
from rag.types import Chunk, DocumentInfo, Hit

if TYPE_CHECKING:
    from rag.search.bm25 import KeywordIndex

logger = logging.getLogger(__name__)


class Store:
    def __init__(self, client: Any, collection: str, folder: Path, keyword: KeywordIndex | None = None) -> None:
        """``client``: a Chroma client, or a function that makes one (called once, on the first read or write of
        chunks: listing documents or skipping unchanged files never starts Chroma)."""
        self._client_or_factory = client
        self._client_lock = threading.Lock()
        self.name = collection
        self.folder = folder
        self.keyword = keyword
        self._manifest_path = folder / f"{collection}.manifest.json"
        self._lock = threading.RLock()
        self._collection: Any = None
        self._documents = self._read_manifest()
        if keyword is not None and keyword.stamp != self.stamp():
            if self._documents or len(keyword):
                self._rebuild_keyword_index()
            else:
                keyword.commit(self.stamp())  # a new, empty store

    @classmethod
    def open(cls, path: Path, collection: str, *, keyword: bool = True) -> Store:
        from rag.search.bm25 import BM25Index

        def connect() -> Any:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            path.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))

        index = BM25Index(path / f"{collection}.bm25") if keyword else None
        return cls(connect, collection, path, index)

    @property
    def _client(self) -> Any:
        """The Chroma client: one per store (Chroma fails when clients are made concurrently from threads)."""
        with self._client_lock:
            if callable(self._client_or_factory) and not hasattr(self._client_or_factory, "get_collection"):
                self._client_or_factory = self._client_or_factory()
            return self._client_or_factory

    def stamp(self) -> str:
        """Identifies the set of documents (and versions) in the store; the keyword index records it."""
        import hashlib

        text = "\n".join(f"{d.source}\t{d.doc_id}" for d in self.documents())
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def commit(self) -> None:
        """Make staged keyword-index changes durable (the end of an ingest run calls this)."""
        with self._lock:
            if self.keyword is not None:
                self.keyword.commit(self.stamp())

    def _rebuild_keyword_index(self) -> None:
        logger.warning("keyword index of '%s' does not match the store; rebuilding it from the stored chunks", self.name)
        assert self.keyword is not None
        self.keyword.clear()
        batch: list[Chunk] = []
        for chunk in self.all_chunks():
            batch.append(chunk)
            if len(batch) >= 2000:
                self.keyword.add(batch)
                batch = []
        self.keyword.add(batch)
        self.keyword.commit(self.stamp())

    # -- embedding model bookkeeping -------------------------------------------------------------------

    def embedding_signature(self) -> dict[str, Any] | None:
        col = self._get_collection()
        if col is None or not col.metadata or "embedding_model" not in col.metadata:
            return None
        return {k: col.metadata[k] for k in ("embedding_provider", "embedding_model", "embedding_dim") if k in col.metadata}

    def check_embedding(self, provider: str, model: str, dimension: int | None = None) -> None:
        """Raise EmbeddingMismatchError when the collection was built with another model or dimension."""
        stored = self.embedding_signature()
        if stored is None:
            return
        same_model = stored.get("embedding_provider") == provider and stored.get("embedding_model") == model
        same_dim = dimension is None or stored.get("embedding_dim") in (None, dimension)
        if same_model and same_dim:
            return
        was = f"{stored.get('embedding_provider')}/{stored.get('embedding_model')} ({stored.get('embedding_dim')}-d)"
        now = f"{provider}/{model}" + (f" ({dimension}-d)" if dimension else "")
        raise EmbeddingMismatchError(
            f"collection '{self.name}' was built with embeddings {was}, but the configured embeddings are {now}",
            hint=f"use another collection (e.g. RAG_STORE__COLLECTION={self.name}-2), switch the embeddings back, "
                 f"or delete {self.folder} and ingest again")

    # -- writes ----------------------------------------------------------------------------------------

    def replace(self, info: DocumentInfo, chunks: list[Chunk], vectors: np.ndarray, *, provider: str, model: str,
                terms: list[list[str]] | None = None) -> None:
        """Make ``chunks`` the document's only chunks and record ``info`` in the manifest. ``terms`` are the
        chunks' keyword-search terms when already computed (ingest does it while the embedder is busy)."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        with self._lock:
            dimension = int(vectors.shape[1]) if len(vectors) else None
            self.check_embedding(provider, model, dimension)
            col = self._get_collection(create={"embedding_provider": provider, "embedding_model": model,
                                               "embedding_dim": dimension})
            if dimension and (col.metadata or {}).get("embedding_dim") is None:
                col.modify(metadata={**(col.metadata or {}), "embedding_dim": dimension})
            batch = max(1, min(1000, self._client.get_max_batch_size()))
            for start in range(0, len(chunks), batch):
                part = chunks[start:start + batch]
                col.upsert(ids=[c.id for c in part], embeddings=vectors[start:start + batch],
                           documents=[c.text for c in part], metadatas=[c.metadata() for c in part])
            keep = {c.id for c in chunks}
            stale = [i for i in self._chunk_ids(info.source) if i not in keep]
            self._delete_ids(col, stale)
            if self.keyword is not None:
                self.keyword.delete(stale)
                self.keyword.add(chunks, terms)
            self._documents[info.source] = info
            self._write_manifest()

    def delete(self, source: str) -> DocumentInfo:
        with self._lock:
            info = self._documents.get(source)
            if info is None:
                raise DocumentNotFoundError(f"no document named '{source}' in collection '{self.name}'",
                                            hint="list documents with: python -m rag docs")
            col = self._get_collection()
            ids = self._chunk_ids(source)
            if col is not None:
                self._delete_ids(col, ids)
            if self.keyword is not None:
                self.keyword.delete(ids)
            del self._documents[source]
            self._write_manifest()
            self.commit()
            return info

    # -- reads -----------------------------------------------------------------------------------------

    def documents(self) -> list[DocumentInfo]:
        return sorted(self._documents.values(), key=lambda d: d.source.lower())

    def document(self, source: str) -> DocumentInfo | None:
        return self._documents.get(source)

    def count(self) -> int:
        col = self._get_collection()
        return col.count() if col is not None else 0

    def query(self, vector: np.ndarray, k: int, sources: Iterable[str] | None = None) -> list[Hit]:
        """Nearest chunks by cosine similarity, best first; ``sources`` limits the search to those documents."""
        col = self._get_collection()
        if col is None or k <= 0:
            return []
        where = _source_filter(sources)
        if where is not None and not where:
            return []
        result = col.query(query_embeddings=[vector], n_results=k, where=where or None,
                           include=["documents", "metadatas", "distances"])
        return [_hit(cid, text, meta, 1.0 - float(dist)) for cid, text, meta, dist in
                zip(result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0])]

    def get(self, chunk_ids: list[str], *, with_vectors: bool = False,
            query: np.ndarray | None = None) -> dict[str, Hit]:
        """Chunks by id. With ``query``, each hit's score is its cosine similarity to that vector."""
        col = self._get_collection()
        if col is None or not chunk_ids:
            return {}
        include = ["documents", "metadatas"] + (["embeddings"] if with_vectors or query is not None else [])
        result = col.get(ids=chunk_ids, include=include)
        scores = [0.0] * len(result["ids"])
        if query is not None and len(result["ids"]):
            matrix = np.asarray(result["embeddings"], dtype=np.float32)
            norms = np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(query)), 1e-9)
            scores = ((matrix @ query) / np.maximum(norms, 1e-9)).tolist()
        return {cid: _hit(cid, text, meta, score) for cid, text, meta, score in
                zip(result["ids"], result["documents"], result["metadatas"], scores)}

    def vectors(self, chunk_ids: list[str]) -> dict[str, np.ndarray]:
        col = self._get_collection()
        if col is None or not chunk_ids:
            return {}
        result = col.get(ids=chunk_ids, include=["embeddings"])
        return {cid: np.asarray(vec, dtype=np.float32) for cid, vec in zip(result["ids"], result["embeddings"])}

    def all_chunks(self, batch: int = 5000) -> Iterable[Chunk]:
        """Every stored chunk (for rebuilding the keyword index)."""
        col = self._get_collection()
        if col is None:
            return
        total = col.count()
        for offset in range(0, total, batch):
            result = col.get(include=["documents", "metadatas"], limit=batch, offset=offset)
            for cid, text, meta in zip(result["ids"], result["documents"], result["metadatas"]):
                yield Chunk(id=cid, text=text, source=meta["source"], page=int(meta["page"]), doc_id=meta["doc_id"],
                            index=int(meta.get("chunk", 0)), ocr=bool(meta.get("ocr", False)),
                            heading=str(meta.get("heading", "")), location=str(meta.get("location", "")))

    # -- internals -------------------------------------------------------------------------------------

    def _get_collection(self, create: dict[str, Any] | None = None) -> Any:
        if self._collection is not None:
            return self._collection
        from chromadb.errors import NotFoundError

        try:
            self._collection = self._client.get_collection(self.name, embedding_function=None)
        except (NotFoundError, ValueError):
            if create is None:
                return None
            metadata = {k: v for k, v in create.items() if v is not None}
            self._collection = self._client.create_collection(
                self.name, embedding_function=None, metadata=metadata, configuration={"hnsw": {"space": "cosine"}})
        return self._collection

    def _chunk_ids(self, source: str) -> list[str]:
        col = self._get_collection()
        if col is None:
            return []
        return list(col.get(where={"source": source}, include=[])["ids"])

    def _delete_ids(self, col: Any, ids: list[str]) -> None:
        for start in range(0, len(ids), 5000):
            col.delete(ids=ids[start:start + 5000])

    def _read_manifest(self) -> dict[str, DocumentInfo]:
        try:
            data = json.loads(self._manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("manifest %s unreadable (%s); documents will be ingested again", self._manifest_path, exc)
            return {}
        return {d["source"]: DocumentInfo(**d) for d in data.get("documents", [])}

    def _write_manifest(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self._manifest_path.with_suffix(".tmp")
        data = {"version": 1, "documents": [d.to_json() for d in self.documents()]}
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self._manifest_path)


def _source_filter(sources: Iterable[str] | None) -> dict[str, Any] | None:
    if sources is None:
        return None
    names = sorted(set(sources))
    if not names:
        return {}
    return {"source": names[0]} if len(names) == 1 else {"source": {"$in": names}}


def _hit(cid: str, text: str, meta: dict[str, Any], score: float) -> Hit:
    return Hit(chunk_id=cid, text=text, source=str(meta["source"]), page=int(meta["page"]),
               doc_id=str(meta["doc_id"]), score=score, ocr=bool(meta.get("ocr", False)),
               heading=str(meta.get("heading", "")), location=str(meta.get("location", "")))
