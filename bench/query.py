"""Query benchmark: retrieval latency at 10k and 100k chunks, and what the pipeline adds to time to first token.

    .venv/bin/python bench/query.py [--source-store DIR] [--sizes 10000,100000] [--repeat 3]

Retrieval: stores of N chunks are built from a real store's chunks and vectors (by default the dev-en eval
store that `python -m rag eval` leaves under .eval-cache/, ingested first if it is not there): chunk texts are
reused in order, and beyond the source's size each copy's vector gets a little noise, so the index is not full
of exact duplicates. Queries are the dev-en questions; latency is one `Retriever.search` call, query embedding
included, per mode.

Time to first token (offline default model): the full pipeline (`Answerer.stream` until the first token:
embedding, hybrid search, relevance, prompt) against the model alone on the same messages. Before each timed
call the model answers an unrelated prompt, so llama.cpp's prefix reuse cannot favour either side.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from rag import offline_defaults  # noqa: E402

offline_defaults()

import numpy as np  # noqa: E402

from rag import Rag  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.eval.retrieval import load_questions  # noqa: E402
from rag.types import Chunk, DocumentInfo  # noqa: E402

QA = ROOT.parent / "shared" / "eval" / "dev-en" / "qa.jsonl"
DEV_EN_PDFS = ROOT.parent / "shared" / "eval" / "dev-en" / "pdfs"


def percentile(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1] if len(values) > 1 else values[0]


def read_source(store: Path) -> tuple[list[str], np.ndarray]:
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(store), settings=Settings(anonymized_telemetry=False))
    col = client.get_collection("documents", embedding_function=None)
    texts, vectors = [], []
    for offset in range(0, col.count(), 5000):
        got = col.get(include=["documents", "embeddings"], limit=5000, offset=offset)
        texts.extend(got["documents"])
        vectors.append(np.asarray(got["embeddings"], dtype=np.float32))
    return texts, np.vstack(vectors)


def dev_en_store() -> Path:
    """The store `python -m rag eval` keeps for the dev-en filings under the default settings; ingested here if
    missing (about 10 minutes on 2 cores), so this script runs from a fresh checkout."""
    from rag.eval.retrieval import cached_store

    settings = load_config()
    store = cached_store(ROOT / ".eval-cache", DEV_EN_PDFS, settings)
    rag = Rag(settings.model_copy(update={"store": settings.store.model_copy(update={"path": store})}))
    report = rag.ingestor.ingest([DEV_EN_PDFS])  # unchanged files are skipped: instant when the store exists
    if report.added or report.updated:
        print(f"ingested {len(report.added) + len(report.updated)} filings into {store}", flush=True)
    return store


def build_store(folder: Path, texts: list[str], vectors: np.ndarray, size: int, rag_embedder) -> Rag:
    settings = load_config(environ={"RAG_STORE__PATH": str(folder)})
    rag = Rag(settings, embedder=rag_embedder)
    rng = np.random.default_rng(0)
    per_doc = 1000
    for start in range(0, size, per_doc):
        idx = [(start + i) % len(texts) for i in range(min(per_doc, size - start))]
        vecs = vectors[idx].copy()
        if start >= len(texts):
            vecs += rng.normal(0, 0.02, vecs.shape).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        doc_id = hashlib.sha256(f"synthetic-{start}".encode()).hexdigest()  # distinct in its first 32 characters
        source = f"synthetic-{start // per_doc:04d}.pdf"
        chunks = [Chunk(id=f"{doc_id[:32]}-{i:06d}", text=texts[j], source=source, page=i // 5 + 1, doc_id=doc_id,
                        index=i) for i, j in enumerate(idx)]
        info = DocumentInfo(source=source, doc_id=doc_id, pages=len(chunks) // 5 + 1, chunks=len(chunks),
                            ingested_at="2026-01-01T00:00:00+00:00")
        rag.store.replace(info, chunks, vecs, provider="local", model="all-MiniLM-L6-v2")
    rag.store.commit()
    return rag


def retrieval_latency(rag: Rag, questions: list[str], repeat: int) -> dict[str, dict[str, float]]:
    out = {}
    for mode in ("vector", "bm25", "hybrid"):
        rag.retriever.search(questions[0], mode=mode)  # warm caches
        times = []
        for _ in range(repeat):
            for q in questions:
                started = time.perf_counter()
                rag.retriever.search(q, mode=mode)
                times.append((time.perf_counter() - started) * 1000)
        out[mode] = {"p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95), "n": len(times)}
    return out


def first_token(rag: Rag, questions: list[str]) -> dict[str, float]:
    from langchain_core.messages import HumanMessage, SystemMessage

    from rag.answer import prompts
    from rag.types import Source, Token

    chat = rag.chat()
    reset = [SystemMessage("You are a poet."), HumanMessage("Write one line about the sea.")]

    def ttft(stream) -> float:
        started = time.perf_counter()
        for item in stream:
            if isinstance(item, (Token, str)):
                return time.perf_counter() - started
        return float("nan")

    pipeline, model = [], []
    for q in questions:
        hits = rag.retriever.search(q)
        messages = [SystemMessage(prompts.SYSTEM),
                    HumanMessage(prompts.user_message(q, [Source(n, h) for n, h in enumerate(hits, start=1)]))]
        chat.invoke(reset, params={"max_tokens": 4})
        model.append(ttft(chat.stream(messages, params={"max_tokens": 8})))
        chat.invoke(reset, params={"max_tokens": 4})
        pipeline.append(ttft(rag.answerer.stream(q, params={"max_tokens": 8})))
    overhead = [p - m for p, m in zip(pipeline, model)]
    return {"pipeline_ttft_ms_p50": statistics.median(pipeline) * 1000, "model_ttft_ms_p50": statistics.median(model) * 1000,
            "overhead_ms_p50": statistics.median(overhead) * 1000, "n": len(questions)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source-store", type=Path, help="store to take chunks and vectors from")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    source = args.source_store or dev_en_store()
    texts, vectors = read_source(source)
    questions = [q.question for q in load_questions(QA)]
    print(f"source: {source} ({len(texts)} chunks); {len(questions)} queries", flush=True)

    results: dict[str, object] = {"source_chunks": len(texts)}
    base = Rag(load_config(environ={"RAG_STORE__PATH": tempfile.mkdtemp()}))
    embedder = base.embedder()
    embedder.embed_query("warm up")
    for size in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix=f"bench-q{size}-") as folder:
            started = time.perf_counter()
            rag = build_store(Path(folder), texts, vectors, size, embedder)
            built = time.perf_counter() - started
            latency = retrieval_latency(rag, questions, args.repeat)
            results[f"{size}"] = {"build_s": built, **latency}
            print(f"{size} chunks (built in {built:.0f}s): " + ", ".join(
                f"{m} p50 {v['p50_ms']:.1f} ms p95 {v['p95_ms']:.1f} ms" for m, v in latency.items()), flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-ttft-") as folder:
        rag = Rag(load_config(environ={"RAG_STORE__PATH": folder}), embedder=embedder)
        rag.ingestor.ingest([ROOT / "data"])
        sample_questions = ["What was Aurora's revenue in 2024?", "When was the Kelvar Strait array commissioned?",
                            "How many people did Aurora employ?", "Who founded Aurora Tidal Power?",
                            "What dividend does the board propose?", "How much electricity did the array generate?"]
        results["ttft"] = first_token(rag, sample_questions)
        print("time to first token:", json.dumps(results["ttft"]), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
