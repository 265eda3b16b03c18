"""BM25 keyword index over the chunks, persisted beside the vector store.

Chunks are tokenised once, when they are added; their token ids are kept, so that after a batch of changes
the BM25 matrix is rebuilt from ids in a fraction of a second instead of re-reading any text. Changes are
staged by ``add``/``delete`` (called by the Store in the same call that writes Chroma) and made durable by
``commit`` at the end of an ingest run or a delete. The BM25 matrix is built on the first query after a change
(or after loading), so opening a store to skip unchanged files costs no build.

A shared store (a Chroma server) keeps its index in memory only (``BM25Index(None)``): it is rebuilt from
Chroma when a process starts and then follows the catalog (see ``rag.search.store``).

On disk (``<store>/<collection>.bm25/``): ``meta.json`` (chunk ids, their documents, the vocabulary and the
manifest stamp they match) and ``tokens.npz`` (all token ids, concatenated, with offsets). If the stamp does not
match the store's manifest (a crash between writing Chroma and committing), the Store rebuilds the index from
Chroma's stored texts.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.text import tokenize
from rag.types import Chunk

logger = logging.getLogger(__name__)


class KeywordIndex(Protocol):
    """What the store (writes, in step with Chroma) and the retriever (queries) use of a keyword index."""

    stamp: str  # the store's manifest stamp the committed index matches

    def __len__(self) -> int: ...
    def add(self, chunks: list[Chunk], terms: list[list[str]] | None = None) -> None: ...
    def delete(self, chunk_ids: Iterable[str]) -> None: ...
    def ids_of(self, sources: set[str]) -> list[str]: ...
    def clear(self) -> None: ...
    def commit(self, stamp: str) -> None: ...
    def search(self, query: str, n: int, sources: Iterable[str] | None = None) -> list[tuple[str, float]]: ...
    def weights(self, query: str) -> dict[str, tuple[float, int]]: ...
    def coverage(self, query: str, chunk_ids: list[str]) -> list[float]: ...
    def mentions(self, words: str, chunk_ids: list[str]) -> bool: ...


class BM25Index:
    def __init__(self, folder: Path | None, *, background: bool = False) -> None:
        """``folder``: where the index is saved; None: in memory only. ``background``: after a change, queries
        keep using the previous BM25 matrix while the new one is built in a thread (a shared store, where other
        processes' changes arrive at any time and a rebuild at 100k chunks takes seconds), instead of waiting."""
        self.folder = folder
        self._background = background
        self._building = False
        self._lock = threading.RLock()
        self._vocab: dict[str, int] = {}
        self._ids: list[str] = []
        self._docs: list[str] = []  # source of each chunk, for document filters
        self._tokens: list[np.ndarray] = []
        self._position: dict[str, int] = {}
        self._matrix: _Matrix | None = None
        self._dirty = False  # changes not yet saved
        self._stale = False  # changes not yet in the BM25 matrix, which is built on the first query
        self.stamp = ""
        self._load()

    # -- changes ------------------------------------------------------------------------------------------

    def add(self, chunks: list[Chunk], terms: list[list[str]] | None = None) -> None:
        """Stage ``chunks``; ``terms`` are their tokens when the caller has them already (else tokenised here)."""
        with self._lock:
            for i, chunk in enumerate(chunks):
                tokens = terms[i] if terms is not None else tokenize(chunk.text)
                ids = np.fromiter((self._vocab.setdefault(t, len(self._vocab)) for t in tokens), dtype=np.int32)
                if chunk.id in self._position:
                    i = self._position[chunk.id]
                    self._tokens[i], self._docs[i] = ids, chunk.source
                else:
                    self._position[chunk.id] = len(self._ids)
                    self._ids.append(chunk.id)
                    self._docs.append(chunk.source)
                    self._tokens.append(ids)
            if chunks:
                self._dirty = self._stale = True

    def delete(self, chunk_ids: Iterable[str]) -> None:
        with self._lock:
            gone = {cid for cid in chunk_ids if cid in self._position}
            if not gone:
                return
            keep = [i for i, cid in enumerate(self._ids) if cid not in gone]
            self._ids = [self._ids[i] for i in keep]
            self._docs = [self._docs[i] for i in keep]
            self._tokens = [self._tokens[i] for i in keep]
            self._position = {cid: i for i, cid in enumerate(self._ids)}
            self._dirty = self._stale = True

    def ids_of(self, sources: set[str]) -> list[str]:
        """The ids of the indexed chunks of these documents."""
        with self._lock:
            return [cid for cid, source in zip(self._ids, self._docs) if source in sources]

    def clear(self) -> None:
        with self._lock:
            self._vocab, self._ids, self._docs, self._tokens, self._position = {}, [], [], [], {}
            self._dirty = self._stale = True

    def commit(self, stamp: str) -> None:
        """Save the index if anything changed, recording the manifest ``stamp``."""
        with self._lock:
            if not self._dirty and stamp == self.stamp:
                return
            self.stamp = stamp
            self._save()
            self._dirty = False

    # -- queries ------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ids)

    def search(self, query: str, n: int, sources: Iterable[str] | None = None) -> list[tuple[str, float]]:
        """Up to ``n`` (chunk id, BM25 score) pairs with a positive score, best first."""
        with self._lock:
            matrix = self._built()  # with uncommitted changes (an ingest in progress) too
            if matrix is None:
                return []
            # Each distinct term once: a question that says "FY2018" four times is not four times about "fy".
            ids = sorted({t for t in (self._vocab.get(t) for t in tokenize(query)) if t is not None and t < matrix.terms})
            if not ids:
                return []
            scores = matrix.scores(ids)
            if sources is not None:
                scores *= matrix.allowed(set(sources))
            return [(matrix.ids[i], float(scores[i])) for i in _top(scores, n)]

    def weights(self, query: str) -> dict[str, tuple[float, int]]:
        """Each query term's IDF weight and document frequency. Terms the corpus has never seen get the
        highest weight: they are what the documents do not talk about."""
        with self._lock:
            matrix = self._built()
            doc_freq = matrix.doc_freq if matrix is not None else np.zeros(0)
            total = max(len(matrix.ids) if matrix is not None else 0, 1)
            out = {}
            for term in set(tokenize(query)):
                tid = self._vocab.get(term)
                df = int(doc_freq[tid]) if tid is not None and tid < len(doc_freq) else 0
                out[term] = (math.log(1 + (total - df + 0.5) / (df + 0.5)), df)
            return out

    def coverage(self, query: str, chunk_ids: list[str]) -> list[float]:
        """For each chunk, the IDF-weighted share of the query's terms among its indexed terms (1.0: all)."""
        weights = self.weights(query)
        norm = sum(w for w, _ in weights.values()) or 1.0
        with self._lock:
            ids = {self._vocab[t]: t for t in weights if t in self._vocab}
            found = []
            for cid in chunk_ids:
                i = self._position.get(cid)
                found.append(set(self._tokens[i].tolist()) & ids.keys() if i is not None else set())
        return [sum(weights[ids[t]][0] for t in group) / norm for group in found]

    def mentions(self, words: str, chunk_ids: list[str]) -> bool:
        """Whether any of the chunks contains a term of ``words`` among its indexed terms."""
        with self._lock:
            wanted = {self._vocab[t] for t in tokenize(words) if t in self._vocab}
            for cid in chunk_ids:
                i = self._position.get(cid)
                if i is not None and wanted & set(self._tokens[i].tolist()):
                    return True
            return False

    # -- internals ----------------------------------------------------------------------------------------

    def _built(self) -> _Matrix | None:
        """The BM25 matrix, (re)built first when the index changed since it was last built; in the background
        (returning the previous one meanwhile) when so configured and there is a previous one."""
        if not self._stale:
            return self._matrix
        if self._background and self._matrix is not None:
            if not self._building:
                self._building = True
                snapshot = (list(self._ids), list(self._docs), list(self._tokens), len(self._vocab))
                self._stale = False  # a change from now on makes it stale again, and the next query rebuilds
                threading.Thread(target=self._build_in_background, args=snapshot, daemon=True,
                                 name="bm25-build").start()
            return self._matrix
        self._matrix = _build(self._ids, self._docs, self._tokens, len(self._vocab))
        self._stale = False
        return self._matrix

    def _build_in_background(self, ids: list[str], docs: list[str], tokens: list[np.ndarray], terms: int) -> None:
        try:
            matrix = _build(ids, docs, tokens, terms)
        except Exception:
            logger.exception("building the BM25 matrix failed")
            with self._lock:
                self._stale, self._building = True, False
            return
        with self._lock:
            self._matrix, self._building = matrix, False

    def _save(self) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        lengths = np.array([len(t) for t in self._tokens], dtype=np.int64)
        flat = np.concatenate(self._tokens) if self._tokens else np.zeros(0, dtype=np.int32)
        tmp_tokens = self.folder / "tokens.tmp.npz"
        np.savez(tmp_tokens, tokens=flat, lengths=lengths)
        meta = {"version": 1, "stamp": self.stamp, "ids": self._ids, "docs": self._docs,
                "vocab": sorted(self._vocab, key=self._vocab.__getitem__)}
        tmp_meta = self.folder / "meta.tmp.json"
        tmp_meta.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp_tokens, self.folder / "tokens.npz")
        os.replace(tmp_meta, self.folder / "meta.json")

    def _load(self) -> None:
        if self.folder is None:
            return
        try:
            meta = json.loads((self.folder / "meta.json").read_text(encoding="utf-8"))
            with np.load(self.folder / "tokens.npz") as data:
                flat, lengths = data["tokens"], data["lengths"]
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("keyword index in %s unreadable (%s); it will be rebuilt", self.folder, exc)
            return
        if len(meta["ids"]) != len(lengths):
            logger.warning("keyword index in %s is inconsistent; it will be rebuilt", self.folder)
            return
        self._vocab = {term: i for i, term in enumerate(meta["vocab"])}
        self._ids, self._docs = list(meta["ids"]), list(meta["docs"])
        self._tokens = np.split(flat.astype(np.int32), np.cumsum(lengths)[:-1]) if len(lengths) else []
        self._position = {cid: i for i, cid in enumerate(self._ids)}
        self.stamp = meta.get("stamp", "")
        self._stale = True


K1, B = 1.5, 0.75  # BM25's usual constants (Lucene's, and bm25s's defaults)


class _Matrix:
    """A built BM25 matrix and the chunks (ids, documents) of its rows, as they were when it was built.

    Scores are BM25 as Lucene computes it (and bm25s, which built this matrix until 2026-12: a test checks the
    two agree): idf = log(1 + (N - df + 0.5) / (df + 0.5)), times tf / (tf + k1 (1 - b + b len / avg len)),
    precomputed for every (term, chunk) pair and stored by term (CSC), so a query adds up a few columns. Built
    with whole-array numpy operations: bm25s's indexer goes through Python lists and a Counter per chunk, 8.7x
    slower on dev-en's 38k chunks (0.34 s against 3.0 s), which a shared store's replicas pay after every change
    (docs/BENCHMARKS.md)."""

    def __init__(self, ids: list[str], docs: list[str], tokens: list[np.ndarray], terms: int) -> None:
        self.ids, self.terms = ids, terms
        names = sorted(set(docs))
        self._doc_names = {name: i for i, name in enumerate(names)}
        self._doc_codes = np.fromiter((self._doc_names[d] for d in docs), dtype=np.int32, count=len(docs))
        lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
        rows = len(tokens)
        flat = np.concatenate(tokens).astype(np.int64) if rows else np.zeros(0, dtype=np.int64)
        # one sort of (term, chunk) keys gives the postings in term order, and the term frequencies as run lengths
        keys = flat * rows + np.repeat(np.arange(rows, dtype=np.int64), lengths)
        del flat
        keys.sort()
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, dtype=np.int64)
        tf = np.diff(np.r_[starts, len(keys)]).astype(np.float32)
        keys = keys[starts]
        term, chunk = keys // max(rows, 1), (keys % max(rows, 1)).astype(np.int32)
        del keys
        self.doc_freq = np.bincount(term, minlength=terms + 1).astype(np.int32)
        idf = np.log1p((rows - self.doc_freq + 0.5) / (self.doc_freq + 0.5)).astype(np.float32)
        norm = (K1 * (1 - B + B * lengths / max(float(lengths.mean()) if rows else 1.0, 1e-9))).astype(np.float32)
        self._data = idf[term] * tf / (tf + norm[chunk])
        self._rows = chunk
        self._indptr = np.r_[0, np.cumsum(self.doc_freq)]

    def scores(self, term_ids: list[int]) -> np.ndarray:
        """Each chunk's BM25 score for these (distinct) terms."""
        scores = np.zeros(len(self.ids), dtype=np.float32)
        for tid in term_ids:
            start, end = self._indptr[tid], self._indptr[tid + 1]
            scores[self._rows[start:end]] += self._data[start:end]  # a chunk appears once in a term's postings
        return scores

    def allowed(self, sources: set[str]) -> np.ndarray:
        """A mask of the chunks of these documents."""
        codes = [self._doc_names[s] for s in sources if s in self._doc_names]
        return np.isin(self._doc_codes, np.asarray(codes, dtype=np.int32))


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the (at most) ``n`` highest positive scores, best first. Over many chunks, a threshold read from a
    sample of the scores first narrows the candidates: exact, since whenever ``n`` scores reach it the ``n``
    highest are among them (else all are ranked). At 1M chunks 0.6 ms against 4.5-7 ms for ranking them all."""
    n = min(n, len(scores))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    candidates = None
    if len(scores) > 50 * n:
        sample = scores[:: len(scores) // 20_000 or 1]
        rank = min(len(sample), 4 * n * len(sample) // len(scores) + 1)  # the sample's share of 4n candidates
        threshold = np.partition(sample, len(sample) - rank)[len(sample) - rank]
        candidates = np.flatnonzero(scores >= threshold) if threshold > 0 else np.flatnonzero(scores > 0)
        if threshold > 0 and len(candidates) < n:
            candidates = None
    if candidates is None:
        candidates = np.flatnonzero(scores > 0)
    if len(candidates) > n:
        candidates = candidates[np.argpartition(-scores[candidates], n - 1)[:n]]
    return candidates[np.argsort(-scores[candidates], kind="stable")]


def _build(ids: list[str], docs: list[str], tokens: list[np.ndarray], terms: int) -> _Matrix | None:
    return _Matrix(ids, docs, tokens, terms) if ids else None
