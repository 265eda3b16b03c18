"""Retrieval evaluation on a QA set: page- and document-level recall, MRR, refusal rates, latency.

QA.jsonl rows (../shared/eval/README.md): ``question``, ``doc`` (file name), ``pages`` (1-based gold pages),
``answerable`` (default true). A hit is right at page level when its document and page are gold, at document
level when its document is. Refusal rates use the same decision as ``ask``: relevance below
``retrieval.min_score`` (no model is called here).
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.types import Hit

if TYPE_CHECKING:
    from rag.api import Rag
    from rag.config import Settings

CUTOFFS = (1, 5, 10)


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    doc: str | None
    pages: tuple[int, ...]
    answerable: bool
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class Outcome:
    question: Question
    ranked: list[tuple[str, int]]  # (source, page) of the top hits, best first
    relevance: float
    seconds: float

    def page_rank(self) -> int | None:
        for rank, (source, page) in enumerate(self.ranked, start=1):
            if source == self.question.doc and page in self.question.pages:
                return rank
        return None

    def doc_hit(self, k: int) -> bool:
        return any(source == self.question.doc for source, _ in self.ranked[:k])


def load_questions(path: str | Path) -> list[Question]:
    questions = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        questions.append(Question(
            id=str(row.get("id", n)), question=row["question"], doc=row.get("doc"),
            pages=tuple(int(p) for p in row.get("pages") or ()), answerable=bool(row.get("answerable", True)),
            extra={k: v for k, v in row.items() if k not in {"id", "question", "doc", "pages", "answerable"}},
        ))
    return questions


def sample(questions: list[Question], n: int) -> list[Question]:
    """``n`` answerable questions spread evenly over the set (every k-th), and all the unanswerable ones: a
    cheaper run (answering takes seconds per question) that still covers every part of the set and refusals."""
    answerable = [q for q in questions if q.answerable]
    step = max(len(answerable) / max(n, 1), 1.0)
    chosen = {answerable[int(i * step)].id for i in range(min(n, len(answerable)))}
    return [q for q in questions if q.id in chosen or not q.answerable]


def run(questions: Iterable[Question], search: Callable[[str], list[Hit]],
        relevance: Callable[[str, list[Hit]], float] | None = None) -> list[Outcome]:
    outcomes = []
    for q in questions:
        started = time.perf_counter()
        hits = search(q.question)
        seconds = time.perf_counter() - started
        score = relevance(q.question, hits) if relevance else 1.0
        outcomes.append(Outcome(q, [(h.source, h.page) for h in hits], score, seconds))
    return outcomes


def measure(rag: Rag, questions: list[Question], modes: Iterable[str], k: int = 5) -> dict[str, list[Outcome]]:
    """Each question searched in each retrieval mode (top 10 kept for the metrics), with the relevance ``ask``
    would compare with ``retrieval.min_score`` over the ``k`` passages it uses."""
    depth = max(k, 10)
    return {mode: run(questions, lambda q, m=mode: rag.search(q, k=depth, mode=m),
                      lambda q, hits: rag.retriever.relevance(q, hits[:k])) for mode in modes}


def summarise(outcomes: list[Outcome], min_score: float | None) -> dict[str, Any]:
    answerable = [o for o in outcomes if o.question.answerable and o.question.doc]
    unanswerable = [o for o in outcomes if not o.question.answerable]
    ranks = [o.page_rank() for o in answerable]
    n = max(len(answerable), 1)
    latencies = sorted(o.seconds * 1000 for o in outcomes)
    summary: dict[str, Any] = {
        "questions": len(outcomes), "answerable": len(answerable), "unanswerable": len(unanswerable),
        **{f"page_recall@{c}": sum(1 for r in ranks if r is not None and r <= c) / n for c in CUTOFFS},
        "mrr@10": sum(1 / r for r in ranks if r is not None and r <= 10) / n,
        "doc_recall@5": sum(1 for o in answerable if o.doc_hit(5)) / n,
        "latency_ms_p50": _percentile(latencies, 50), "latency_ms_p95": _percentile(latencies, 95),
    }
    if min_score is not None:
        summary["refused_answerable"] = sum(1 for o in answerable if o.relevance < min_score) / n
        summary["refused_unanswerable"] = (sum(1 for o in unanswerable if o.relevance < min_score)
                                           / max(len(unanswerable), 1)) if unanswerable else None
    return summary


def details(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    return [{"id": o.question.id, "answerable": o.question.answerable, "doc": o.question.doc,
             "pages": list(o.question.pages), "page_rank": o.page_rank(), "doc_hit@5": o.doc_hit(5),
             "relevance": round(o.relevance, 4), "top": [list(x) for x in o.ranked[:5]],
             **{k: v for k, v in o.question.extra.items() if k in ("page_check", "lang")}} for o in outcomes]


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


def store_key(docs: Path, *parts: object) -> str:
    """A cache folder name for an eval store: the docs folder plus the settings that change what is stored."""
    digest = hashlib.sha256("|".join(str(p) for p in (docs.resolve(), *parts)).encode()).hexdigest()[:10]
    return f"{docs.resolve().parent.name}-{docs.name}-{digest}"


def cached_store(cache: Path, docs: Path, settings: Settings) -> Path:
    """Where the eval store of ``docs`` under ``settings`` is kept in ``cache`` (reused while those settings hold)."""
    from rag.ingest.pipeline import VERSION
    from rag.providers.embeddings import default_model

    ingest, embeddings = settings.ingest, settings.embeddings
    model = embeddings.model or default_model(embeddings.provider)
    # MiniLM stores were keyed by an empty model name before e5 became the default: they keep their key.
    return cache / store_key(docs, VERSION, ingest.chunk_size, ingest.chunk_overlap, ingest.ocr, embeddings.provider,
                             None if model == "all-MiniLM-L6-v2" else model)


def format_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    columns = ["page_recall@1", "page_recall@5", "page_recall@10", "mrr@10", "doc_recall@5",
               "refused_answerable", "refused_unanswerable", "latency_ms_p50", "latency_ms_p95"]
    header = ["run", "p@1", "p@5", "p@10", "MRR", "doc@5", "refuse(ans)", "refuse(unans)", "p50 ms", "p95 ms"]
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for name, summary in rows:
        cells = [name]
        for col in columns:
            value = summary.get(col)
            cells.append("-" if value is None else (f"{value:.1f}" if col.startswith("latency") else f"{value:.3f}"))
        lines.append(" | ".join(cells))
    return "\n".join(lines)
