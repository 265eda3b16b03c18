"""Ingest progress for terminals (a tqdm bar over files) and for logs/pipes (one line per finished file)."""

from __future__ import annotations

from typing import Any, TextIO

from rag.ingest import Progress

_FINAL = {"added", "updated", "skipped", "failed"}


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

    def __call__(self, event: Progress) -> None:
        if not self._tty:
            if event.stage in _FINAL:
                detail = f": {event.detail}" if event.detail else ""
                print(f"[{event.done}/{event.total}] {event.stage} {event.file}{detail}", file=self._stream, flush=True)
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=event.total, unit="file", file=self._stream, dynamic_ncols=True)
        self._bar.set_postfix_str(f"{event.stage} {event.file[:40]}", refresh=False)
        self._bar.n = event.done
        self._bar.refresh()
        if event.stage == "failed":
            self._bar.write(f"failed: {event.file}: {event.detail}")
