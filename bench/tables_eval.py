"""Does table-aware PDF text (``ingest.pdf_tables``) help page-level retrieval on the dev-en SEC filings?

Ingests the N shortest filings that have a question into a temporary store twice, once per mode, with everything
else the same (chunking, embeddings, retrieval), runs each question through ``Rag.retriever.search`` and
reports page recall@k: the share of questions with a gold page among the top k hits, searching all the ingested
filings ("global") and only the question's own filing ("in-doc").

    python bench/tables_eval.py [--docs 16] [--k 5] [--eval ../shared/eval/dev-en]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recall import gold_page_found  # bench/recall.py

from rag import offline_defaults


def pages_of(pdf: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(pdf).pages)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval", default=str(Path(__file__).resolve().parents[2] / "shared/eval/dev-en"))
    parser.add_argument("--docs", type=int, default=16, help="how many filings (the shortest ones with a question)")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--modes", default="plain,tables")
    args = parser.parse_args()
    offline_defaults()
    import logging

    logging.disable(logging.WARNING)
    from rag import Rag
    from rag.config import load_config
    from rag.providers import build_embedder

    root = Path(args.eval)
    rows = [json.loads(line) for line in (root / "qa.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r.get("doc") and r.get("pages")]
    docs = sorted({r["doc"] for r in rows}, key=lambda d: (pages_of(root / "pdfs" / d), d))[: args.docs]
    rows = [r for r in rows if r["doc"] in docs]
    print(f"{len(docs)} filings, {sum(pages_of(root / 'pdfs' / d) for d in docs)} pages, {len(rows)} questions",
          flush=True)
    embedder = None
    results = {}
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            settings = load_config(environ={"RAG_STORE__PATH": tmp, "RAG_INGEST__PDF_TABLES": str(mode == "tables")})
            if embedder is None:
                embedder = build_embedder(settings.embeddings)
            rag = Rag(settings, embedder=embedder)
            start = time.perf_counter()
            report = rag.ingestor.ingest([root / "pdfs" / d for d in docs])
            seconds = time.perf_counter() - start
            assert not report.failed, report.failed
            chunks = rag.store.count()
            found_global = found_doc = 0
            for r in rows:
                everywhere, own = gold_page_found(rag, r, args.k)
                found_global += everywhere
                found_doc += own
            results[mode] = {"chunks": chunks, "ingest_s": round(seconds, 1),
                             f"page_recall@{args.k}_global": round(found_global / len(rows), 3),
                             f"page_recall@{args.k}_in_doc": round(found_doc / len(rows), 3),
                             "hits_global": found_global, "hits_in_doc": found_doc, "questions": len(rows)}
            print(mode, json.dumps(results[mode]), flush=True)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
