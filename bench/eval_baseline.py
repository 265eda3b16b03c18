"""The plain LangChain pipeline (bench/baseline.py) on a QA set, scored like `python -m rag eval` scores ours.

    .venv/bin/python bench/eval_baseline.py ../shared/eval/dev-en/qa.jsonl --docs ../shared/eval/dev-en/pdfs

Uses our embedding model (the configured one), so differences come from the pipeline. The baseline's store is
built once under --cache (slow: the tutorial pipeline embeds on PyTorch without batching across files) and
reused; it sits beside the eval store of `rag eval`, named baseline-<that store's name>.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from rag import load_config, offline_defaults  # noqa: E402

offline_defaults()

from baseline import LangChainBaseline  # noqa: E402

from rag.eval import retrieval as evaluation  # noqa: E402
from rag.providers import build_embedder  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("qa", type=Path)
    parser.add_argument("--docs", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=ROOT / ".eval-cache")
    parser.add_argument("--config", help="config file (default: the project's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    settings = load_config(args.config)
    questions = evaluation.load_questions(args.qa)
    store = evaluation.cached_store(args.cache, args.docs, settings)
    baseline = LangChainBaseline(store.parent / f"baseline-{store.name}", build_embedder(settings.embeddings))
    if not baseline.is_built():
        print("building the LangChain baseline store (slow: plain pipeline)...", file=sys.stderr, flush=True)
        baseline.ingest(args.docs)
    outcomes = evaluation.run(questions, lambda q: baseline.search(q, k=10))
    rows = [("baseline (LangChain)", evaluation.summarise(outcomes, None))]
    if args.json:
        print(json.dumps({"qa": str(args.qa), "docs": str(args.docs), "results": dict(rows)}, ensure_ascii=False))
    else:
        print(evaluation.format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
