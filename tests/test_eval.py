"""`python -m rag eval`: metrics on a small QA set over the test corpus, the cached store, and the baseline."""

import json

from rag.cli import main


def write_qa(path, rows):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return path


QA = [
    {"id": "en-1", "question": "How many megawatts does the Quillon-7 reactor at Vessmark produce?",
     "doc": "zorblax-review.pdf", "pages": [3]},
    {"id": "en-2", "question": "How many apprentices did Zorblax Dynamics train in 2023?",
     "doc": "zorblax-review.pdf", "pages": [2]},
    {"id": "ko-1", "question": "누리별 항공의 2023년 탑승객 수는?", "doc": "누리별 항공 보고서.pdf", "pages": [2]},
    {"id": "un-1", "question": "What was Tesla's revenue in 2022?", "answerable": False},
]


def test_eval_reports_recall_refusals_and_latency_and_reuses_its_store(corpus, tmp_path, capsys):
    qa = write_qa(tmp_path / "qa.jsonl", QA)
    cache = tmp_path / "cache"
    argv = ["eval", str(qa), "--docs", str(corpus), "--cache", str(cache), "--json", "--details", "--baseline"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    hybrid = report["results"]["hybrid"]
    assert (hybrid["answerable"], hybrid["unanswerable"]) == (3, 1)
    assert hybrid["page_recall@1"] == 1.0 and hybrid["mrr@10"] == 1.0 and hybrid["doc_recall@5"] == 1.0
    assert hybrid["refused_answerable"] == 0.0 and hybrid["refused_unanswerable"] == 1.0
    assert 0 < hybrid["latency_ms_p50"] <= hybrid["latency_ms_p95"]
    assert set(report["results"]) == {"vector", "bm25", "hybrid", "baseline (LangChain)"}
    assert 0.0 <= report["results"]["baseline (LangChain)"]["page_recall@5"] <= 1.0
    ranks = {row["id"]: row["page_rank"] for row in report["questions"]["hybrid"]}
    assert ranks["en-1"] == ranks["ko-1"] == 1

    stores = sorted(p.name for p in cache.iterdir())
    assert len(stores) == 2 and stores[0] == f"baseline-{stores[1]}"  # the eval store and the baseline's
    assert main([*argv[:-3], "--modes", "bm25"]) == 0  # the table; the store is reused, not ingested again
    out = capsys.readouterr()
    assert "bm25" in out.out and "added" not in out.err
    assert sorted(p.name for p in cache.iterdir()) == stores
