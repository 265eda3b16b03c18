"""Keep the store in step with a folder: ``python ingest.py --watch FOLDER``.

First the whole folder is ingested (unchanged files are skipped as always) and documents whose recorded file
under the folder no longer exists are deleted. Then every debounced batch of file-system changes is applied:
files that exist are ingested (added, updated, or skipped when their bytes are unchanged), and documents whose
files are gone are deleted. A document is only deleted when its recorded path is the deleted file, never because
another folder holds a file of the same name. Ctrl-C (SIGINT) stops the loop cleanly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from rag.ingest.loaders import supported
from rag.ingest.pipeline import OnProgress
from rag.types import Batch, DocumentInfo, IngestReport


class Library(Protocol):
    """What the watcher needs of the library (``rag.Rag`` is one)."""

    def ingest(self, paths: Iterable[str | Path], *, on_progress: OnProgress | None = None) -> IngestReport: ...
    def documents(self) -> list[DocumentInfo]: ...
    def delete(self, source: str) -> DocumentInfo: ...

logger = logging.getLogger(__name__)

DEBOUNCE_MS = 1600  # changes arriving within this window are applied together (an editor's save, a copy)


class FolderWatcher:
    def __init__(self, library: Library, folder: str | Path, *, ignored: Iterable[Path] = (),
                 progress: Callable[[], OnProgress] | None = None, on_batch: Callable[[Batch], None] | None = None,
                 debounce_ms: int = DEBOUNCE_MS, stop_event: threading.Event | None = None) -> None:
        """``ignored``: folders inside ``folder`` to leave alone (the store may live in the watched folder, as
        data/store does); ``progress`` makes the progress callback for one batch (a fresh bar each time);
        ``on_batch`` hears what each batch did; ``stop_event`` ends ``run`` from another thread."""
        self.folder = Path(folder).resolve()
        self._library = library
        self._progress = progress or (lambda: (lambda _p: None))
        self._on_batch = on_batch or (lambda _b: None)
        self._debounce_ms = debounce_ms
        self._stop = stop_event
        self._ignored = [Path(p).resolve() for p in ignored]

    def run(self, ready: Callable[[], None] | None = None) -> None:
        """Sync once, call ``ready``, then apply changes until SIGINT or ``stop_event``. Returns normally then."""
        from watchfiles import watch

        try:
            changes = watch(self.folder, watch_filter=self._wanted, debounce=self._debounce_ms, stop_event=self._stop,
                            raise_interrupt=True, rust_timeout=1000, yield_on_timeout=True)
            # The first item starts the watch; changes made from then on, even during the sync, are kept for later.
            if next(changes, None) is None:
                return
            self._on_batch(self.sync())
            if ready is not None:
                ready()
            for batch_paths in changes:
                if not batch_paths:
                    continue  # a timeout: nothing changed
                batch = self.apply(path for _change, path in batch_paths)
                if not batch.empty:
                    self._on_batch(batch)
        except KeyboardInterrupt:
            logger.info("watch of %s stopped by Ctrl-C", self.folder)

    def sync(self) -> Batch:
        """Ingest the whole folder and delete documents whose files under it are gone."""
        report = self._ingest([self.folder])
        gone = [d.source for d in self._library.documents() if d.path and self._inside(Path(d.path))
                and not Path(d.path).exists()]
        return Batch(report, self._delete(gone))

    def apply(self, paths: Iterable[str | Path]) -> Batch:
        """Apply one batch of changed paths: ingest those that exist, delete documents of those that do not."""
        present: list[Path] = []
        missing: list[Path] = []
        for raw in dict.fromkeys(Path(p) for p in paths):
            path = raw.resolve() if raw.exists() else raw
            if path.exists():
                if path.is_dir() or supported(path):
                    present.append(path)
            else:
                missing.append(path)
        gone = [d.source for d in self._library.documents() if d.path and any(_same_or_under(Path(d.path), m) for m in missing)
                and not Path(d.path).exists()]
        report = self._ingest(present) if present else IngestReport()
        return Batch(report, self._delete(gone))

    # -- internals -------------------------------------------------------------------------------------

    def _ingest(self, paths: list[Path]) -> IngestReport:
        on_progress = self._progress()
        try:
            return self._library.ingest(paths, on_progress=on_progress)
        finally:
            close = getattr(on_progress, "__exit__", None)
            if close is not None:
                close(None, None, None)

    def _delete(self, sources: list[str]) -> list[str]:
        deleted = []
        for source in sources:
            info = self._library.delete(source)
            deleted.append(info.source)
        return deleted

    def _wanted(self, _change: object, path: str) -> bool:
        p = Path(path)
        if any(part.startswith(".") for part in p.parts[len(self.folder.parts):]):
            return False  # hidden files and folders, editors' swap files
        if any(_same_or_under(p, ignored) for ignored in self._ignored):
            return False
        return supported(p) or p.is_dir() or not p.suffix  # a deleted folder has no suffix and no longer is_dir

    def _inside(self, path: Path) -> bool:
        return _same_or_under(path, self.folder)


def _same_or_under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents

