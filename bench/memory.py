"""Peak memory of the app serving with the offline default models loaded.

    .venv/bin/python bench/memory.py

A child process does what `python app.py` does (build Rag, build the Gradio UI, launch it on a free port),
ingests the sample PDFs, answers questions with both offline models (so the embedding model and llama.cpp are
loaded), fetches the page over HTTP, then reports its peak resident set size (VmHWM from /proc), and the peak
of it together with its child processes (the forkserver and parse workers of multi-file ingests), sampled.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(store: str) -> dict:
    sys.path.insert(0, str(ROOT))
    from rag import offline_defaults

    offline_defaults()
    from proc import PeakTreeRss  # bench/proc.py

    from rag import Rag
    from rag.config import load_config
    from ui.app import build

    tree = PeakTreeRss()
    rag = Rag(load_config(environ={"RAG_STORE__PATH": store}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    build(rag).queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    rag.ingestor.ingest([ROOT / "data"])
    answers = [rag.answerer.ask(q) for q in ("What was Aurora's revenue in 2024?", "2024년 딸기 생산량은 얼마인가요?")]
    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30).read()
    status = Path("/proc/self/status").read_text()
    fields = {line.split(":")[0]: line.split(":")[1].strip() for line in status.splitlines() if ":" in line}
    return {"peak_tree_rss_mb": tree.stop(), "peak_rss_mb": int(fields["VmHWM"].split()[0]) / 1024,
             "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
            "page_bytes": len(page), "answered": [not a.refused for a in answers]}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2])))
        os._exit(0)  # gradio's server thread would keep the process alive
    with tempfile.TemporaryDirectory(prefix="bench-mem-") as store:
        out = subprocess.run([sys.executable, __file__, "--child", store], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.exit(out.stderr[-3000:])
        result = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
