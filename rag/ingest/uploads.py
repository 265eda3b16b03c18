"""The uploads folder: uploaded files are copied here under a safe name, then ingested from here, so that page
previews and "open page" links keep working after Gradio's temporary copy is gone.

A file that replaces one with the same name is staged: the old copy is kept aside until the new one has been
ingested, and put back if the new one fails, so a broken upload never takes the preview of a good document.
"""

from __future__ import annotations

import os
import re
import shutil
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

from rag.ingest.loaders import SUFFIXES, supported
from rag.types import Failure

MAX_NAME_BYTES = 200  # file systems allow 255 bytes; Hangul takes 3 bytes a syllable in UTF-8
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_RESERVED = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))})


def safe_name(name: str) -> str:
    """A file name safe to create in the uploads folder: no folders (``../``, ``C:\\``), no control or shell-hostile
    characters, no leading dot, not too long; letters of any script (Korean included) are kept."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = " ".join(_UNSAFE.sub("_", " ".join(name.split())).split()).strip(". ")
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        stem, suffix = name, ""
    suffix = suffix.lower()[:10]
    stem = stem.strip(". ") or "document"
    if stem.lower() in _RESERVED:
        stem = f"_{stem}"
    budget = MAX_NAME_BYTES - len(suffix.encode()) - 1
    while len(stem.encode()) > budget:
        stem = stem[:-1]
    return f"{stem}.{suffix}" if suffix else stem


@dataclass(frozen=True, slots=True)
class Staged:
    path: Path  # where the upload now is (what to ingest)
    backup: Path | None  # the previous file of that name, kept until the ingest is known to have worked
    created: bool = True  # False when an identical file was already there


class UploadFolder:
    def __init__(self, folder: Path, max_mb: int) -> None:
        self.folder = folder
        self.max_bytes = max_mb * 1024 * 1024
        self.max_mb = max_mb

    @property
    def previews(self) -> Path:
        return self.folder / ".previews"

    def check(self, temp: Path, name: str, *, duplicate: bool = False) -> Failure | None:
        """Why the upload ``temp`` (to be named ``name``) cannot be ingested, or None. ``duplicate``: another file
        of this upload has the same name."""
        suffix = Path(name).suffix
        if not supported(Path(name)):
            return Failure(name, f"unsupported file type '{suffix}'", "unsupported",
                           {"suffix": suffix or "?", "supported": ", ".join(sorted(SUFFIXES))})
        if duplicate:
            return Failure(name, "another file in this upload has the same name; rename one", "same_name")
        try:
            size = temp.stat().st_size
        except OSError as exc:
            return Failure(name, f"cannot read the upload ({exc.strerror or exc})", "unreadable")
        if size > self.max_bytes:
            mb = f"{size / 1024 / 1024:.1f}"
            return Failure(name, f"the file is {mb} MB; the limit is {self.max_mb} MB (raise app.max_upload_mb)",
                           "too_large", {"size": mb, "limit": self.max_mb})
        return None

    def stage(self, temp: Path, name: str) -> Staged:
        """Copy ``temp`` into the folder as ``safe_name(name)``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        dest = self.folder / safe_name(name)
        partial = self.folder / f".incoming-{uuid.uuid4().hex}"
        try:
            shutil.copyfile(temp, partial)
            backup = None
            if dest.exists():
                if _same_bytes(dest, partial):
                    return Staged(dest, None, created=False)
                backup = self.folder / f".previous-{uuid.uuid4().hex}-{dest.name}"
                os.replace(dest, backup)
            os.replace(partial, dest)
        finally:
            partial.unlink(missing_ok=True)
        return Staged(dest, backup)

    def commit(self, staged: Staged) -> None:
        if staged.backup is not None:
            staged.backup.unlink(missing_ok=True)

    def rollback(self, staged: Staged) -> None:
        """Put the previous file back, or remove a new file that could not be ingested."""
        if staged.backup is not None:
            os.replace(staged.backup, staged.path)
        elif staged.created:
            staged.path.unlink(missing_ok=True)

    def owns(self, path: str | Path) -> bool:
        try:
            return Path(path).resolve().is_relative_to(self.folder.resolve())
        except (OSError, ValueError):
            return False

    def remove(self, path: str | Path) -> None:
        """Delete an uploaded copy (when its document is deleted); files elsewhere are never touched."""
        if path and self.owns(path):
            Path(path).unlink(missing_ok=True)


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            block = fa.read(1 << 20)
            if block != fb.read(1 << 20):
                return False
            if not block:
                return True
