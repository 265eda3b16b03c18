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
from dataclasses import dataclass, field
from pathlib import Path

from rag.ingest import Ingestor, OnProgress
from rag.loaders import supported
from rag.store import Store
from rag.types import IngestReport

logger = logging.getLogger(__name__)

DEBOUNCE_MS = 1600  # changes arriving within this window are applied together (an editor's save, a copy)


@dataclass(slots=True)
class Batch:
    """What one batch of changes did."""

    report: IngestReport
    deleted: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        r = self.report
        return not (r.added or r.updated or r.skipped or r.failed or self.deleted)

    def summary(self) -> str:
        r = self.report
        return (f"added {len(r.added)}, updated {len(r.updated)}, skipped {len(r.skipped)}, failed {len(r.failed)}, "
                f"deleted {len(self.deleted)}")


class FolderWatcher:
    def __init__(self, ingestor: Ingestor, store: Store, folder: str | Path, *,
                 progress: Callable[[], OnProgress] | None = None, on_batch: Callable[[Batch], None] | None = None,
                 debounce_ms: int = DEBOUNCE_MS, stop_event: threading.Event | None = None) -> None:
        """``progress`` makes the progress callback for one batch (a fresh bar each time); ``on_batch`` hears
        what each batch did; ``stop_event`` ends ``run`` from another thread."""
        self.folder = Path(folder).resolve()
        self._ingestor = ingestor
        self._store = store
        self._progress = progress or (lambda: (lambda _p: None))
        self._on_batch = on_batch or (lambda _b: None)
        self._debounce_ms = debounce_ms
        self._stop = stop_event
        self._ignored = [store.folder.resolve()]  # the store may live inside the watched folder (data/store)

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
        gone = [d.source for d in self._store.documents() if d.path and self._inside(Path(d.path))
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
        gone = [d.source for d in self._store.documents() if d.path and any(_same_or_under(Path(d.path), m) for m in missing)
                and not Path(d.path).exists()]
        report = self._ingest(present) if present else IngestReport()
        return Batch(report, self._delete(gone))

    # -- internals -------------------------------------------------------------------------------------

    def _ingest(self, paths: list[Path]) -> IngestReport:
        on_progress = self._progress()
        try:
            return self._ingestor.ingest(paths, on_progress=on_progress)
        finally:
            close = getattr(on_progress, "__exit__", None)
            if close is not None:
                close(None, None, None)

    def _delete(self, sources: list[str]) -> list[str]:
        deleted = []
        for source in sources:
            info = self._store.delete(source)
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

