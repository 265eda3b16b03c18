"""Refusal calibration: the relevance signal's parts for every question of a QA set, and refusal rates by threshold.

    .venv/bin/python bench/calibrate.py ../shared/eval/dev-en/qa.jsonl --store .eval-cache/<store>

Run `python -m rag eval` first (it builds the store). For each question: the best cosine among the top 3 hits,
the best keyword coverage among them (IDF-weighted share of the question's terms in the chunk), and the
relevance `Retriever.relevance` computes from them; then, for thresholds from 0 to 1, the share of answerable
questions refused and of unanswerable questions refused. Pick `retrieval.min_score` where almost no answerable
question is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from rag import offline_defaults  # noqa: E402

offline_defaults()

from rag import Rag  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.eval.retrieval import load_questions  # noqa: E402


def unknown_share(keyword, query: str) -> float:
    """The IDF-weighted share of the query's terms that no chunk contains at all."""
    weights = keyword.weights(query)
    norm = sum(w for w, _ in weights.values()) or 1.0
    return sum(w for w, df in weights.values() if df == 0) / norm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("qa", type=Path, nargs="+")
    parser.add_argument("--store", type=Path, action="append", required=True, help="one per QA file, same order")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    rows = []
    for qa, store in zip(args.qa, args.store):
        rag = Rag(load_config(environ={"RAG_STORE__PATH": str(store)}))
        for q in load_questions(qa):
            hits = rag.retriever.search(q.question)
            top = hits[:3]
            keyword = rag.store.keyword
            coverage = keyword.coverage(q.question, [h.chunk_id for h in top]) if top else [0.0]
            rows.append({"set": qa.parent.name, "id": q.id, "answerable": q.answerable,
                         "cosine": max((h.score for h in top), default=0.0), "coverage": max(coverage),
                         "unknown": unknown_share(keyword, q.question),
                         "relevance": rag.retriever.relevance(q.question, hits), "question": q.question[:80]})

    for row in sorted(rows, key=lambda r: r["relevance"]):
        print(f"{row['set']:7s} {'ANS ' if row['answerable'] else 'UNANS'} rel {row['relevance']:.3f} "
              f"cos {row['cosine']:.3f} cov {row['coverage']:.3f} "
              f"unknown {row['unknown']:.3f}  {row['question']}")
    print("\nthreshold  refused(answerable)  refused(unanswerable)")
    for step in range(0, 21):
        threshold = step / 20
        for name in sorted({r["set"] for r in rows}):
            ans = [r for r in rows if r["set"] == name and r["answerable"]]
            unans = [r for r in rows if r["set"] == name and not r["answerable"]]
            ra = sum(r["relevance"] < threshold for r in ans) / max(len(ans), 1)
            ru = sum(r["relevance"] < threshold for r in unans) / max(len(unans), 1)
            print(f"{threshold:9.2f}  {name:7s} {ra:8.3f} {ru:8.3f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
