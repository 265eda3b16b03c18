"""``python ingest.py --watch FOLDER`` in a real subprocess: add, change, re-save unchanged, delete, then Ctrl-C."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

from rag import Rag
from rag.config import load_config
from tests.conftest import ROOT

WAIT = 240  # seconds; the first ingest loads the embedding model on a shared machine


class Lines:
    """Lines of a stream, read in a thread, so a test can wait for one with a timeout."""

    def __init__(self, stream) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))

    def drain(self) -> list[str]:
        while not self._queue.empty():
            self.seen.append(self._queue.get())
        return self.seen

    def wait_for(self, text: str) -> str:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=1)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {WAIT}s; saw:\n" + "\n".join(self.seen))


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_watch_adds_updates_skips_deletes_and_stops_on_ctrl_c(tmp_path, embedder, stop):
    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "bridge.txt").write_text("The Sorvane bridge opened in 2021.", encoding="utf-8")
    store = tmp_path / "store"
    env = {**os.environ, "RAG_STORE__PATH": str(store), "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
    # Started with SIGINT ignored, as a shell does for background jobs: the watch must stop on it all the same.
    proc = subprocess.Popen([sys.executable, "ingest.py", "--watch", str(folder)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8",
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        out = Lines(proc.stdout)
        out.wait_for("added bridge.txt")
        out.wait_for("watching")

        (folder / "plant.md").write_text("# Power\n\nThe Quillon-7 reactor produces 418 megawatts.\n", encoding="utf-8")
        out.wait_for("added plant.md")

        (folder / "bridge.txt").write_text("The Sorvane bridge opened in 2022, a year late.", encoding="utf-8")
        out.wait_for("updated bridge.txt")

        (folder / "bridge.txt").write_text("The Sorvane bridge opened in 2022, a year late.", encoding="utf-8")
        out.wait_for("skipped bridge.txt")  # saved again with the same bytes: nothing to do

        (folder / "plant.md").unlink()
        out.wait_for("deleted plant.md")

        proc.send_signal(stop)
        try:
            code = proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack: say where it hung
            proc.wait(timeout=30)
            time.sleep(1)
            raise AssertionError("watch did not stop on Ctrl-C:\n" + "\n".join(out.drain())) from None
        assert code == 0, "\n".join(out.drain())
        out.wait_for("stopped watching")
        assert not any("Traceback" in line for line in out.seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    rag = Rag(load_config(environ={"RAG_STORE__PATH": str(store)}), embedder=embedder)
    assert [d.source for d in rag.store.documents()] == ["bridge.txt"]
    [hit] = rag.retriever.search("When did the Sorvane bridge open?", k=1)
    assert "2022, a year late" in hit.text


def test_sync_deletes_only_documents_whose_own_file_is_gone(make_rag, tmp_path):
    watched, elsewhere = tmp_path / "watched", tmp_path / "elsewhere"
    watched.mkdir()
    elsewhere.mkdir()
    (watched / "keep.txt").write_text("The Calloway Bay plant is planned for 2029.", encoding="utf-8")
    (watched / "gone.txt").write_text("Lunch is served from noon.", encoding="utf-8")
    (elsewhere / "other.txt").write_text("The canteen opens at eight.", encoding="utf-8")
    rag = make_rag()
    rag.ingestor.ingest([watched, elsewhere])
    (watched / "gone.txt").unlink()
    (elsewhere / "other.txt").unlink()  # not under the watched folder: not ours to delete

    watcher = rag.watch(watched)
    batch = watcher.sync()
    assert batch.deleted == ["gone.txt"]
    assert batch.report.skipped == ["keep.txt"]
    assert sorted(d.source for d in rag.store.documents()) == ["keep.txt", "other.txt"]

    (watched / "sub").mkdir()
    (watched / "sub" / "new.md").write_text("# New\n\nA new note.", encoding="utf-8")
    batch = watcher.apply([watched / "sub" / "new.md", watched / "keep.txt", watched / "missing.txt"])
    assert (batch.report.added, batch.report.skipped, batch.deleted) == (["new.md"], ["keep.txt"], [])


@pytest.mark.parametrize("argv, message", [
    (["--watch", "no-such-folder"], "not a folder"),
    ([], "nothing to ingest"),
])
def test_watch_and_ingest_argument_errors(argv, message, capsys, tmp_path, monkeypatch):
    from rag.cli import ingest_main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAG_STORE__PATH", str(tmp_path / "store"))
    assert ingest_main(argv) == 2
    assert message in capsys.readouterr().err
