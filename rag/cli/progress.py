"""Ingest progress for terminals (a tqdm bar over files, with the page or chunk count of the current file) and for
logs/pipes (one line per finished file, and a line at every tenth of a large file's pages and chunks)."""

from __future__ import annotations

from typing import Any, TextIO

from rag.types import FINAL_STAGES, Progress

LARGE = 100  # pages or chunks from which a pipe also gets progress lines within the file


def describe(event: Progress) -> str:
    """What a finished file's line says after its name: its counts, "unchanged", or why it failed."""
    if event.failure is not None:
        return event.failure.reason
    if event.stage == "skipped":
        return "unchanged"
    if event.document is not None:
        return f"{event.document.pages} pages, {event.document.chunks} chunks"
    return ""


class IngestProgress:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._bar: Any = None
        self._tty = hasattr(stream, "isatty") and stream.isatty()

    def __enter__(self) -> IngestProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __call__(self, event: Progress) -> None:
        if not self._tty:
            self._line(event)
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=event.total, unit="file", file=self._stream, dynamic_ncols=True)
        within = f" {event.unit} {event.step}/{event.steps}" if event.steps and event.stage not in FINAL_STAGES else ""
        self._bar.set_postfix_str(f"{event.stage} {event.file[:40]}{within}", refresh=False)
        self._bar.n = event.done
        self._bar.refresh()
        if event.stage == "failed":
            self._bar.write(f"failed: {event.file}: {describe(event)}")

    def _line(self, event: Progress) -> None:
        if event.stage in FINAL_STAGES:
            detail = describe(event)
            detail = f": {detail}" if detail else ""
            print(f"[{event.done}/{event.total}] {event.stage} {event.file}{detail}", file=self._stream, flush=True)
        elif event.steps >= LARGE and event.step and _tenth(event.step, event.steps):
            print(f"[{event.done}/{event.total}] {event.stage} {event.file}: {event.unit} {event.step}/{event.steps}",
                  file=self._stream, flush=True)


def _tenth(done: int, total: int) -> bool:
    """True when ``done`` is the first count at or past a tenth of ``total``."""
    step = total / 10
    return int(done / step) > int((done - 1) / step) if done > 0 else False
