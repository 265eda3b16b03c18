"""The app under load: 10 chat sessions and 3 uploaders against one real app process (issue 14).

    .venv/bin/python bench/load.py [--seconds 120] [--sessions 10] [--max-tokens N] [--json FILE]

``python app.py --port P`` runs as a real process on 127.0.0.1 with a temporary ``RAG_STORE__PATH`` and
``RAG_APP__UPLOAD_DIR`` and the offline defaults (the bundled llama.cpp model, one request at a time, at most
``llm.max_waiting`` waiting). Two sample PDFs (tests/conftest.py's made-up facts, English and Korean) are uploaded
and one question warms the model before the clock starts.

Then, for ``--seconds``:

- ``--sessions`` chat sessions, each looping over a few questions (four the documents answer, one they do not):
  even sessions stream POST /api/ask (``stream: true``), odd ones the OpenAI-compatible /v1/chat/completions
  (``stream: true``). A busy reply (503, ``BusyError``) is counted and the session waits its Retry-After.
- 3 uploaders, in rounds: uploaders 1 and 2 upload the SAME new PDF at the same moment while uploader 3 uploads a
  new PDF of its own; then 1 and 2 each upload one more new PDF. A same-file pair must give one document.

Reported: answers completed (and how many were refusals), busy replies (and how long they took), other errors
(should be 0), p50/p95 time to first token and to the end for completed answers that reached the model, uploads
done, documents at the end against the expected list, the app's RSS (with its child processes) sampled every 3 s
(start, peak, end), and the tracebacks / ERROR lines in the app's log (should be none). Requests still running at
the deadline are finished. Prints a Markdown summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.proc import rss_mb, tree_rss_mb  # noqa: E402
from tests.conftest import NURIBYEOL, ZORBLAX  # noqa: E402  (the test suite's made-up documents)
from tests.pdfs import write_pdf  # noqa: E402

QUESTIONS = [
    "How many megawatts does the Quillon-7 reactor at Vessmark produce?",
    "How many apprentices did Zorblax Dynamics train in 2023?",
    "누리별 항공의 2023년 탑승객 수는 몇 명인가?",
    "When is the second plant near Calloway Bay planned?",
    "Who won the football world cup in 1998?",  # not in the documents: refused before the model
]
LOG_PROBLEMS = ("Traceback", " ERROR ", "Exception")


@dataclass
class Tally:
    completed: int = 0
    refused: int = 0
    busy: int = 0
    busy_waited: int = 0  # of the busy replies, those that waited llm.busy_timeout (the others: a full queue)
    busy_latency: list[float] = field(default_factory=list)  # seconds from the request to the busy reply
    errors: list[str] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)  # seconds, answers that reached the model
    total: list[float] = field(default_factory=list)
    uploads: int = 0
    same_file_pairs: int = 0
    expected: set[str] = field(default_factory=set)
    rss: list[tuple[float, float, float]] = field(default_factory=list)  # (t, app MB, app + children MB)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def ask(client: httpx.AsyncClient, session: int, question: str, max_tokens: int | None,
              tally: Tally) -> float:
    """One streamed question; returns how long to wait before the next (Retry-After when busy)."""
    openai = session % 2 == 1
    if openai:
        url = "/v1/chat/completions"
        body: dict[str, Any] = {"model": "rag", "stream": True, "messages": [{"role": "user", "content": question}]}
    else:
        url, body = "/api/ask", {"question": question, "stream": True}
    if max_tokens:
        body["max_tokens"] = max_tokens
    started = time.monotonic()
    first: float | None = None
    refused, generated = False, 0
    try:
        async with client.stream("POST", url, json=body) as response:
            if response.status_code == 503:
                error = json.loads(await response.aread()).get("error", {})
                if error.get("type") == "BusyError" or error.get("code") == "BusyError":
                    tally.busy += 1
                    tally.busy_waited += "waited" in error.get("message", "")
                    tally.busy_latency.append(time.monotonic() - started)
                    return float(response.headers.get("Retry-After", "5"))
                tally.errors.append(f"session {session}: 503 {error}")
                return 1.0
            if response.status_code != 200:
                tally.errors.append(f"session {session}: HTTP {response.status_code} {(await response.aread())[:300]!r}")
                return 1.0
            event = ""
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                    continue
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if openai:
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if "error" in chunk:
                        kind = chunk["error"].get("code")
                        if kind == "BusyError":
                            tally.busy += 1
                            return 5.0
                        tally.errors.append(f"session {session}: stream error {chunk['error']}")
                        return 1.0
                    choice = chunk["choices"][0]
                    if choice["delta"].get("content") and first is None:
                        first = time.monotonic()
                    if choice.get("finish_reason"):
                        refused = bool(chunk.get("refused"))
                        generated = chunk.get("usage", {}).get("completion_tokens", 0)
                else:
                    payload = json.loads(data)
                    if event == "token" and first is None:
                        first = time.monotonic()
                    elif event == "error":
                        if payload["error"].get("type") == "BusyError":
                            tally.busy += 1
                            return 5.0
                        tally.errors.append(f"session {session}: stream error {payload['error']}")
                        return 1.0
                    elif event == "done":
                        refused = bool(payload.get("refused"))
                        generated = payload.get("usage", {}).get("completion_tokens", 0)
                        break
            else:
                tally.errors.append(f"session {session}: the stream ended without its last event")
                return 1.0
    except (httpx.HTTPError, json.JSONDecodeError, KeyError) as exc:
        tally.errors.append(f"session {session}: {type(exc).__name__}: {exc}")
        return 1.0
    tally.completed += 1
    tally.refused += refused
    if first is not None and generated:  # the model wrote it (a refusal before the model is instant)
        tally.ttft.append(first - started)
        tally.total.append(time.monotonic() - started)
    return 0.0


async def chat_session(url: str, session: int, deadline: float, max_tokens: int | None, tally: Tally) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(600, connect=30)) as client:
        n = session  # sessions start at different questions
        while time.monotonic() < deadline:
            pause = await ask(client, session, QUESTIONS[n % len(QUESTIONS)], max_tokens, tally)
            n += 1
            if pause:
                await asyncio.sleep(min(pause, max(deadline - time.monotonic(), 0)))


async def upload(client: httpx.AsyncClient, path: Path, tally: Tally, who: str) -> dict[str, Any] | None:
    try:
        response = await client.post("/api/documents", files=[("files", (path.name, path.read_bytes(), "application/pdf"))])
    except httpx.HTTPError as exc:
        tally.errors.append(f"{who}: upload {path.name}: {type(exc).__name__}: {exc}")
        return None
    if response.status_code != 200:
        tally.errors.append(f"{who}: upload {path.name}: HTTP {response.status_code} {response.text[:300]}")
        return None
    report = response.json()
    if report["failed"]:
        tally.errors.append(f"{who}: upload {path.name} failed: {report['failed']}")
        return report
    tally.uploads += 1
    return report


async def uploaders(url: str, folder: Path, deadline: float, tally: Tally) -> None:
    """Three uploaders in rounds: 1 and 2 send the same new file at once while 3 sends its own; then 1 and 2
    each send one more."""
    def new(name: str, n: int) -> Path:
        return write_pdf(folder / f"{name}.pdf", [f"Load test file {name}\n\nThe inspection code of {name} is "
                                                  f"QX-{n * 7919 % 100000:05d}. It was filed on day {n}."])

    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(600, connect=30)) as client:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            shared, third = new(f"shared-{n}", n), new(f"uploader3-{n}", 1000 + n)
            reports = await asyncio.gather(upload(client, shared, tally, "uploader 1"),
                                           upload(client, shared, tally, "uploader 2"),
                                           upload(client, third, tally, "uploader 3"))
            tally.same_file_pairs += 1
            if all(reports[:2]):
                added = sum(shared.name in (r["added"] + r["updated"]) for r in reports[:2])
                if added != 1:
                    tally.errors.append(f"round {n}: the same file from two uploaders was added {added} times: {reports[:2]}")
            tally.expected.update({shared.name, third.name})
            one, two = new(f"uploader1-{n}", 2000 + n), new(f"uploader2-{n}", 3000 + n)
            await asyncio.gather(upload(client, one, tally, "uploader 1"), upload(client, two, tally, "uploader 2"))
            tally.expected.update({one.name, two.name})


async def sample_rss(pid: int, stop: asyncio.Event, tally: Tally, started: float) -> None:
    while True:
        tally.rss.append((round(time.monotonic() - started, 1), round(rss_mb(pid), 1), round(tree_rss_mb(pid), 1)))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 3.0)
            return


async def load(url: str, pid: int, args: argparse.Namespace, folder: Path, tally: Tally) -> float:
    started = time.monotonic()
    deadline = started + args.seconds
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(pid, stop, tally, started))
    await asyncio.gather(*(chat_session(url, i, deadline, args.max_tokens, tally) for i in range(args.sessions)),
                         uploaders(url, folder, deadline, tally))
    elapsed = time.monotonic() - started
    stop.set()
    await sampler
    return elapsed


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 600) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/api/documents", timeout=5).status_code == 200:
                return
        time.sleep(1)
    raise SystemExit("the app did not answer in time")


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="rag-load-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "RAG_STORE__PATH": str(tmp / "store"), "RAG_APP__UPLOAD_DIR": str(tmp / "uploads")}
    env.pop("RAG_API_TOKEN", None)
    log_path = tmp / "app.log"
    setup = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(url, proc)
            samples = tmp / "samples"
            samples.mkdir()
            files = [write_pdf(samples / "zorblax-review.pdf", ZORBLAX), write_pdf(samples / "누리별 항공 보고서.pdf", NURIBYEOL)]
            report = httpx.post(url + "/api/documents", timeout=600,
                                files=[("files", (p.name, p.read_bytes(), "application/pdf")) for p in files]).json()
            assert sorted(report["added"]) == sorted(p.name for p in files), report
            warm = httpx.post(url + "/api/ask", json={"question": QUESTIONS[0], "max_tokens": 8}, timeout=600)
            assert warm.status_code == 200, warm.text
            setup = time.monotonic() - setup
            tally = Tally(expected={p.name for p in files})
            (tmp / "uploads-src").mkdir()
            elapsed = asyncio.run(load(url, proc.pid, args, tmp / "uploads-src", tally))
            docs = httpx.get(url + "/api/documents", timeout=60).json()
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    text = log_path.read_text(encoding="utf-8", errors="replace")
    problems = [line for line in text.splitlines() if any(p in line for p in LOG_PROBLEMS)]
    listed = [d["source"] for d in docs]
    return {
        "seconds": args.seconds, "elapsed_s": round(elapsed, 1), "setup_s": round(setup, 1), "sessions": args.sessions,
        "max_tokens": args.max_tokens, "cpus": os.cpu_count(), "load_average": os.getloadavg(),
        "answers_completed": tally.completed, "refusals": tally.refused, "busy_replies": tally.busy,
        "busy_after_waiting": tally.busy_waited,
        "busy_p50_s": pct(tally.busy_latency, 50), "busy_p95_s": pct(tally.busy_latency, 95),
        "other_errors": tally.errors,
        "ttft_p50_s": pct(tally.ttft, 50), "ttft_p95_s": pct(tally.ttft, 95),
        "total_p50_s": pct(tally.total, 50), "total_p95_s": pct(tally.total, 95),
        "answers_timed": len(tally.ttft),
        "uploads_done": tally.uploads, "same_file_pairs": tally.same_file_pairs,
        "documents": len(listed), "documents_expected": len(tally.expected),
        "missing": sorted(tally.expected - set(listed)), "extra": sorted(set(listed) - tally.expected),
        "duplicated": sorted({s for s in listed if listed.count(s) > 1}),
        "rss": tally.rss, "log_problems": problems[:40], "log_problem_count": len(problems),
        "app_exit_code": proc.returncode, "log": str(log_path),
    }


def markdown(r: dict[str, Any]) -> str:
    def s(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} s"

    rss = r["rss"]
    app = [m for _, m, _ in rss]
    tree = [t for _, _, t in rss]
    lines = [
        f"## Load: {r['sessions']} chat sessions + 3 uploaders for {r['seconds']} s",
        "",
        f"- CPUs: {r['cpus']}, load average at the end {', '.join(f'{x:.1f}' for x in r['load_average'])}; "
        f"setup (app start, 2 PDFs, warm-up) {r['setup_s']} s; load ran {r['elapsed_s']} s (with requests "
        f"finishing after the deadline); max_tokens {r['max_tokens'] or 'the app default'}",
        "",
        "| measure | value |",
        "|---|---|",
        f"| answers completed | {r['answers_completed']} ({r['refusals']} of them refusals, decided before the model) |",
        f"| busy replies (503 / BusyError) | {r['busy_replies']} ({r['busy_after_waiting']} after waiting "
        f"llm.busy_timeout, the others at once: queue full) |",
        f"| time to a busy reply, p50 / p95 | {s(r['busy_p50_s'])} / {s(r['busy_p95_s'])} |",
        f"| other errors | {len(r['other_errors'])} |",
        f"| time to first token, p50 / p95 ({r['answers_timed']} answers from the model) | "
        f"{s(r['ttft_p50_s'])} / {s(r['ttft_p95_s'])} |",
        f"| time to the end, p50 / p95 | {s(r['total_p50_s'])} / {s(r['total_p95_s'])} |",
        f"| uploads done | {r['uploads_done']} ({r['same_file_pairs']} same-file pairs sent at once) |",
        f"| documents at the end / expected | {r['documents']} / {r['documents_expected']} "
        f"(missing {len(r['missing'])}, extra {len(r['extra'])}, duplicated {len(r['duplicated'])}) |",
        f"| app RSS: after setup / peak / end | {app[0]:.0f} / {max(app):.0f} / {app[-1]:.0f} MB |" if app else "| app RSS | - |",
        f"| app + child processes RSS: after setup / peak / end | {tree[0]:.0f} / {max(tree):.0f} / {tree[-1]:.0f} MB |"
        if tree else "| tree RSS | - |",
        f"| tracebacks / ERROR lines in the app's log | {r['log_problem_count']} |",
        f"| app exit code on SIGTERM | {r['app_exit_code']} |",
    ]
    for error in r["other_errors"][:20]:
        lines.append(f"\n- error: {error}")
    for line in r["log_problems"][:20]:
        lines.append(f"\n- log: `{line}`")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=None, help="per answer (default: the app's llm.max_tokens)")
    parser.add_argument("--json", type=Path, help="also write the full result here")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
