"""Find the chunks that answer a question: vector search, BM25 keyword search, or both fused.

Ranking: each retriever returns up to ``retrieval.candidates`` chunks; hybrid mode fuses the two lists, by
reciprocal rank fusion (default) or by a convex combination of their scores, weighting vector evidence by
``alpha`` (``alpha_ko`` for Korean questions; 0 with an embedding model that reads no Korean, such as MiniLM).
In RRF, BM25's weight also shrinks with the share of the question's terms its best hit holds: a Korean question
about an English filing shares only numbers with it, and BM25 would rank noise. MMR (optional) then trades a
little relevance for diversity. A question that names documents by their title ("Adobe's FY2015 ...", the
filing ADOBE_2015_10K.pdf) is also searched inside them, and that ranking joins the fusion with weight
``title_focus``: among many filings, the same words stand on every company's pages, and a company's later
filings repeat a year's figures. At most ``per_page`` passages come from one page (a table cut into several
chunks would otherwise fill the top places). A question given with its translation into the documents'
language (``rag.answer.translation``) is searched both ways, the two rankings fused. Every hit's ``score`` is
its cosine similarity to the question, whatever ranked it, so scores read the same in all modes.

Refusal signal (``relevance``): vector similarity alone rates "revenue of a company we do not have" close to
"revenue of a company we have". The signal therefore blends similarity (rescaled by the model's floor, see
``Embedder.similarity``) with keyword coverage: the IDF-weighted share of the question's terms found in the
passage (a company name nobody mentions weighs most); for a passage in another language than the question,
similarity alone. It is zero when the question names things ("Tesla") that none of the passages found mentions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from rag.config import RetrievalSettings
from rag.search.store import Store
from rag.text import compounds, document_title, is_korean, names, tokenize
from rag.types import Hit

if TYPE_CHECKING:
    from rag.providers.embeddings import Embedder

RRF_K = 60
KEYWORD_FULL = 0.5  # keyword coverage of BM25's best hit from which its ranking counts fully in the fusion
TITLE_COVERAGE = 0.6  # share of a document's title (by weight) a question must name for the document to be focused
TITLE_MAX = 3  # documents focused at most
TRANSLATED = 2.0  # weight of the translated question's ranking: the documents' own language matches more surely
PAGE_POOL = 3  # with retrieval.per_page, fused candidates looked at per passage wanted
# Capitalised words, acronyms ("AMD", "MGM") and sentence starts included, unlike rag.text.names: a title names a
# company the way its file does, and a wrong match only adds a search, it refuses nothing.
_CAPITALISED = re.compile(r"\b[A-Z][A-Za-z0-9]+")


class Retriever:
    def __init__(self, store: Store, embedder: Callable[[], Embedder], settings: RetrievalSettings) -> None:
        self._store = store
        self._embedder = embedder
        self.settings = settings

    def search(self, query: str, k: int | None = None, sources: Iterable[str] | None = None,
               mode: str | None = None, translation: str | None = None) -> list[Hit]:
        """The ``k`` best passages for ``query``. ``translation``: the question in the documents' language
        (``rag.answer.translation``), whose ranking is fused with the question's own (not with convex fusion)."""
        k = k or self.settings.k
        mode = mode or self.settings.mode
        sources = None if sources is None else list(sources)
        if not query.strip() or sources == [] or self._store.empty():
            return []
        n = max(self.settings.candidates, k)
        convex_fusion = mode == "hybrid" and self.settings.fusion == "convex"
        vector = self._query_vector(query)
        order, vector_hits, keyword, alpha = self._fused(query, vector, n, sources, mode, convex_fusion)
        if translation and translation.strip() and not convex_fusion:
            # its vector hits are scored against the question as asked, like keyword-only hits (_scored)
            other, *_ = self._fused(translation, self._query_vector(translation), n, sources, mode, False)
            order = rrf([(order, 1.0), (other, TRANSLATED)])
        wanted = max(k, self._mmr_pool())
        per_page = self.settings.per_page
        pool = order if convex_fusion else order[: wanted * (PAGE_POOL if per_page else 1)]
        hits = self._scored(pool, vector, vector_hits)
        if convex_fusion:
            hits = convex(hits, keyword, alpha)
        if per_page:
            hits = spread_over_pages(hits, per_page)
        hits = hits[:wanted]
        if self.settings.mmr:
            hits = mmr(hits, self._store.vectors([h.chunk_id for h in hits]), vector, k, self.settings.mmr_lambda)
        return hits[:k]

    def _fused(self, query: str, vector: np.ndarray, n: int, sources: list[str] | None, mode: str,
               convex_fusion: bool) -> tuple[list[str], dict[str, Hit], dict[str, float], float]:
        """One query's ranking: both retrievers fused, with the title focus; also the vector hits and BM25
        scores behind it, and the vectors' share (``alpha``) used."""
        terms = self.keyword_query(query)
        alpha = self.settings.alpha
        if is_korean(query):  # an English-only embedding model cannot rank Korean questions
            alpha = self.settings.alpha_ko if self._embedder().reads_korean else 0.0
        order, vector_hits, keyword = self._ranked(vector, terms, n, sources, mode, alpha)
        focus = (named_documents(terms, [d.source for d in self._store.documents()])
                 if self.settings.title_focus and sources is None and not convex_fusion else [])
        if focus:  # the documents the question names by their title, searched on their own, weigh in
            inside, inside_hits, _ = self._ranked(vector, terms, n, focus, mode, alpha)
            order = rrf([(order, 1.0), (inside, self.settings.title_focus)])
            vector_hits = {**inside_hits, **vector_hits}
        return order, vector_hits, keyword, alpha

    def _ranked(self, vector: np.ndarray, terms: str, n: int, sources: list[str] | None, mode: str,
                alpha: float) -> tuple[list[str], dict[str, Hit], dict[str, float]]:
        """Chunk ids best first (fused in hybrid mode), with the vector hits and BM25 scores behind them."""
        vector_hits: dict[str, Hit] = {}
        keyword: dict[str, float] = {}
        if mode in ("vector", "hybrid"):
            vector_hits = {h.chunk_id: h for h in self._store.query(vector, n, sources=sources)}
        if mode in ("bm25", "hybrid") and self._store.keyword is not None:
            keyword = dict(self._store.keyword.search(terms, n, sources=sources))
        if mode == "vector":
            order = list(vector_hits)
        elif mode == "bm25":
            order = list(keyword)
        elif self.settings.fusion == "rrf":
            order = rrf([(list(vector_hits), alpha), (list(keyword), (1 - alpha) * self._keyword_confidence(terms, keyword))])
        else:
            order = list(dict.fromkeys([*vector_hits, *keyword]))
        return order, vector_hits, keyword

    def keyword_query(self, query: str) -> str:
        """The question as keyword search reads it: with its adjacent words joined where the index knows the
        joined word ("Best Buy" also as "BestBuy", the way "BESTBUY_2019_10K.pdf" titles every passage of
        that filing). Only joined words the index holds are added, so nothing else changes."""
        keyword = self._store.keyword
        if keyword is None or not len(keyword):
            return query
        known = [joined for joined, _ in compounds(query) if any(df for _, df in keyword.weights(joined).values())]
        return " ".join([query, *known])

    def _keyword_confidence(self, query: str, keyword: dict[str, float]) -> float:
        """How far BM25's ranking counts in the fusion: in proportion to the share of the question's terms its
        best hit holds, full from half of them. A Korean question about an English filing (or the other way
        round) shares only numbers and stray Latin words with the passages: BM25 then ranks noise, and this
        keeps it from drowning the vectors, which read both languages."""
        if not keyword or self._store.keyword is None:
            return 0.0
        best = next(iter(keyword))
        return min(1.0, self._store.keyword.coverage(query, [best])[0] / KEYWORD_FULL)

    def _mmr_pool(self) -> int:
        return self.settings.mmr_pool if self.settings.mmr else 0

    def unmentioned_names(self, query: str, hits: Sequence[Hit]) -> tuple[list[str], bool]:
        """Names in the question ("Tesla", "Exxon") and whether the documents never mention them at all (True)
        or only the passages found do not (False); ([], False) when the passages mention one of the names.
        Passages that mention none of the names a question asks about are not about what it asks."""
        keyword = self._store.keyword
        asked = names(query)
        if keyword is None or not len(keyword) or not asked or (hits and not _same_language(query, hits[0])):
            return [], False  # the best passage is in another language, which may write the name in its own script
        # A name the documents write as one word ("American Water Works" in "AMERICANWATERWORKS_2022_10K.pdf")
        joined = [word for word, spaced in compounds(query) if all(part in asked for part in spaced.split())]
        if keyword.mentions(" ".join(asked + joined), [h.chunk_id for h in hits]):
            return [], False
        nowhere = [n for n in asked if all(df == 0 for _, df in keyword.weights(n).values())]
        return (nowhere, True) if nowhere else (asked, False)

    def relevance(self, query: str, hits: Sequence[Hit]) -> float:
        """How well the best of the top passages matches the question, in [0, 1]; compared with
        ``retrieval.min_score`` to refuse without calling the model. For a passage in the question's language,
        ``cosine_weight`` x similarity + the rest x keyword coverage; for one in another language, where no
        keyword can match, the similarity alone. Similarities are rescaled by the embedding model's floor (see
        ``Embedder.similarity``). Zero when the question names things ("Tesla") that none of the passages
        mentions."""
        top = list(hits[:3])
        if not top or self.unmentioned_names(query, hits)[0]:
            return 0.0
        keyword = self._store.keyword
        coverage = (keyword.coverage(self.keyword_query(query), [h.chunk_id for h in top]) if keyword is not None
                    else [0.0] * len(top))
        embedder, weight = self._embedder(), self.settings.cosine_weight
        best = 0.0
        if is_korean(query) and not embedder.reads_korean:
            weight = 0.0  # its similarities to Korean text are noise: keyword coverage alone
        for hit, covered in zip(top, coverage):
            if _same_language(query, hit):
                best = max(best, weight * embedder.similarity(hit.score) + (1 - weight) * covered)
            elif embedder.reads_korean:
                best = max(best, embedder.similarity(hit.score, across_languages=True))
        return best

    def similarities(self, query: str, texts: Sequence[str]) -> list[float]:
        return self._embedder().similarities(query, list(texts)).tolist()

    def _query_vector(self, query: str) -> np.ndarray:
        embedder = self._embedder()
        self._store.check_embedding(embedder.provider, embedder.model)
        vector = embedder.embed_query(query)
        self._store.check_embedding(embedder.provider, embedder.model, len(vector))
        return vector

    def _scored(self, order: list[str], vector: np.ndarray, known: dict[str, Hit]) -> list[Hit]:
        """Hits in ``order``; those found only by keywords get their text and cosine score from the store."""
        missing = [cid for cid in order if cid not in known]
        fetched = self._store.get(missing, with_vectors=True, query=vector) if missing else {}
        return [known.get(cid) or fetched[cid] for cid in order if cid in known or cid in fetched]


def named_documents(query: str, sources: Sequence[str]) -> list[str]:
    """The documents a question names by their title ("Adobe's FY2015 ..." -> ADOBE_2015_10K.pdf), best first.

    A title's terms are weighted by how rare they are among the titles ("10K", on every filing, weighs almost
    nothing; "Adobe" and "2015" most), and a document is named when the question holds ``TITLE_COVERAGE`` of
    its title's weight, including a word the question writes capitalised: a name ("Adobe", "AMD", "Best Buy" as
    the joined "BestBuy"), not a topic word that a descriptive title shares with the question ("이커머스 시장
    분석" matched questions about other e-commerce reports). Hangul has no capitals, so Korean titles are
    never named this way."""
    if len(sources) < 2:
        return []
    asked = set(tokenize(query))
    named = {t for t in tokenize(" ".join(_CAPITALISED.findall(query))) if not t[0].isdigit()}
    if not named:
        return []
    titles, idf = _title_weights(tuple(sources))
    score = {source: sum(idf[w] for w in words & asked) / (sum(idf[w] for w in words) or 1.0)
             for source, words in titles.items() if words & named}
    chosen = sorted((s for s, value in score.items() if value >= TITLE_COVERAGE), key=lambda s: -score[s])
    return chosen[:TITLE_MAX]


@lru_cache(maxsize=4)
def _title_weights(sources: tuple[str, ...]) -> tuple[dict[str, frozenset[str]], dict[str, float]]:
    """Each document's title terms, and each term's weight by its rarity among the titles (computed again only
    when the documents change)."""
    titles = {source: frozenset(tokenize(document_title(source))) for source in sources}
    df: dict[str, int] = {}
    for words in titles.values():
        for word in words:
            df[word] = df.get(word, 0) + 1
    return titles, {word: math.log(1 + len(sources) / n) for word, n in df.items()}


def spread_over_pages(hits: list[Hit], per_page: int) -> list[Hit]:
    """``hits`` with at most ``per_page`` passages of any one page first, in their order, and the others after
    them (used only when fewer pages than passages wanted were found). A statement table cut into four
    chunks otherwise takes four of the five places, and the other statement a question needs (the balance sheet
    beside the cash-flow statement) is pushed out."""
    seen: dict[tuple[str, int, str], int] = {}
    first: list[Hit] = []
    rest: list[Hit] = []
    for hit in hits:
        page = (hit.source, hit.page, hit.location)
        seen[page] = seen.get(page, 0) + 1
        (first if seen[page] <= per_page else rest).append(hit)
    return first + rest


def _same_language(query: str, hit: Hit) -> bool:
    return is_korean(query) == is_korean(hit.text)


def rrf(ranked: list[tuple[list[str], float]]) -> list[str]:
    """Weighted reciprocal rank fusion: score(d) = sum of weight / (60 + rank of d) over the lists."""
    scores: dict[str, float] = {}
    for ids, weight in ranked:
        for rank, cid in enumerate(ids, start=1):
            scores[cid] = scores.get(cid, 0.0) + weight / (RRF_K + rank)
    return sorted(scores, key=lambda cid: -scores[cid])


def convex(hits: list[Hit], keyword: dict[str, float], alpha: float) -> list[Hit]:
    """Convex combination of scores: alpha * cosine + (1 - alpha) * BM25 / best BM25 among the candidates.
    Unlike RRF it keeps how far apart the scores are, which matters when one retriever is much surer."""
    top = max(keyword.values(), default=0.0) or 1.0
    value = {h.chunk_id: alpha * h.score + (1 - alpha) * keyword.get(h.chunk_id, 0.0) / top for h in hits}
    return sorted(hits, key=lambda h: -value[h.chunk_id])


def mmr(hits: list[Hit], vectors: dict[str, np.ndarray], query: np.ndarray, k: int, lam: float) -> list[Hit]:
    """Maximal marginal relevance: pick hits relevant to the query and unlike those already picked."""
    pool = [h for h in hits if h.chunk_id in vectors]
    if len(pool) <= 1:
        return hits
    matrix = np.stack([vectors[h.chunk_id] for h in pool])
    matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-9)
    relevance = np.array([h.score for h in pool])
    chosen: list[int] = []
    while len(chosen) < min(k, len(pool)):
        if chosen:
            redundancy = (matrix @ matrix[chosen].T).max(axis=1)
        else:
            redundancy = np.zeros(len(pool))
        value = lam * relevance - (1 - lam) * redundancy
        value[chosen] = -np.inf
        chosen.append(int(np.argmax(value)))
    return [pool[i] for i in chosen]
