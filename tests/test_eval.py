"""`python -m rag eval`: metrics on a small QA set over the test corpus and the cached store; the plain-LangChain
baseline of bench/eval_baseline.py on the same set."""

import json
import subprocess
import sys

from rag.cli import main
from rag.config import load_config
from rag.eval.retrieval import Question, cached_store, sample
from tests.conftest import ROOT


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
    argv = ["eval", str(qa), "--docs", str(corpus), "--cache", str(cache), "--json", "--details"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    hybrid = report["results"]["hybrid"]
    assert (hybrid["answerable"], hybrid["unanswerable"]) == (3, 1)
    assert hybrid["page_recall@1"] == 1.0 and hybrid["mrr@10"] == 1.0 and hybrid["doc_recall@5"] == 1.0
    assert hybrid["refused_answerable"] == 0.0 and hybrid["refused_unanswerable"] == 1.0
    assert 0 < hybrid["latency_ms_p50"] <= hybrid["latency_ms_p95"]
    assert set(report["results"]) == {"vector", "bm25", "hybrid"}
    ranks = {row["id"]: row["page_rank"] for row in report["questions"]["hybrid"]}
    assert ranks["en-1"] == ranks["ko-1"] == 1

    stores = sorted(p.name for p in cache.iterdir())
    assert len(stores) == 1
    assert main([*argv[:-2], "--modes", "bm25"]) == 0  # the table; the store is reused, not ingested again
    out = capsys.readouterr()
    assert "bm25" in out.out and "added" not in out.err
    assert sorted(p.name for p in cache.iterdir()) == stores


def test_the_langchain_baseline_is_measured_on_the_same_set(corpus, tmp_path):
    qa = write_qa(tmp_path / "qa.jsonl", QA)
    cache = tmp_path / "cache"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "eval_baseline.py"), str(qa), "--docs", str(corpus),
                          "--cache", str(cache), "--json"], capture_output=True, text=True, timeout=600, check=True)
    report = json.loads(run.stdout)
    baseline = report["results"]["baseline (LangChain)"]
    assert (baseline["answerable"], baseline["unanswerable"]) == (3, 1)
    assert baseline["doc_recall@5"] >= 2 / 3 and 0.0 <= baseline["page_recall@5"] <= 1.0
    ours = cached_store(cache, corpus, load_config())  # where `rag eval` keeps its store for the same settings
    assert [p.name for p in cache.iterdir()] == [f"baseline-{ours.name}"]


def test_a_sample_spreads_over_the_answerable_questions_and_keeps_every_unanswerable_one():
    questions = [Question(str(i), f"q{i}", "a.pdf", (1,), answerable=i < 10) for i in range(13)]
    chosen = sample(questions, 4)
    assert [q.id for q in chosen] == ["0", "2", "5", "7", "10", "11", "12"]
    assert sample(questions, 50) == questions
