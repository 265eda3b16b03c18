"""Ingest progress for terminals (a tqdm bar over files, with the page or chunk count of the current file) and for
logs/pipes (one line per finished file, and a line at every tenth of a large file's pages and chunks)."""

from __future__ import annotations

from typing import Any, TextIO

from rag.ingest import Progress

_FINAL = {"added", "updated", "skipped", "failed"}
LARGE = 100  # pages or chunks from which a pipe also gets progress lines within the file


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
        within = f" {event.unit} {event.page}/{event.pages}" if event.pages and event.stage not in _FINAL else ""
        self._bar.set_postfix_str(f"{event.stage} {event.file[:40]}{within}", refresh=False)
        self._bar.n = event.done
        self._bar.refresh()
        if event.stage == "failed":
            self._bar.write(f"failed: {event.file}: {event.detail}")

    def _line(self, event: Progress) -> None:
        if event.stage in _FINAL:
            detail = f": {event.detail}" if event.detail else ""
            print(f"[{event.done}/{event.total}] {event.stage} {event.file}{detail}", file=self._stream, flush=True)
        elif event.pages >= LARGE and event.page and _tenth(event.page, event.pages):
            print(f"[{event.done}/{event.total}] {event.stage} {event.file}: {event.unit} {event.page}/{event.pages}",
                  file=self._stream, flush=True)


def _tenth(done: int, total: int) -> bool:
    """True when ``done`` is the first count at or past a tenth of ``total``."""
    step = total / 10
    return int(done / step) > int((done - 1) / step) if done > 0 else False
