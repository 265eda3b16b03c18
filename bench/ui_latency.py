"""Time from pressing Send to the first streamed token, and to the full (checked) answer, in the real app.

    python bench/ui_latency.py [--runs 2]

Starts ``python app.py`` on a fresh store (offline default models), uploads the sample PDFs through the page,
then asks each question in a new chat (and one follow-up), measuring in the browser with performance.now():
first token = the streaming answer first appears; full answer = the final answer replaces it. The first
question of a run also pays for loading the chat model. Prints a table; writes bench/results/ui_latency.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import ANSWERED, AppServer, launch_browser, open_app, upload  # noqa: E402

SAMPLES = [ROOT / "data" / "aurora-tidal-power-2024.pdf", ROOT / "data" / "hanbit-smartfarm-2024-ko.pdf"]
QUESTIONS = [
    "How much electricity did the Kelvar Strait array generate in 2024?",
    "Who founded Aurora Tidal Power?",
    "What was the revenue for 2024?",
    "2024년 딸기 생산량은 얼마인가요?",
    "한빛스마트팜의 직원 수는 몇 명인가요?",
]
FOLLOW_UP = ("When will the Morrow Sound array be built?", "How many turbines will it have?")

MEASURE = """([sel]) => new Promise(resolve => {
  const before = document.querySelectorAll(sel).length;
  const t0 = performance.now();
  let first = null;
  const observer = new MutationObserver(() => {
    if (first === null && document.querySelector('#chat .answer.streaming')) first = performance.now() - t0;
    if (document.querySelectorAll(sel).length > before) {
      observer.disconnect();
      resolve({first_token_s: first === null ? null : first / 1000, answer_s: (performance.now() - t0) / 1000,
               kind: document.querySelectorAll(sel)[before].className});
    }
  });
  observer.observe(document.querySelector('#chat'), {childList: true, subtree: true, characterData: true});
  document.querySelector('#send').click();
})"""


def measure(page, question: str, new_chat: bool = True) -> dict:
    if new_chat:
        page.click("#new-chat")
        page.wait_for_function("sel => document.querySelectorAll(sel).length === 0", arg=ANSWERED)
    page.fill("#question textarea", question)
    result = page.evaluate(MEASURE, [ANSWERED])
    page.wait_for_timeout(1500)  # let the sources panel finish before the next question
    return {"question": question, **result}


def library_baseline(folder: Path, runs: int) -> list[dict]:
    """The same questions straight through the library (no browser, no Gradio), to see what the UI adds."""
    import time

    from rag import Rag, offline_defaults
    from rag.config import load_config
    from rag.types import Done, Token

    offline_defaults()
    rag = Rag(load_config(environ={"RAG_STORE__PATH": str(folder / "store")}))
    rag.ingestor.ingest(SAMPLES)
    rag.answerer.ask(QUESTIONS[0])  # load the models first
    rows = []
    for _ in range(runs):
        for question in QUESTIONS:
            t0 = time.perf_counter()
            first = None
            for event in rag.answerer.stream(question):
                if isinstance(event, Token) and first is None:
                    first = time.perf_counter() - t0
                elif isinstance(event, Done):
                    rows.append({"question": question, "first_token_s": first, "answer_s": time.perf_counter() - t0})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description="Question-to-first-token and question-to-answer times in the app.")
    parser.add_argument("--runs", type=int, default=2, help="times to ask each question")
    parser.add_argument("--library", action="store_true", help="also time the same questions without the UI")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory() as tmp, AppServer(Path(tmp)) as server, sync_playwright() as playwright:
        browser = launch_browser(playwright)
        page = open_app(browser, server.url)
        page.set_default_timeout(300_000)
        upload(page, SAMPLES)
        for run in range(args.runs):
            for question in QUESTIONS:
                rows.append({"run": run, **measure(page, question)})
            rows.append({"run": run, **measure(page, FOLLOW_UP[0])})
            rows.append({"run": run, "follow_up": True, **measure(page, FOLLOW_UP[1], new_chat=False)})
        browser.close()

    print(f"{'first token':>12} {'answer':>8}  kind       question")
    for row in rows:
        first = f"{row['first_token_s']:.2f}s" if row["first_token_s"] is not None else "-"
        kind = row["kind"].replace("answer ", "")
        print(f"{first:>12} {row['answer_s']:>7.2f}s  {kind:<10} {'(follow-up) ' if row.get('follow_up') else ''}"
              f"{row['question']}")
    warm = [r for r in rows if not (r["run"] == 0 and r is rows[0])]  # the very first also loads the model
    firsts = [r["first_token_s"] for r in warm if r["first_token_s"] is not None and not r.get("follow_up")]
    answers = [r["answer_s"] for r in warm if not r.get("follow_up")]
    summary = {"first_token_median_s": statistics.median(firsts) if firsts else None,
               "answer_median_s": statistics.median(answers), "cold_first_question": rows[0],
               "follow_ups": [r for r in rows if r.get("follow_up")]}
    if args.library:
        with tempfile.TemporaryDirectory() as tmp:
            base = library_baseline(Path(tmp), args.runs)
        summary["library_first_token_median_s"] = statistics.median(r["first_token_s"] for r in base
                                                                    if r["first_token_s"] is not None)
        summary["library_answer_median_s"] = statistics.median(r["answer_s"] for r in base)
    print(json.dumps({k: v for k, v in summary.items() if k.endswith("_s")}, indent=1))
    out = ROOT / "bench" / "results" / "ui_latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "summary": summary}, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
