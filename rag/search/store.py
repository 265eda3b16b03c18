"""The chunk store: one Chroma collection, the catalog of its documents, and the keyword index kept in step with
both. The only module that knows Chroma.

Two ways to run it, chosen by ``store.url`` (``Store.open``):

- **embedded** (the default): a Chroma ``PersistentClient`` in ``store.path``, the catalog as a JSON manifest
  beside it (``rag.search.catalog.FileCatalog``) and the BM25 index saved beside it with the manifest's stamp.
  Writes are ordered so that a crash at any point leaves a store the next ingest repairs: the document's name is
  written to a journal (``<collection>.pending``), new chunks are upserted (ids are deterministic), the
  document's stale chunks are deleted, the manifest is replaced atomically, and the journal removed. Opening a
  store whose journal names a document (a process was killed while writing it) removes that document's chunks
  and its manifest entry, so the next ingest adds it afresh whatever its file now holds (without the journal, a
  file put back to the version the manifest names would be skipped, beside chunks of the other version).
- **server**: a Chroma server (``chroma run``) shared by app replicas and ingest workers on several machines.
  Chroma is the only source of truth: the catalog is a companion collection (``ChromaCatalog``) and the keyword
  index is derived, kept in each process's memory and brought up to date from Chroma when the catalog's
  generation token changes (checked at most every ``store.sync_seconds``, before a search or a listing):
  documents whose catalog record changed are dropped and their current chunks fetched, nothing else.
  A writer upserts the chunks, deletes the document's stale ones, writes the catalog record, then changes the
  token, and finally checks that its chunks are all there if its record is still the current one (a concurrent
  writer of another version may have deleted them) and puts back any missing. Vector hits are kept only when the
  catalog names their version, so chunks left by a losing concurrent writer are never shown.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import numpy as np

from rag.errors import DocumentNotFoundError, EmbeddingMismatchError, StoreError
from rag.search.catalog import Catalog, ChromaCatalog, FileCatalog
from rag.text import tokenize
from rag.types import Chunk, DocumentInfo, Hit

if TYPE_CHECKING:
    from rag.search.bm25 import KeywordIndex

logger = logging.getLogger(__name__)

Analyzer = Callable[[Chunk], list[str]]  # a stored chunk's keyword terms (ingest indexes title + heading + text)
F = TypeVar("F", bound=Callable[..., Any])
FETCH = 5000  # chunks per request when reading them back from Chroma


def _server_errors(method: F) -> F:
    """Turn a lost connection to the Chroma server into a StoreError that says how to fix it."""

    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            if self.url is None or not _is_connection_error(exc):
                raise
            raise _unreachable(self.url, exc) from exc

    return wrapper  # type: ignore[return-value]


class Store:
    def __init__(self, client: Any, collection: str, folder: Path, keyword: KeywordIndex | None = None, *,
                 catalog: Catalog | None = None, analyzer: Analyzer | None = None, url: str | None = None,
                 sync_seconds: float = 1.0) -> None:
        """``client``: a Chroma client, or a function that makes one (called once, on the first read or write of
        chunks: with the file catalog, listing documents or skipping unchanged files never starts Chroma).
        ``catalog``: where documents are recorded (default: the manifest in ``folder``). ``analyzer``: how a
        chunk read back from Chroma is turned into keyword terms (default: its text's tokens)."""
        self._client_or_factory = client
        self._client_lock = threading.Lock()
        self.name = collection
        self.folder = folder
        self.url = url
        self._keyword = keyword
        self._analyzer = analyzer or (lambda chunk: tokenize(chunk.text))
        self._catalog: Catalog = catalog or FileCatalog(folder / f"{collection}.manifest.json")
        self._lock = threading.RLock()
        self._collection: Any = None
        self._sync_seconds = sync_seconds
        self._checked = -float("inf")  # when the generation token was last read (monotonic)
        self._token: str | None = None  # the token the copy of the catalog matches
        self._indexed: dict[str, DocumentInfo] = {}  # shared catalog: the documents the keyword index holds
        self._keyword_ready = False  # shared catalog: the keyword index has been filled from Chroma
        self._pending = False  # shared catalog: the keyword index may lag behind the copy of the catalog
        self._documents: dict[str, DocumentInfo] = {}
        if self._catalog.shared:
            self.sync(force=True)
            return
        self._documents = self._catalog.load()
        self._journal = folder / f"{collection}.pending"
        self._finish_interrupted_write()
        if keyword is not None and keyword.stamp != self.stamp():
            if self._documents or len(keyword):
                self._rebuild_keyword_index()
            else:
                keyword.commit(self.stamp())  # a new, empty store

    @classmethod
    def open(cls, path: Path, collection: str, *, keyword: bool = True, url: str | None = None,
             analyzer: Analyzer | None = None, sync_seconds: float = 1.0) -> Store:
        """The embedded store in ``path``; or, with ``url`` (``http://host:8000``), the collection on that Chroma
        server, its catalog there too, and the keyword index in memory (``path`` then holds only local caches)."""
        from rag.search.bm25 import BM25Index

        if url is None:
            def connect() -> Any:
                import chromadb
                from chromadb.config import Settings as ChromaSettings

                path.mkdir(parents=True, exist_ok=True)
                return chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))

            index = BM25Index(path / f"{collection}.bm25") if keyword else None
            return cls(connect, collection, path, index, analyzer=analyzer)

        client = connect_server(url)
        return cls(client, collection, path, BM25Index(None, background=True) if keyword else None,
                   catalog=ChromaCatalog(lambda: client, collection), analyzer=analyzer, url=url,
                   sync_seconds=sync_seconds)

    @property
    def _client(self) -> Any:
        """The Chroma client: one per store (Chroma fails when clients are made concurrently from threads)."""
        with self._client_lock:
            if callable(self._client_or_factory) and not hasattr(self._client_or_factory, "get_collection"):
                self._client_or_factory = self._client_or_factory()
            return self._client_or_factory

    @property
    def shared(self) -> bool:
        """Whether other processes write this store too (a Chroma server)."""
        return self._catalog.shared

    @property
    def keyword(self) -> KeywordIndex | None:
        """The keyword index, up to date with the store: on a shared store, the catalog's generation token is
        checked first (at most every ``sync_seconds``) and documents changed elsewhere are re-read."""
        if self._keyword is not None and self.shared:
            self.sync(keyword=True)
        return self._keyword

    def stamp(self) -> str:
        """Identifies the set of documents (and versions) in the store; the keyword index records it."""
        import hashlib

        text = "\n".join(f"{d.source}\t{d.doc_id}" for d in self.documents())
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def commit(self) -> None:
        """Make staged keyword-index changes durable (the end of an ingest run calls this)."""
        with self._lock:
            if self._keyword is not None and not self.shared:
                self._keyword.commit(self.stamp())

    # -- the journal of an embedded store: the document being written --------------------------------------

    def _begin(self, source: str) -> None:
        """Before changing a document's chunks: name it in the journal (an embedded store; a shared one has the
        generation token and the catalog's versions instead)."""
        if not self.shared:
            self._finish_interrupted_write()  # a write of this process that raised half-way: undone first
            tmp = self._journal.with_suffix(".pending.tmp")
            tmp.write_text(json.dumps({"source": source, "pid": os.getpid()}, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, self._journal)

    def _end(self) -> None:
        if not self.shared:
            self._journal.unlink(missing_ok=True)

    def _finish_interrupted_write(self) -> None:
        """A journal left by a process killed while writing a document (or by a write of this process that
        raised): remove that document (its chunks, then its manifest entry), so that the next ingest adds it
        afresh; the keyword index, out of step with the manifest's stamp, is then rebuilt. A journal whose writer
        is still running (an app opening the store while ``ingest.py`` writes it) is left alone."""
        try:
            entry = json.loads(self._journal.read_text(encoding="utf-8"))
            source, pid = entry["source"], int(entry.get("pid", 0))
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("journal %s unreadable (%s); ignored", self._journal, exc)
            self._end()
            return
        if pid and pid != os.getpid() and _running(pid):
            return
        logger.warning("'%s' was being written when a process stopped; removing it from '%s' (the next ingest "
                       "adds it again)", source, self.name)
        col = self._get_collection()
        ids = self._chunk_ids(source)
        if col is not None:
            self._delete_ids(col, ids)
        if self._documents.pop(source, None) is not None:
            self._catalog.remove(source, self._documents)
        if self._keyword is not None:
            self._keyword.delete(ids)
        self._end()

    def _rebuild_keyword_index(self) -> None:
        logger.warning("keyword index of '%s' does not match the store; rebuilding it from the stored chunks", self.name)
        assert self._keyword is not None
        self._keyword.clear()
        batch: list[Chunk] = []
        for chunk in self.all_chunks():
            batch.append(chunk)
            if len(batch) >= 2000:
                self._add_keywords(batch)
                batch = []
        self._add_keywords(batch)
        self._keyword.commit(self.stamp())

    def _add_keywords(self, chunks: list[Chunk]) -> None:
        assert self._keyword is not None
        self._keyword.add(chunks, [self._analyzer(c) for c in chunks])

    # -- a shared store: following other processes' changes --------------------------------------------

    @_server_errors
    def sync(self, *, keyword: bool = False, force: bool = False) -> None:
        """On a shared store, bring the copy of the catalog (and, with ``keyword``, the keyword index) up to
        date when the generation token changed. The token is read first, then the catalog, then chunks: a change
        made meanwhile changes the token again, and the next check reads it. Throttled to ``sync_seconds``."""
        if not self.shared:
            return
        with self._lock:
            now = time.monotonic()
            first = keyword and not self._keyword_ready
            if force or first or now - self._checked >= self._sync_seconds:
                self._checked = now
                token = self._catalog.generation()
                if token != self._token:
                    self._documents = self._catalog.load()
                    self._token = token
                    self._pending = True
            if self._keyword is not None and (first or (self._keyword_ready and self._pending)):
                self._sync_keyword_index()
                self._keyword_ready, self._pending = True, False

    def _sync_keyword_index(self) -> bool:
        """Drop documents the catalog no longer names (or names in another version) from the keyword index and
        add the current chunks of new or changed ones. A document whose chunks are not all there (a writer is
        in the middle of changing it) is left out, and read again when the token next changes: that writer
        changes it when done. False when some document was left out."""
        assert self._keyword is not None
        gone = {s for s, info in self._indexed.items() if self._documents.get(s) != info}
        wanted = {s: info for s, info in self._documents.items() if self._indexed.get(s) != info}
        if gone:
            self._keyword.delete(self._keyword_ids(gone))
            for source in gone:
                del self._indexed[source]
        if not wanted:
            return True
        logger.info("keyword index of '%s': reading %d changed document(s) from Chroma", self.name, len(wanted))
        found: dict[str, list[Chunk]] = {s: [] for s in wanted}
        for chunk in self._chunks_of(list(wanted.values())):
            info = wanted.get(chunk.source)
            if info is not None and chunk.doc_id == info.doc_id:
                found[chunk.source].append(chunk)
        complete = True
        for source, chunks in found.items():
            if len(chunks) < wanted[source].chunks:
                logger.info("'%s': %d of %d chunks found; reading it again after the next change", source,
                            len(chunks), wanted[source].chunks)
                complete = False
                continue
            self._add_keywords(chunks)
            self._indexed[source] = wanted[source]
        return complete

    def _keyword_ids(self, sources: set[str]) -> list[str]:
        assert self._keyword is not None
        return self._keyword.ids_of(sources)  # type: ignore[attr-defined]

    def _chunks_of(self, documents: list[DocumentInfo]) -> Iterable[Chunk]:
        """The stored chunks of these documents' versions, read a few thousand at a time."""
        col = self._get_collection()
        if col is None:
            return
        group: list[str] = []
        size = 0
        for info in sorted(documents, key=lambda d: d.doc_id):
            group.append(info.doc_id)
            size += info.chunks
            if size >= FETCH:
                yield from self._chunks_where(col, group)
                group, size = [], 0
        if group:
            yield from self._chunks_where(col, group)

    def _chunks_where(self, col: Any, doc_ids: list[str]) -> Iterable[Chunk]:
        where = {"doc_id": doc_ids[0]} if len(doc_ids) == 1 else {"doc_id": {"$in": doc_ids}}
        offset = 0
        while True:
            result = col.get(where=where, include=["documents", "metadatas"], limit=FETCH, offset=offset)
            for cid, text, meta in zip(result["ids"], result["documents"], result["metadatas"]):
                yield _chunk(cid, text, meta)
            if len(result["ids"]) < FETCH:
                return
            offset += FETCH


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

    @_server_errors
    def replace(self, info: DocumentInfo, chunks: list[Chunk], vectors: np.ndarray, *, provider: str, model: str,
                terms: list[list[str]] | None = None) -> None:
        """Make ``chunks`` the document's only chunks and record ``info`` in the catalog. ``terms`` are the
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
            self._begin(info.source)
            self._upsert(col, chunks, vectors)
            keep = {c.id for c in chunks}
            stale = [i for i in self._chunk_ids(info.source) if i not in keep]
            self._delete_ids(col, stale)
            self._documents[info.source] = info
            self._catalog.put(info, self._documents)
            self._end()
            if self.shared:
                self._catalog.bump()
                self._repair(col, info, chunks, vectors)
            if self._keyword is not None and (self._keyword_ready or not self.shared):
                self._keyword.delete(stale if not self.shared else self._keyword_ids({info.source}))
                self._keyword.add(chunks, terms if terms is not None else [self._analyzer(c) for c in chunks])
                self._indexed[info.source] = info

    def _repair(self, col: Any, info: DocumentInfo, chunks: list[Chunk], vectors: np.ndarray) -> None:
        """A shared store, after the catalog names ``info``: a writer of another version of the same document may
        have deleted some of these chunks as stale before its own record was replaced by ours. If ours is still
        the current record, put back whatever is missing."""
        current = self._catalog.get(info.source)
        if current is None or current.doc_id != info.doc_id:
            return  # another version won; our chunks are left out of every search and go with its next update
        present = set(col.get(ids=[c.id for c in chunks], include=[])["ids"])
        missing = [i for i, c in enumerate(chunks) if c.id not in present]
        if missing:
            logger.warning("'%s': %d chunk(s) deleted by a concurrent writer; writing them again", info.source,
                           len(missing))
            self._upsert(col, [chunks[i] for i in missing], vectors[missing])
            self._catalog.bump()

    def _upsert(self, col: Any, chunks: list[Chunk], vectors: np.ndarray) -> None:
        batch = max(1, min(1000, self._client.get_max_batch_size()))
        for start in range(0, len(chunks), batch):
            part = chunks[start:start + batch]
            col.upsert(ids=[c.id for c in part], embeddings=vectors[start:start + batch],
                       documents=[c.text for c in part], metadatas=[c.metadata() for c in part])

    @_server_errors
    def delete(self, source: str) -> DocumentInfo:
        with self._lock:
            info = self._catalog.get(source) if self.shared else self._documents.get(source)
            if info is None:
                raise DocumentNotFoundError(f"no document named '{source}' in collection '{self.name}'",
                                            hint="list documents with: python -m rag docs")
            self._documents.pop(source, None)
            if self.shared:  # out of the catalog first: other processes stop showing it at their next check
                self._catalog.remove(source, self._documents)
            self._begin(source)
            col = self._get_collection()
            ids = self._chunk_ids(source)
            if col is not None:
                self._delete_ids(col, ids)
            if self.shared:
                self._catalog.bump()
            else:
                self._catalog.remove(source, self._documents)
            self._end()
            if self._keyword is not None:
                self._keyword.delete(ids if not self.shared else self._keyword_ids({source}))
                self._indexed.pop(source, None)
            self.commit()
            return info

    # -- reads -----------------------------------------------------------------------------------------

    def documents(self) -> list[DocumentInfo]:
        self.sync()
        return sorted(self._documents.values(), key=lambda d: d.source.lower())

    def empty(self) -> bool:
        """Whether the catalog names no document: read from memory, where ``count`` asks Chroma (a scan of its
        table in the embedded store, a round trip on a server), which a search cannot afford at 1M chunks."""
        self.sync()
        return not self._documents

    def document(self, source: str) -> DocumentInfo | None:
        self.sync()
        return self._documents.get(source)

    @_server_errors
    def count(self) -> int:
        col = self._get_collection()
        return col.count() if col is not None else 0

    @_server_errors
    def query(self, vector: np.ndarray, k: int, sources: Iterable[str] | None = None) -> list[Hit]:
        """Nearest chunks by cosine similarity, best first; ``sources`` limits the search to those documents.
        On a shared store only chunks of the versions the catalog names are kept."""
        col = self._get_collection()
        if col is None or k <= 0:
            return []
        where = _source_filter(sources)
        if where is not None and not where:
            return []
        result = col.query(query_embeddings=[vector], n_results=k, where=where or None,
                           include=["documents", "metadatas", "distances"])
        hits = [_hit(cid, text, meta, 1.0 - float(dist)) for cid, text, meta, dist in
                zip(result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0])]
        if self.shared:
            self.sync()
            hits = [h for h in hits if (d := self._documents.get(h.source)) is not None and d.doc_id == h.doc_id]
        return hits

    @_server_errors
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

    @_server_errors
    def vectors(self, chunk_ids: list[str]) -> dict[str, np.ndarray]:
        col = self._get_collection()
        if col is None or not chunk_ids:
            return {}
        result = col.get(ids=chunk_ids, include=["embeddings"])
        return {cid: np.asarray(vec, dtype=np.float32) for cid, vec in zip(result["ids"], result["embeddings"])}

    def all_chunks(self, batch: int = FETCH) -> Iterable[Chunk]:
        """Every stored chunk (for rebuilding the keyword index of an embedded store)."""
        col = self._get_collection()
        if col is None:
            return
        total = col.count()
        for offset in range(0, total, batch):
            result = col.get(include=["documents", "metadatas"], limit=batch, offset=offset)
            for cid, text, meta in zip(result["ids"], result["documents"], result["metadatas"]):
                yield _chunk(cid, text, meta)

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
            # get_or_create: another process may be creating it at this moment
            self._collection = self._client.get_or_create_collection(
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


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def connect_server(url: str) -> Any:
    """A client of the Chroma server at ``url``, checked with a heartbeat (StoreError when it does not answer)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    parts = urlsplit(url)
    try:
        client = chromadb.HttpClient(host=parts.hostname or "localhost", port=parts.port or 8000,
                                     ssl=parts.scheme == "https", settings=ChromaSettings(anonymized_telemetry=False))
        client.heartbeat()
    except Exception as exc:
        if _is_connection_error(exc):
            raise _unreachable(url, exc) from exc
        raise
    return client


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if type(exc).__module__.startswith(("httpx", "httpcore")):
        return True
    return isinstance(exc, ValueError) and "could not connect" in str(exc).lower()


def _unreachable(url: str, exc: BaseException) -> StoreError:
    return StoreError(f"the Chroma server at {url} (store.url) does not answer: {type(exc).__name__}: {exc}",
                      hint="start it with 'make serve-store' (chroma run --path data/chroma-server --port 8000), "
                           "check the host and port, or remove store.url (RAG_STORE__URL) to use the embedded store")


def _source_filter(sources: Iterable[str] | None) -> dict[str, Any] | None:
    if sources is None:
        return None
    names = sorted(set(sources))
    if not names:
        return {}
    return {"source": names[0]} if len(names) == 1 else {"source": {"$in": names}}


def _chunk(cid: str, text: str, meta: dict[str, Any]) -> Chunk:
    return Chunk(id=cid, text=text, source=meta["source"], page=int(meta["page"]), doc_id=meta["doc_id"],
                 index=int(meta.get("chunk", 0)), ocr=bool(meta.get("ocr", False)),
                 heading=str(meta.get("heading", "")), location=str(meta.get("location", "")))


def _hit(cid: str, text: str, meta: dict[str, Any], score: float) -> Hit:
    return Hit(chunk_id=cid, text=text, source=str(meta["source"]), page=int(meta["page"]),
               doc_id=str(meta["doc_id"]), score=score, ocr=bool(meta.get("ocr", False)),
               heading=str(meta.get("heading", "")), location=str(meta.get("location", "")))
