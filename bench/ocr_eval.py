"""OCR on the Korean dev set: which gold pages lack a usable text layer, and does OCR make the answers findable?

For each ``ingest.ocr`` mode (``never`` is the behaviour before OCR existed), ingests all dev-ko PDFs into a
temporary store and reports page recall@k (a gold page among the top k hits of ``Rag.retriever.search``, over
all documents and within the question's own document) for: all answerable rows, the rows whose ``page_check``
is not ``ok``, and the rows whose gold page has no usable text layer by ``rag.ocr.text_layer_problem``. It also
reports how many of the numbers in the reference answers appear in the gold pages' indexed text.

    python bench/ocr_eval.py [--modes never,auto,always,auto/plain] [--k 5] [--eval ../shared/eval/dev-ko]

A mode ``X/plain`` is ``ingest.ocr: X`` with ``ingest.pdf_tables: false`` (plain pypdf text, no table rewriting).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recall import gold_page_found  # bench/recall.py

NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval", default=str(Path(__file__).resolve().parents[2] / "shared/eval/dev-ko"))
    parser.add_argument("--modes", default="never,auto,always,auto/plain")
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()

    from rag import offline_defaults

    offline_defaults()
    import logging

    logging.disable(logging.WARNING)
    from pypdf import PdfReader

    from rag import Rag
    from rag.config import load_config
    from rag.ingest.ocr import text_layer_problem
    from rag.providers import build_embedder

    root = Path(args.eval)
    rows = [json.loads(line) for line in (root / "qa.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    print("page_check values:", dict(collections.Counter(r.get("page_check") for r in rows)), flush=True)
    rows = [r for r in rows if r.get("doc") and r.get("pages")]
    pdfs = sorted((root / "pdfs").glob("*.pdf"))

    problems: dict[tuple[str, int], str] = {}
    for pdf in pdfs:
        for number, page in enumerate(PdfReader(pdf).pages, start=1):
            problem = text_layer_problem(page.extract_text() or "")
            if problem:
                problems[(pdf.name, number)] = problem
    gold_flagged = [r for r in rows if any((r["doc"], p) in problems for p in r["pages"])]
    print(f"{len(pdfs)} PDFs; pages without a usable text layer: {len(problems)} "
          f"{sorted(problems.items())}; answerable rows with such a gold page: {len(gold_flagged)}", flush=True)
    groups = {"all answerable": rows,
              "page_check != ok": [r for r in rows if r.get("page_check") not in ("ok", None)],
              "gold page without usable text layer": gold_flagged}

    embedder = None
    results: dict[str, dict[str, object]] = {}
    for mode in args.modes.split(","):
        ocr, _, variant = mode.partition("/")  # "auto/plain": auto OCR with ingest.pdf_tables off
        with tempfile.TemporaryDirectory() as tmp:
            settings = load_config(environ={"RAG_STORE__PATH": tmp, "RAG_INGEST__OCR": ocr,
                                            "RAG_INGEST__PDF_TABLES": str(variant != "plain")})
            embedder = embedder or build_embedder(settings.embeddings)
            rag = Rag(settings, embedder=embedder)
            start = time.perf_counter()
            report = rag.ingestor.ingest(pdfs)
            seconds = time.perf_counter() - start
            assert not report.failed, report.failed
            texts: dict[tuple[str, int], str] = collections.defaultdict(str)
            for chunk in rag.store.all_chunks():
                texts[(chunk.source, chunk.page)] += " " + chunk.text
            out: dict[str, object] = {"ingest_s": round(seconds, 1), "chunks": rag.store.count(),
                                      "ocr_pages": sum(d.ocr_pages for d in rag.store.documents()),
                                      "warnings": report.warnings}
            for name, group in groups.items():
                if not group:
                    out[name] = "no rows"
                    continue
                found_all = found_doc = numbers = numbers_found = 0
                for r in group:
                    gold = set(r["pages"])
                    everywhere, own = gold_page_found(rag, r, args.k)
                    found_all += everywhere
                    found_doc += own
                    page_text = " ".join(texts[(r["doc"], p)] for p in gold)
                    wanted = set(NUMBER.findall(r["answer"]))
                    numbers += len(wanted)
                    numbers_found += sum(1 for n in wanted if n in page_text)
                out[name] = {"rows": len(group), f"page_recall@{args.k}": round(found_all / len(group), 3),
                             f"page_recall@{args.k}_in_doc": round(found_doc / len(group), 3),
                             "answer_numbers_on_gold_page": f"{numbers_found}/{numbers}"}
            results[mode] = out
            print(mode, json.dumps(out, ensure_ascii=False), flush=True)
    print(json.dumps(results, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
