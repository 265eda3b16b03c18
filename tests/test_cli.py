"""The CLI's user-facing contracts: JSON shapes, exit codes, messages without tracebacks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.cli import ingest_main, main
from tests.conftest import ROOT


@pytest.fixture
def env(settings, monkeypatch):
    monkeypatch.setenv("RAG_STORE__PATH", str(settings.store.path))
    return settings


def run_json(capsys, argv, entry=main):
    code = entry(argv)
    out = capsys.readouterr().out.strip().splitlines()
    return code, [json.loads(line) for line in out]


def test_ingest_json_summary_and_exit_codes(env, capsys, corpus, tmp_path):
    code, [summary] = run_json(capsys, [str(corpus), "--json"], entry=ingest_main)
    assert code == 0
    assert set(summary) >= {"added", "updated", "skipped", "failed"}
    assert sorted(summary["added"]) == ["zorblax-review.pdf", "누리별 항공 보고서.pdf"]

    broken = tmp_path / "broken.pdf"
    broken.write_bytes(os.urandom(2000))
    code, [summary] = run_json(capsys, [str(corpus), str(broken), "--json"], entry=ingest_main)
    assert code == 1
    assert sorted(summary["skipped"]) == ["zorblax-review.pdf", "누리별 항공 보고서.pdf"]
    assert summary["failed"] == [{"file": "broken.pdf", "reason": summary["failed"][0]["reason"]}]
    assert "not a PDF" in summary["failed"][0]["reason"]


def test_search_json_one_line_per_query(env, capsys, corpus):
    ingest_main([str(corpus)])
    capsys.readouterr()
    code, lines = run_json(capsys, ["search", "--json", "-k", "3", "Quillon-7 reactor output", "탑승객 수"])
    assert code == 0 and len(lines) == 2
    first = lines[0]
    assert len(first) == 3
    assert set(first[0]) == {"source", "page", "text", "score"}
    assert (first[0]["source"], first[0]["page"]) == ("zorblax-review.pdf", 3)
    assert first[0]["score"] >= first[1]["score"] >= first[2]["score"]


def test_search_reads_queries_from_stdin(env, capsys, corpus, monkeypatch):
    import io

    ingest_main([str(corpus)])
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO("reactor\n\napprentices trained\n"))
    code, lines = run_json(capsys, ["search", "--json", "-k", "2", "-"])
    assert code == 0 and len(lines) == 2 and all(len(hits) == 2 for hits in lines)


def test_docs_and_delete(env, capsys, corpus):
    ingest_main([str(corpus)])
    capsys.readouterr()
    code, [docs] = run_json(capsys, ["docs", "--json"])
    assert code == 0
    assert {d["source"] for d in docs} == {"zorblax-review.pdf", "누리별 항공 보고서.pdf"}
    assert all(set(d) >= {"source", "doc_id", "pages", "chunks"} for d in docs)
    code, [deleted] = run_json(capsys, ["delete", "zorblax-review.pdf", "--json"])
    assert code == 0 and deleted["deleted"][0]["source"] == "zorblax-review.pdf"
    _, [docs] = run_json(capsys, ["docs", "--json"])
    assert [d["source"] for d in docs] == ["누리별 항공 보고서.pdf"]
    assert main(["delete", "nothing.pdf"]) == 2
    assert "no document named 'nothing.pdf'" in capsys.readouterr().err


def test_ask_refuses_out_of_scope_without_the_model(env, capsys, corpus):
    ingest_main([str(corpus)])
    capsys.readouterr()
    code, [answer] = run_json(capsys, ["ask", "--json", "What is the boiling point of mercury in Kelvin?"])
    assert code == 0
    assert answer["refused"] is True
    assert answer["sources"] == []
    assert answer["usage"] == {"prompt_tokens": 0, "completion_tokens": 0}
    code, [answer] = run_json(capsys, ["ask", "--json", "프랑스 혁명은 몇 년에 일어났나요?"])
    assert answer["refused"] is True and "문서" in answer["answer"]


def test_config_errors_are_one_clear_message(capsys, tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("retrieval:\n  kk: 3\n")
    assert main(["docs", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "retrieval.kk: unknown key" in err and "Traceback" not in err


def test_entry_points_run_as_scripts(tmp_path, corpus):
    """The real `python ingest.py` and `python -m rag` processes: exit codes, stdout JSON, no traceback."""
    env = {**os.environ, "RAG_STORE__PATH": str(tmp_path / "store"), "PYTHONPATH": str(ROOT)}
    (tmp_path / "fake.pdf").write_text("<!doctype html><title>x</title>")
    proc = subprocess.run([sys.executable, "ingest.py", str(corpus), str(tmp_path / "fake.pdf"), "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    assert [f["file"] for f in summary["failed"]] == ["fake.pdf"]
    assert "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "rag", "docs", "--json"], cwd=Path("/"), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 2
