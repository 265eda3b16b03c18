"""Command line: ``python -m rag {ingest,search,ask,docs,delete,doctor}`` and ``python ingest.py``.

The edge where errors become messages: a RagError prints its message and fix and exits 2; anything unexpected
prints one line (the traceback only with --debug or RAG_DEBUG=1).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rag import RagError, offline_defaults

if TYPE_CHECKING:
    from rag import Rag

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


def setup_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("pypdf", "chromadb", "httpx", "httpcore", "sentence_transformers", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.ERROR)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="config file (default: config.yaml of the project)")
    parser.add_argument("--debug", action="store_true", help="verbose logs and full tracebacks")


def _retry_notice(attempt: int, max_retries: int, error: RagError, delay: float) -> None:
    print(f"retrying ({attempt}/{max_retries}) in {delay:.1f}s: {error.message}", file=sys.stderr, flush=True)


def _build(args: argparse.Namespace) -> Rag:
    from rag import Rag

    return Rag.from_config(args.config)


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False), flush=True)


# -- ingest --------------------------------------------------------------------------------------------

def _ingest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="files (.pdf, .txt, .md, .docx) or folders (searched recursively)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--watch", metavar="FOLDER",
                        help="ingest FOLDER, then keep re-ingesting files as they are added, changed or deleted "
                             "(Ctrl-C stops)")


def cmd_ingest(args: argparse.Namespace) -> int:
    from rag.cli.progress import IngestProgress

    if args.watch:
        return cmd_watch(args)
    if not args.paths:
        raise RagError("nothing to ingest", hint="give files or folders, or --watch FOLDER")
    rag = _build(args)
    with IngestProgress(sys.stderr) as progress:
        report = rag.ingest(args.paths, on_progress=progress)
    if args.json:
        _print_json(report.to_json())
    else:
        print(f"added {len(report.added)}, updated {len(report.updated)}, skipped {len(report.skipped)}, "
              f"failed {len(report.failed)}")
        for failure in report.failed:
            print(f"  failed: {failure.file}: {failure.reason}")
        for warning in report.warnings:
            print(f"  warning: {warning}")
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_watch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rag.cli.progress import IngestProgress
    from rag.types import Batch

    folder = Path(args.watch)
    if not folder.is_dir():
        raise RagError(f"not a folder: {folder}", hint="--watch takes a folder to keep in step with the store")
    if args.paths:
        raise RagError("--watch takes one folder and no other paths", hint=f"python ingest.py --watch {folder}")
    rag = _build(args)

    def on_batch(batch: Batch) -> None:
        if args.json:
            _print_json({**batch.report.to_json(), "deleted": batch.deleted})
            return
        for source in batch.deleted:
            print(f"deleted {source}", file=sys.stderr, flush=True)
        for failure in batch.report.failed:
            print(f"  failed: {failure.file}: {failure.reason}", file=sys.stderr, flush=True)
        for warning in batch.report.warnings:
            print(f"  warning: {warning}", file=sys.stderr, flush=True)
        print(batch.summary(), file=sys.stderr, flush=True)

    def ready() -> None:
        print(f"watching {folder} for changes (Ctrl-C to stop)", file=sys.stderr, flush=True)

    # Ctrl-C and `kill` both stop the watch cleanly, even when started from a shell that ignores SIGINT for
    # background jobs (`ingest.py --watch DIR &`) or by a service manager that sends SIGTERM.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    rag.watch(folder, progress=lambda: IngestProgress(sys.stderr), on_batch=on_batch).run(ready=ready)
    print("stopped watching", file=sys.stderr, flush=True)
    return EXIT_OK


# -- search / ask ----------------------------------------------------------------------------------------

def _queries(raw: list[str]) -> list[str]:
    if raw == ["-"]:
        return [line.strip() for line in sys.stdin if line.strip()]
    return raw


def cmd_search(args: argparse.Namespace) -> int:
    rag = _build(args)
    for query in _queries(args.queries):
        hits = rag.search(query, k=args.k, sources=args.doc or None)
        if args.json:
            _print_json([h.to_json() for h in hits])
            continue
        print(f"# {query}")
        for rank, hit in enumerate(hits, start=1):
            snippet = " ".join(hit.text.split())[:200]
            print(f"{rank}. {hit.source}, {hit.location or f'page {hit.page}'} (score {hit.score:.3f})\n   {snippet}")
        if not hits:
            print("(no results)")
    return EXIT_OK


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.types import Done, Token

    rag = _build(args)
    answer = None
    streamed: list[str] = []
    live = not args.json and sys.stdout.isatty()  # stream tokens to a terminal; pipes get the final text
    for event in rag.stream(args.question, k=args.k, sources=args.doc or None, on_retry=_retry_notice):
        if isinstance(event, Token) and live:
            streamed.append(event.text)
            print(event.text, end="", flush=True)
        elif isinstance(event, Done):
            answer = event.answer
    assert answer is not None
    if args.json:
        _print_json(answer.to_json())
        return EXIT_OK
    if streamed:
        print()
    if answer.text != "".join(streamed).strip():  # refusal, or citations repaired after streaming
        print(("\nchecked: " if streamed else "") + answer.text)
    if answer.searches:
        print("\nSearches:")
        for search in answer.searches:
            where = f" in {', '.join(search.documents)}" if search.documents else ""
            found = " ".join(f"[{n}]" for n in search.sources) or "-"
            print(f"  {search.tool}({search.query!r}){where}: {found}" if search.query else f"  {search.tool}()")
    if answer.sources:
        print("\nSources:")
        for source in answer.sources:
            where = source.hit.location or f"page {source.hit.page}"
            print(f"  [{source.n}] {source.hit.source}, {where} (score {source.hit.score:.3f})")
    usage = answer.usage
    cost = f", ~${usage.cost_usd:.4f}" if usage.cost_usd is not None else ""
    note = " (estimated)" if usage.estimated else ""
    note += " (answer from the cache: no model call)" if answer.cached else ""
    print(f"\ntokens: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion{cost}{note}", file=sys.stderr)
    return EXIT_OK


# -- documents -------------------------------------------------------------------------------------------

def cmd_docs(args: argparse.Namespace) -> int:
    rag = _build(args)
    docs = rag.documents()
    if args.json:
        _print_json([d.to_json() for d in docs])
        return EXIT_OK
    if not docs:
        print("no documents yet: add some with  python ingest.py PATH")
    for d in docs:
        print(f"{d.source}\t{d.pages} pages\t{d.chunks} chunks\t{d.ingested_at}\t{d.doc_id[:12]}")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    rag = _build(args)
    removed = [rag.delete(source) for source in args.sources]
    if args.json:
        _print_json({"deleted": [d.to_json() for d in removed]})
    else:
        for d in removed:
            print(f"deleted {d.source} ({d.chunks} chunks)")
    return EXIT_OK


# -- eval ------------------------------------------------------------------------------------------------

def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rag import Rag, load_config
    from rag.cli.progress import IngestProgress
    from rag.eval import retrieval as evaluation

    settings = load_config(args.config)
    docs = Path(args.docs)
    questions = evaluation.load_questions(args.qa)
    if args.limit:
        questions = questions[: args.limit]
    if args.sample:
        questions = evaluation.sample(questions, args.sample)
    store = Path(args.store) if args.store else evaluation.cached_store(Path(args.cache), docs, settings)
    settings = settings.model_copy(update={"store": settings.store.model_copy(update={"path": store})})
    rag = Rag(settings)
    with IngestProgress(sys.stderr) as progress:
        report = rag.ingest([docs], on_progress=progress)
    if report.failed:
        print(f"warning: {len(report.failed)} file(s) failed to ingest", file=sys.stderr)

    if args.answers:
        return _eval_answers(args, rag, questions)
    outcomes = evaluation.measure(rag, questions, args.modes.split(","), k=args.k)
    rows = [(mode, evaluation.summarise(found, settings.retrieval.min_score)) for mode, found in outcomes.items()]
    if args.json:
        per_question = {mode: evaluation.details(found) for mode, found in outcomes.items()}
        _print_json({"qa": str(args.qa), "docs": str(docs), "store": str(store), "min_score": settings.retrieval.min_score,
                     "results": dict(rows), **({"questions": per_question} if args.details else {})})
    else:
        print(f"{args.qa}: {len(questions)} questions, docs {docs}, store {store}")
        print(evaluation.format_table(rows))
    return EXIT_OK


def _eval_answers(args: argparse.Namespace, rag: Rag, questions: list[Any]) -> int:
    from rag.eval import answers

    asked = answers.ask_all(rag, questions, k=args.k)
    name = f"{rag.settings.llm.provider} {rag.chat().name}"
    summary = answers.summarise(asked)
    if args.json:
        _print_json({"qa": str(args.qa), "docs": str(args.docs), "model": name, "answers": summary,
                     **({"questions": answers.details(asked)} if args.details else {})})
    else:
        print(f"{args.qa}: {len(questions)} questions, answered by {name}")
        print(answers.format_table([(name, summary)]))
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from rag.cli.doctor import report

    return report(args.config, as_json=args.json)


# -- entry points ----------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rag", description="Chat with your PDFs, with page citations.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="add or update files and folders")
    _ingest_arguments(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("search", help="show the passages retrieval finds for queries")
    p.add_argument("queries", nargs="+", metavar="QUERY", help="one or more queries; '-' reads one a line from stdin")
    p.add_argument("-k", type=int, default=None, help="number of passages (default: retrieval.k)")
    p.add_argument("--doc", action="append", metavar="SOURCE", help="search only this document (repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON list of hits a line, one line a query")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer a question from the documents, with citations")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=None, help="number of passages (default: retrieval.k)")
    p.add_argument("--doc", action="append", metavar="SOURCE", help="use only this document (repeatable)")
    p.add_argument("--json", action="store_true", help="print the answer, sources and usage as JSON")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="measure retrieval (or, with --answers, answers) on a QA set")
    p.add_argument("qa", metavar="QA.jsonl")
    p.add_argument("--docs", required=True, metavar="DIR", help="folder of the QA set's documents")
    p.add_argument("--k", type=int, default=5, help="passages per question (metrics use up to 10)")
    p.add_argument("--modes", default="vector,bm25,hybrid", help="comma-separated retrieval modes to compare")
    p.add_argument("--answers", action="store_true",
                   help="answer every question with the chat model instead: key value found, cited gold page, "
                        "refusals, seconds per answer (rag/eval/answers.py)")
    p.add_argument("--store", metavar="DIR", help="store to ingest into (default: a cached one under --cache)")
    p.add_argument("--cache", default=".eval-cache", metavar="DIR", help="where eval stores are kept between runs")
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--sample", type=int, metavar="N",
                   help="N answerable questions spread evenly over the set, and every unanswerable one")
    p.add_argument("--details", action="store_true", help="with --json: per-question results")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("docs", help="list ingested documents")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_docs)

    p = sub.add_parser("delete", help="remove documents and their chunks")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="document name as listed by `docs`")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("doctor", help="check config, providers, models, the collection and disk space")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(func=cmd_doctor)

    for choice in sub.choices.values():
        _common(choice)
    return parser


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    offline_defaults()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("RAG_DEBUG") == "1"
    setup_logging(debug)
    try:
        return args.func(args)
    except RagError as exc:
        if debug:
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  fix: {exc.hint}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        print(f"unexpected error: {type(exc).__name__}: {exc} (run again with --debug for details)", file=sys.stderr)
        return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv)


def ingest_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python ingest.py",
                                     description="Add PDFs, .txt, .md, .docx and audio files (or folders) to the "
                                                 "store.")
    _ingest_arguments(parser)
    _common(parser)
    parser.set_defaults(func=cmd_ingest)
    return run(parser, argv)
