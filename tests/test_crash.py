"""Crash safety with real processes: ``python ingest.py`` and ``python app.py`` killed with SIGKILL inside a write,
then the plain re-run (or restart) must leave the store, its keyword index and its manifest in agreement
(``tests.crashes.check_store``). The kills land at hold points (``tests/crashes.py``), so each test knows where.
The long version, with random kill times: ``bench/crash.py``."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from tests import crashes
from tests.crashes import (
    check_copy,
    check_store,
    child_env,
    kill9,
    phase_at,
    post,
    read_marks,
    start_app,
    start_child,
    stop_app,
    upload_files,
    wait_for_mark,
)

# Files parsed in a thread of the ingest process (no per-file limits, so no worker processes to start): each
# run takes seconds less. bench/crash.py runs with the defaults (parse workers).
QUICK = {"RAG_INGEST__FILE_TIMEOUT": "0", "RAG_INGEST__FILE_MEMORY_MB": "0"}


def rerun(folder: Path, store: Path, tmp: Path) -> tuple[dict, str]:
    """The plain ``python ingest.py FOLDER --json`` after a crash: it must exit 0."""
    code, _, report, output = crashes.run_ingest(folder, store, tmp / "log.txt", extra=QUICK)
    assert code == 0, output
    return report, output


def kill_at(hold: str, folder: Path, store: Path, tmp: Path) -> str:
    """Run ``ingest.py FOLDER`` traced, kill it at the hold point; the phase the kill landed in."""
    marks = tmp / f"{hold}.marks"
    proc = start_child("ingest.py", [str(folder)], marks, child_env(store, hold=hold, extra=QUICK), tmp / "log.txt")
    try:
        assert wait_for_mark(marks, f"hold:{hold}", 120, proc) is not None, (tmp / "log.txt").read_text()
    finally:
        if proc.poll() is None:
            kill9(proc)
    return phase_at(read_marks(marks), float("inf"))


def files_of(folder: Path, words: dict[str, str]) -> dict[Path, str]:
    return {folder / name: word for name, word in words.items() if (folder / name).exists()}


def test_ingest_killed_inside_each_write_is_repaired_by_the_next_run(tmp_path, embedder):
    folder, store = tmp_path / "docs", tmp_path / "store"
    words = crashes.write_corpus(folder, pages=(1, 1), korean_pages=1)

    # 1. a fresh ingest killed after the first batch of a document's chunks reached Chroma
    assert kill_at("upsert", folder, store, tmp_path) == "upsert (held)"
    left = check_copy(store, tmp_path / "left")
    assert any("which the manifest does not name" in p for p in left.problems)  # chunks, no manifest entry yet
    report, output = rerun(folder, store, tmp_path)
    assert len(report["added"]) == 3
    assert check_store(store, files_of(folder, words), embedder).problems == []

    # 2. a re-ingest (a file rewritten, one deleted) killed with the new chunks written and the old ones not yet
    #    deleted; then the rewritten file is put back as it was (an undo): the manifest names that version, so
    #    without the store's journal the next run skipped it and the other version's chunks stayed searchable
    first, second = sorted(words)[:2]
    original = (folder / second).read_bytes()
    new = crashes.write_corpus(tmp_path / "edition", pages=(1, 1), korean_pages=1, edition=1)
    shutil.copyfile(tmp_path / "edition" / second, folder / second)
    (folder / first).unlink()
    assert kill_at("delete", folder, store, tmp_path) == "delete (held)"
    left = check_copy(store, tmp_path / "left")
    assert any("the manifest does not name" in p for p in left.problems)  # both versions' chunks in Chroma
    (folder / second).write_bytes(original)
    report, output = rerun(folder, store, tmp_path)
    assert "was being written when a process stopped" in output
    assert report["added"] == [second]  # removed on opening the store, so added afresh
    assert check_store(store, files_of(folder, words), embedder).problems == []

    # 3. the Korean file rewritten, the run killed between the keyword index's two files (tokens renamed, not
    #    its meta.json): the next run finds the index out of step with the manifest and rebuilds it
    shutil.copyfile(tmp_path / "edition" / "누리별 보고서.pdf", folder / "누리별 보고서.pdf")
    assert kill_at("bm25", folder, store, tmp_path) == "bm25 (held)"
    report, output = rerun(folder, store, tmp_path)
    assert "rebuilding it from the stored chunks" in output
    assert report["updated"] == [] and "누리별 보고서.pdf" in report["skipped"]
    assert check_store(store, files_of(folder, words), embedder).problems == []
    assert new  # the rewritten versions were used


def test_app_killed_mid_upload_restarts_consistent_and_takes_the_upload_again(tmp_path, embedder):
    corpus, store, uploads, marks = tmp_path / "docs", tmp_path / "store", tmp_path / "uploads", tmp_path / "marks"
    words = crashes.write_corpus(corpus, pages=(1,), korean_pages=1)
    files = sorted(corpus.glob("*.pdf"))
    proc, url = start_app(tmp_path, store, uploads, marks, hold="stage")
    threading.Thread(target=lambda: _post_quietly(post, url, files), daemon=True).start()
    try:
        assert wait_for_mark(marks, "hold:stage", 120, proc) is not None
    finally:
        kill9(proc)
    # killed with the first copy in the upload folder, not yet ingested
    assert [p.name for p in upload_files(uploads)] == [files[0].name]
    assert check_copy(store, tmp_path / "left").problems == []

    proc, url = start_app(tmp_path, store, uploads, marks)
    try:
        report = post(url, files)
    finally:
        stop_app(proc)
    assert report["failed"] == [] and sorted(report["added"]) == sorted(words)
    assert check_store(store, {uploads / name: word for name, word in words.items()}, embedder).problems == []
    assert sorted(p.name for p in upload_files(uploads)) == sorted(words)


def _post_quietly(post, url: str, files: list[Path]) -> None:
    try:
        post(url, files)
    except Exception:  # noqa: BLE001 - the app is killed mid-request
        pass


def test_a_write_that_raised_half_way_is_undone_before_the_next_one(make_rag, tmp_path, embedder):
    """In one process: a document's new chunks written, then deleting its old ones fails (a full disk, say). The
    journal still names it, so the next write removes it first: no mix of two versions is left searchable."""
    from tests.conftest import NURIBYEOL, ZORBLAX
    from tests.pdfs import write_pdf

    rag = make_rag()
    first = write_pdf(tmp_path / "docs" / "first.pdf", ZORBLAX)
    second = write_pdf(tmp_path / "docs" / "second.pdf", NURIBYEOL)
    rag.ingest([first])
    write_pdf(first, ["Completely new text about the Sorvane bridge, opened in 2021."])
    delete_ids = rag.store._delete_ids

    def failing(col, ids):
        if ids:
            raise OSError(28, "No space left on device")
        delete_ids(col, ids)

    rag.store._delete_ids = failing
    assert [f.file for f in rag.ingest([first]).failed] == ["first.pdf"]
    rag.store._delete_ids = delete_ids
    assert rag.ingest([second]).added == ["second.pdf"]
    assert rag.document("first.pdf") is None  # removed, to be added afresh by the next ingest
    assert check_store(rag.settings.store.path, {second: "누리별"}, embedder).problems == []
    assert rag.ingest([first]).added == ["first.pdf"]
    assert check_store(rag.settings.store.path, {first: "Sorvane", second: "누리별"}, embedder).problems == []
