"""Scale benchmark: the embedded store against the store on a Chroma server (store.url).

    .venv/bin/python bench/scale.py [--size 100000] [--repeat 3] [--ingest-files 2] [--json FILE]

    # or step by step (how 1M chunks were measured; see docs/BENCHMARKS.md):
    .venv/bin/python bench/scale.py build --path DIR/embedded --size 1000000
    .venv/bin/python bench/scale.py replica --path DIR/embedded
    cp -r DIR/embedded DIR/server && chroma run --path DIR/server --port 8766 &
    .venv/bin/python bench/scale.py catalog --path DIR/embedded --url http://127.0.0.1:8766
    .venv/bin/python bench/scale.py replica --path DIR/replica --url http://127.0.0.1:8766

1. Builds a store of ``--size`` chunks twice, embedded and on a `chroma run` server started here, from a real
   store's chunks and vectors (the dev-en eval store, as bench/query.py; beyond its size, copies with a little
   noise on the vectors), 1,000 chunks a document, through ``Store.replace``.
2. For each, a fresh process (a replica) opens the store and times: opening it, the first search (on the server
   that builds the keyword index from Chroma), then vector, BM25 and hybrid searches (query embedding included;
   the dev-en questions, ``--repeat`` times each); its peak RSS; and for the server the Chroma server's RSS.
3. Server only: how long a document written by one process takes to be found by the replica (sync_seconds 1).
4. Ingest throughput on one server: ``--ingest-files`` real filings ingested by one worker process, then split
   between two worker processes started together (each loads its embedding model before the clock starts).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from rag import offline_defaults  # noqa: E402

offline_defaults()

import numpy as np  # noqa: E402

from bench.proc import rss_mb  # noqa: E402
from bench.query import percentile, read_source  # noqa: E402
from rag import Rag  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.eval.retrieval import load_questions  # noqa: E402
from rag.ingest.splitting import keyword_terms  # noqa: E402
from rag.types import Chunk, DocumentInfo  # noqa: E402

QA = ROOT.parent / "shared" / "eval" / "dev-en" / "qa.jsonl"
PDFS = ROOT.parent / "shared" / "eval" / "dev-en" / "pdfs"
SOURCE = ROOT / ".eval-cache" / "dev-en-pdfs-b96152975a"
PER_DOC = 1000


def settings_for(path: Path, url: str | None, collection: str = "documents"):
    env = {"RAG_STORE__PATH": str(path), "RAG_STORE__COLLECTION": collection}
    if url:
        env["RAG_STORE__URL"] = url
    return load_config(environ=env)


def build(rag: Rag, texts: list[str], vectors: np.ndarray, size: int, provider: str, model: str) -> float:
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for start in range(0, size, PER_DOC):
        idx = [(start + i) % len(texts) for i in range(min(PER_DOC, size - start))]
        vecs = vectors[idx].copy()
        if start >= len(texts):
            vecs += rng.normal(0, 0.02, vecs.shape).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        doc_id = hashlib.sha256(f"synthetic {start}".encode()).hexdigest()  # distinct chunk ids per document
        source = f"synthetic-{start // PER_DOC:04d}.pdf"
        chunks = [Chunk(id=f"{doc_id[:32]}-{i:06d}", text=texts[j], source=source, page=i // 5 + 1, doc_id=doc_id,
                        index=i) for i, j in enumerate(idx)]
        info = DocumentInfo(source=source, doc_id=doc_id, pages=len(chunks) // 5 + 1, chunks=len(chunks),
                            ingested_at="2026-01-01T00:00:00+00:00")
        rag.store.replace(info, chunks, vecs, provider=provider, model=model, terms=[keyword_terms(c) for c in chunks])
    rag.store.commit()
    return time.perf_counter() - started


# -- subprocess roles -----------------------------------------------------------------------------------------

def replica(args: argparse.Namespace) -> None:
    """Open the store, first search, then timed searches; JSON on stdout."""
    questions = [q.question for q in load_questions(QA)]
    embedder = Rag(settings_for(Path(tempfile.mkdtemp()), None)).embedder()
    embedder.embed_query("warm up")
    base_rss = rss_mb(os.getpid())
    started = time.perf_counter()
    rag = Rag(settings_for(Path(args.path), args.url), embedder=embedder)
    opened = time.perf_counter() - started
    started = time.perf_counter()
    rag.search(questions[0], mode="bm25")
    first = time.perf_counter() - started
    out: dict[str, object] = {"open_s": opened, "first_search_s": first, "documents": len(rag.documents()),
                              "chunks": rag.store.count(), "keyword_chunks": len(rag.store.keyword or [])}
    for mode in ("vector", "bm25", "hybrid"):
        times = []
        for _ in range(args.repeat):
            for q in questions:
                t = time.perf_counter()
                rag.search(q, mode=mode)
                times.append((time.perf_counter() - t) * 1000)
        out[mode] = {"p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95), "n": len(times)}
    out["stages"] = stages(rag, questions)
    if args.url:  # how long a new document takes to show up here
        writer = Rag(settings_for(Path(tempfile.mkdtemp()), args.url), embedder=embedder)
        path = Path(tempfile.mkdtemp()) / "fresh-note.txt"
        path.write_text("The Quorvane desalination plant near Ostrid produces 61,000 cubic metres a day.",
                        encoding="utf-8")
        written = time.perf_counter()
        writer.ingest([path])
        written_s = time.perf_counter() - written
        seen = time.perf_counter()
        slowest = 0.0
        while True:
            t = time.perf_counter()
            hits = rag.search("Quorvane desalination Ostrid", k=1, mode="bm25")
            slowest = max(slowest, time.perf_counter() - t)
            if hits and hits[0].source == "fresh-note.txt":
                break
            time.sleep(0.05)
        out["visible_after_write_s"] = time.perf_counter() - seen
        out["write_one_doc_s"] = written_s
        out["slowest_search_during_sync_ms"] = slowest * 1000
        writer.delete("fresh-note.txt")
    out["rss_mb"] = rss_mb(os.getpid())
    out["rss_over_model_mb"] = rss_mb(os.getpid()) - base_rss
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out), flush=True)


def stages(rag: Rag, questions: list[str]) -> dict[str, dict[str, float]]:
    """Where a hybrid search's time goes: the question's embedding, Chroma's vector query, BM25 (p50/p95 ms)."""
    embedder, n = rag.embedder(), rag.settings.retrieval.candidates
    times: dict[str, list[float]] = {"embed": [], "vector query": [], "bm25": []}
    for q in questions:
        t = time.perf_counter()
        vector = embedder.embed_query(q)
        times["embed"].append(time.perf_counter() - t)
        t = time.perf_counter()
        rag.store.query(vector, n)
        times["vector query"].append(time.perf_counter() - t)
        terms = rag.retriever.keyword_query(q)
        t = time.perf_counter()
        rag.store.keyword.search(terms, n)
        times["bm25"].append(time.perf_counter() - t)
    return {stage: {"p50_ms": percentile([x * 1000 for x in v], 50), "p95_ms": percentile([x * 1000 for x in v], 95)}
            for stage, v in times.items()}


def builder(args: argparse.Namespace) -> None:
    """Write a store of --size chunks (in its own process, so the embedded store is closed when it ends)."""
    texts, vectors = read_source(SOURCE)
    rag = Rag(settings_for(Path(args.path), args.url))
    embedder = rag.embedder()
    built = build(rag, texts, vectors, args.size, embedder.provider, embedder.model)
    print(json.dumps({"build_s": built, "source_chunks": len(texts)}), flush=True)


def catalog(args: argparse.Namespace) -> None:
    """Record an embedded store's documents in the catalog of a Chroma server that serves a copy of its files
    (``chroma run --path COPY``: the same on-disk format), so that the copy is a server store. Writing 1M chunks
    through the server's HTTP API took more than an hour here; copying the embedded store's files takes a minute."""
    from rag.search.catalog import ChromaCatalog, FileCatalog
    from rag.search.store import connect_server

    documents = FileCatalog(Path(args.path) / f"{args.collection}.manifest.json").load()
    client = connect_server(args.url)
    shared = ChromaCatalog(lambda: client, args.collection)
    for info in documents.values():
        shared.put(info, documents)
    shared.bump()
    print(json.dumps({"documents": len(documents)}), flush=True)


def worker(args: argparse.Namespace) -> None:
    """Ingest files into the server store, starting at --start-at (epoch s) with the model already loaded."""
    rag = Rag(settings_for(Path(tempfile.mkdtemp()), args.url, args.collection))
    rag.embedder().embed_documents(["warm up"])
    time.sleep(max(0.0, args.start_at - time.time()))
    started = time.time()
    report = rag.ingest([Path(f) for f in args.files])
    ended = time.time()
    chunks = sum(d.chunks for d in rag.documents() if d.source in report.added)
    print(json.dumps({"started": started, "ended": ended, "added": report.added, "chunks": chunks,
                      "failed": [f.reason for f in report.failed],
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)


def run_self(role: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, role, *extra], stdout=subprocess.PIPE, text=True, cwd=ROOT)


def result_of(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"{proc.args[2]} failed ({proc.returncode})")
    return json.loads(out.strip().splitlines()[-1])


# -- the whole run --------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", nargs="?", default="all", choices=["all", "build", "replica", "worker", "catalog"])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ingest-files", type=int, default=2)
    parser.add_argument("--kinds", default="embedded,server", help="which stores to build and measure")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--path")
    parser.add_argument("--url")
    parser.add_argument("--collection", default="documents")
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("files", nargs="*")
    args = parser.parse_intermixed_args()
    if args.role == "replica":
        return replica(args)
    if args.role == "worker":
        return worker(args)
    if args.role == "build":
        return builder(args)
    if args.role == "catalog":
        return catalog(args)

    from tests.servers.running import ServerProcess, free_port

    results: dict[str, object] = {"size": args.size}
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    port = free_port()
    server = ServerProcess([str(Path(sys.executable).with_name("chroma")), "run", "--path", str(work / "server"),
                            "--host", "127.0.0.1", "--port", str(port)], port, "/api/v2/heartbeat",
                           work / "server.log", env={"ANONYMIZED_TELEMETRY": "False"})
    with server:
        for kind, url in (("embedded", None), ("server", server.url)):
            if kind not in args.kinds.split(","):
                continue
            url_args = ["--url", url] if url else []
            built = result_of(run_self("build", "--path", str(work / kind), "--size", str(args.size), *url_args))
            print(f"{kind}: {args.size} chunks written in {built['build_s']:.0f} s", flush=True)
            measured = result_of(run_self("replica", "--path", str(work / f"{kind}-replica" if url else work / kind),
                                          *url_args, "--repeat", str(args.repeat)))
            measured["build_s"] = built["build_s"]
            if url:
                measured["chroma_server_rss_mb"] = rss_mb(server.process.pid)
            results[kind] = measured
            print(kind, json.dumps(measured), flush=True)

        files = sorted(PDFS.glob("*.pdf"), key=lambda p: p.stat().st_size)[:args.ingest_files]
        runs = {"1 worker": [files], "2 workers": [files[0::2], files[1::2]]} if files else {}
        for label, shares in runs.items():
            collection = "ingest-" + label.split()[0]
            start_at = time.time() + 45  # both load their model first
            procs = [run_self("worker", "--url", server.url, "--collection", collection, "--start-at",
                              str(start_at), *map(str, share)) for share in shares]
            done = [result_of(p) for p in procs]
            wall = max(d["ended"] for d in done) - min(d["started"] for d in done)
            chunks = sum(d["chunks"] for d in done)
            results[label] = {"files": [f.name for f in files], "wall_s": wall, "chunks": chunks,
                              "chunks_per_s": chunks / wall, "peak_rss_mb": [d["peak_rss_mb"] for d in done],
                              "failed": [d["failed"] for d in done]}
            print(label, json.dumps(results[label]), flush=True)
        results["chroma_server_rss_mb_end"] = rss_mb(server.process.pid)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
