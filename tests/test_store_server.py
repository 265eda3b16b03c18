"""The store on a real Chroma server (``chroma run``), shared by several ``Rag`` objects, each with its own Store,
catalog copy and keyword index: what a replica or an ingest worker on another machine would have."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rag import Rag
from rag.config import load_config
from rag.errors import ConfigError, StoreError
from rag.search.store import Store
from tests.conftest import ROOT, ZORBLAX
from tests.pdfs import write_pdf
from tests.servers.running import ServerProcess, free_port

CHROMA = Path(sys.executable).with_name("chroma")
SETTLE = 8.0  # seconds a change may take to reach another replica (sync_seconds is 1)

pytestmark = pytest.mark.skipif(not CHROMA.exists(), reason="the chroma CLI (chromadb) is not installed")


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    server = ServerProcess([str(CHROMA), "run", "--path", str(folder / "db"), "--host", "127.0.0.1", "--port",
                            str(port)], port, "/api/v2/heartbeat", folder / "server.log",
                           env={"ANONYMIZED_TELEMETRY": "False"})
    with server:
        yield server.url


@pytest.fixture
def replicas(chroma_url: str, tmp_path: Path, embedder, chat, request) -> Callable[[], Rag]:
    """Make Rags on one collection of the server (a new collection per test); each has its own local folder."""
    collection = "t-" + request.node.name.replace("_", "-")[:50].strip("-")
    made = 0

    def make() -> Rag:
        nonlocal made
        made += 1
        settings = load_config(environ={"RAG_STORE__URL": chroma_url, "RAG_STORE__COLLECTION": collection,
                                        "RAG_STORE__PATH": str(tmp_path / f"replica-{made}"),
                                        "RAG_APP__UPLOAD_DIR": str(tmp_path / "uploads")})
        return Rag(settings, embedder=embedder, chat=chat)

    return make


def eventually(check: Callable[[], bool], timeout: float = SETTLE) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s: {check.__doc__ or check}")
        time.sleep(0.2)


def top(rag: Rag, query: str, mode: str, k: int = 1) -> list[tuple[str, int]]:
    return [(h.source, h.page) for h in rag.search(query, k=k, mode=mode)]


def test_a_replica_finds_what_another_ingested_and_loses_what_it_deleted(replicas, corpus):
    writer, reader = replicas(), replicas()
    assert reader.search("Quillon-7 reactor", mode="bm25") == []  # the reader's keyword index exists, empty
    report = writer.ingest([corpus])
    assert sorted(report.added) == ["zorblax-review.pdf", "누리별 항공 보고서.pdf"]
    expected = [("zorblax-review.pdf", 3)]
    eventually(lambda: top(reader, "Quillon-7 reactor megawatts", "bm25") == expected)
    assert top(reader, "Quillon-7 reactor megawatts", "vector") == expected
    assert top(reader, "누리별 항공의 탑승객 수는?", "hybrid") == [("누리별 항공 보고서.pdf", 2)]
    assert [d.source for d in reader.documents()] == [d.source for d in writer.documents()]
    late = replicas()  # started after the ingest: its keyword index is built from Chroma
    assert top(late, "Quillon-7 reactor megawatts", "bm25") == expected
    assert late.store.count() == sum(d.chunks for d in writer.documents())

    reader.delete("zorblax-review.pdf")
    for rag in (writer, late):
        eventually(lambda rag=rag: [d.source for d in rag.documents()] == ["누리별 항공 보고서.pdf"])
        assert all(s != "zorblax-review.pdf" for mode in ("bm25", "vector", "hybrid")
                   for s, _ in top(rag, "Quillon-7 reactor megawatts", mode, k=5))
        assert rag.store.keyword.ids_of({"zorblax-review.pdf"}) == []
    assert writer.store.count() == writer.documents()[0].chunks


def test_re_ingesting_an_unchanged_folder_on_a_second_worker_writes_nothing(replicas, corpus):
    first, second = replicas(), replicas()
    first.ingest([corpus])
    report = second.ingest([corpus])
    assert sorted(report.skipped) == ["zorblax-review.pdf", "누리별 항공 보고서.pdf"]
    assert not second.embedder.built


def test_two_workers_ingesting_the_same_pdf_at_once_leave_one_copy(replicas, tmp_path):
    path = write_pdf(tmp_path / "same" / "report.pdf", ZORBLAX)
    workers = [replicas(), replicas()]
    start = threading.Barrier(len(workers))
    reports, errors = [], []

    def run(rag: Rag) -> None:
        try:
            start.wait()
            reports.append(rag.ingest([path]))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(rag,)) for rag in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == [] and len(reports) == 2
    reader = replicas()
    documents = reader.documents()
    assert [d.source for d in documents] == ["report.pdf"]
    ids = reader.store._chunk_ids("report.pdf")
    assert len(ids) == len(set(ids)) == documents[0].chunks == reader.store.count()
    assert len(reader.store.keyword) == documents[0].chunks
    assert top(reader, "Quillon-7 reactor megawatts", "hybrid") == [("report.pdf", 3)]


def test_two_processes_ingesting_the_same_file_at_once_leave_one_copy(chroma_url, tmp_path):
    """Real worker processes (``python ingest.py``), each with its own Chroma client and catalog copy."""
    path = tmp_path / "notes.txt"
    path.write_text("The Sorvane bridge opened in 2021 and carries 9,400 cars a day.\n" * 40, encoding="utf-8")
    env = {**os.environ, "RAG_STORE__URL": chroma_url, "RAG_STORE__COLLECTION": "t-two-processes",
           "RAG_EMBEDDINGS__THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "ingest.py", str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env={**env, "RAG_STORE__PATH": str(tmp_path / f"worker-{i}")}) for i in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    store = Store.open(tmp_path / "check", "t-two-processes", url=chroma_url)
    documents = store.documents()
    assert [d.source for d in documents] == ["notes.txt"]
    ids = store._chunk_ids("notes.txt")
    assert len(ids) == len(set(ids)) == documents[0].chunks == store.count()


def test_adds_updates_and_deletes_on_two_replicas_leave_both_agreeing(replicas, tmp_path):
    a, b = replicas(), replicas()
    folder = tmp_path / "docs"
    folder.mkdir()
    facts = {
        "alpha.txt": "The Alpha pump station lifts 40 litres a second from the Orlen river.",
        "beta.txt": "Beta ward opened a night clinic; it sees 120 patients a week.",
        "gamma.txt": "Gamma line trams run every six minutes between Vessmark and Calloway Bay.",
        "delta.txt": "The Delta archive keeps 3,000 maps of the Thessaly lake shore.",
    }

    def add(rag: Rag, name: str, text: str) -> None:
        (folder / name).write_text(text, encoding="utf-8")
        assert rag.ingest([folder / name]).failed == []

    ops = [
        lambda: add(a, "alpha.txt", facts["alpha.txt"]),
        lambda: add(b, "beta.txt", facts["beta.txt"]),
        lambda: add(a, "gamma.txt", facts["gamma.txt"]),
        lambda: add(b, "alpha.txt", facts["alpha.txt"] + " A second pump was added in 2024."),  # an update
        lambda: a.delete("beta.txt"),
        lambda: add(b, "delta.txt", facts["delta.txt"]),
        lambda: b.delete("gamma.txt"),
        lambda: add(a, "beta.txt", facts["beta.txt"].replace("120", "150")),  # back, new version
        lambda: add(a, "gamma.txt", facts["gamma.txt"]),
        lambda: a.delete("delta.txt"),
    ]
    for op in ops:
        op()
    expected = {"alpha.txt", "beta.txt", "gamma.txt"}
    queries = ["pump station litres", "night clinic patients", "trams Vessmark", "maps Thessaly archive",
               "second pump 2024"]

    def answers(rag: Rag) -> list[list[tuple[str, str, int]]]:
        return [[(h.chunk_id, h.source, h.page) for h in rag.search(q, k=3, mode=m)]
                for q in queries for m in ("bm25", "vector", "hybrid")]

    def agree() -> bool:
        """both replicas list the same documents and return the same hits for every query"""
        docs = [{d.source: d for d in rag.documents()} for rag in (a, b)]
        return set(docs[0]) == expected and docs[0] == docs[1] and answers(a) == answers(b)

    eventually(agree)
    fresh = replicas()
    assert answers(fresh) == answers(a)
    assert {s for s, _ in top(a, "maps Thessaly archive", "bm25", k=5)} <= expected - {"delta.txt"}
    assert top(b, "night clinic patients", "hybrid") == [("beta.txt", 1)]
    hits = b.search("night clinic patients", k=1)
    assert "150" in hits[0].text
    assert a.store.count() == sum(d.chunks for d in a.documents())


def test_an_unreachable_server_is_a_store_error_that_says_what_to_do(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StoreError) as caught:
        Rag(load_config(environ={"RAG_STORE__URL": url, "RAG_STORE__PATH": str(tmp_path / "store")}))
    assert url in str(caught.value) and "make serve-store" in caught.value.hint
    result = subprocess.run([sys.executable, "-m", "rag", "docs"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "RAG_STORE__URL": url, "RAG_STORE__PATH": str(tmp_path / "store")},
                            timeout=120)
    assert result.returncode != 0
    assert "does not answer" in result.stderr + result.stdout and "Traceback" not in result.stderr


def test_a_server_that_goes_away_is_a_store_error_too(tmp_path, embedder):
    port = free_port()
    server = ServerProcess([str(CHROMA), "run", "--path", str(tmp_path / "db"), "--host", "127.0.0.1", "--port",
                            str(port)], port, "/api/v2/heartbeat", tmp_path / "server.log",
                           env={"ANONYMIZED_TELEMETRY": "False"})
    with server:
        rag = Rag(load_config(environ={"RAG_STORE__URL": server.url, "RAG_STORE__PATH": str(tmp_path / "store")}),
                  embedder=embedder)
        (tmp_path / "a.txt").write_text("The Sorvane bridge opened in 2021.", encoding="utf-8")
        rag.ingest([tmp_path / "a.txt"])
    with pytest.raises(StoreError):
        rag.search("Sorvane bridge")
    shutil.rmtree(tmp_path / "db", ignore_errors=True)


@pytest.mark.parametrize("url", ["ftp://host:8000", "http://", "http://host:port", "host:8000/x"])
def test_store_url_must_be_a_server_address(url):
    with pytest.raises(ConfigError, match="store.url"):
        load_config(environ={"RAG_STORE__URL": url})


def test_store_url_may_be_set_to_null_for_the_embedded_store():
    assert load_config(environ={"RAG_STORE__URL": "null"}).store.url is None
