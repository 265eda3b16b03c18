"""Run the real app (``python app.py``) on a free port and drive it with Playwright and Debian's chromium.

Used by the browser tests, bench/ui_latency.py and scripts/screenshot.py. Playwright downloads no browser here:
it drives /usr/bin/chromium (installed by ``scripts/install-system.sh test``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("RAG_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ANSWERED = "#chat .answer.grounded, #chat .answer.refusal, #chat .answer.error, #chat .answer.notice"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AppServer:
    """``python app.py`` in a subprocess with its store and uploads in ``folder``; its output goes to app.log."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None, startup_timeout: float = 180) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = folder / "app.log"
        self._env = env or {}
        self._timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> AppServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_", "AZURE_OPENAI_"))}
        env.update({"RAG_STORE__PATH": str(self.folder / "store"), "RAG_APP__UPLOAD_DIR": str(self.folder / "uploads"),
                    "OMP_WAIT_POLICY": "passive", "PYTHONUNBUFFERED": "1",
                    **self._env})
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen([sys.executable, "app.py", "--port", str(self.port)], cwd=ROOT, env=env,
                                          stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"the app exited with {self._proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"the app did not answer on {self.url} within {self._timeout:.0f} s:\n{self.output()}")

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=15)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


def launch_browser(playwright: Any) -> Any:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"no chromium at {CHROMIUM}: install it with `scripts/install-system.sh test` "
                           "(or point RAG_TEST_CHROMIUM at a Chromium binary)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def open_app(browser: Any, url: str, *, locale: str = "en-US", timeout: float = 60_000) -> Any:
    """A new page on the app, loaded and with its document library drawn."""
    context = browser.new_context(locale=locale, viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(timeout)
    page.goto(url, wait_until="load")
    page.wait_for_selector("#library")
    return page


def upload(page: Any, paths: list[Path], timeout: float = 300_000) -> dict[str, str]:
    """Drop files on the upload box; wait until each has a final result. Returns {file name: result line}."""
    page.set_input_files("#upload input[type=file]", [str(p) for p in paths])
    page.wait_for_function(
        """n => { const rows = document.querySelectorAll('#ingest-results li');
                  return rows.length === n && [...rows].every(li => ['added', 'updated', 'skipped', 'failed']
                         .includes(li.dataset.stage)); }""", arg=len(paths), timeout=timeout)
    rows = page.locator("#ingest-results li")
    results = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        results[row.locator("b").inner_text()] = f"{row.get_attribute('data-stage')}: {row.inner_text()}"
    return results


def ask(page: Any, question: str, timeout: float = 300_000) -> Any:
    """Send a question and wait for its final answer (or refusal, error, notice); returns that message."""
    before = page.locator(ANSWERED).count()
    page.fill("#question textarea", question)
    page.click("#send")
    page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length > n", arg=[ANSWERED, before],
                           timeout=timeout)
    return page.locator(ANSWERED).last


_WATCH = """([name, selector, pattern]) => { window[name] = [];
  new MutationObserver(() => { for (const el of document.querySelectorAll(selector)) {
      const match = el.innerText.match(new RegExp(pattern));
      if (match && !window[name].includes(match[0])) window[name].push(match[0]); } })
    .observe(document.body, {childList: true, subtree: true, characterData: true}); }"""


def watch(page: Any, name: str, selector: str, pattern: str = r"\S[\s\S]*") -> None:
    """From now on, record in the page every distinct text matching ``pattern`` that elements matching
    ``selector`` show, however briefly (streamed tokens, retry notices). Read it back with ``seen``."""
    page.evaluate(_WATCH, [name, selector, pattern])


def seen(page: Any, name: str) -> list[str]:
    return page.evaluate(f"window[{name!r}]")
