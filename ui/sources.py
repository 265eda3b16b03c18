"""Turn an answer's sources into what the sources panel shows: passage, score, a preview of the cited page with
the passage marked (``Rag.preview``), and a link that opens the PDF at that page through Gradio's file route; for
a passage of an audio file, a player that starts at the passage's time."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from rag import Rag
from rag.types import Answer
from ui.render import SourceView

logger = logging.getLogger(__name__)

FILE_ROUTE = "gradio_api/file="  # relative, so the app also works under a root path
AUDIO = (".mp3", ".wav", ".m4a", ".ogg", ".webm")
_TIME_RANGE = re.compile(r"^(\d+):(\d\d):(\d\d)-")  # the location of a passage of an audio file


def file_url(path: Path) -> str:
    return FILE_ROUTE + quote(str(path), safe="/")


class SourceViews:
    def __init__(self, rag: Rag, served: Sequence[Path], blocked: Sequence[Path] = ()) -> None:
        """``served``: folders whose PDFs the browser may open (they are Gradio's allowed_paths)."""
        self._rag = rag
        self._served = [p.resolve() for p in served]
        self._blocked = [p.resolve() for p in blocked]

    def serves(self, path: Path) -> bool:
        resolved = path.resolve()
        return (any(resolved.is_relative_to(folder) for folder in self._served)
                and not any(resolved.is_relative_to(folder) for folder in self._blocked))

    def build(self, answer: Answer, *, previews: bool = True) -> list[SourceView]:
        cited = {s.n for s in answer.cited()}
        views = []
        for source in answer.sources:
            hit = source.hit
            view = SourceView(n=source.n, source=hit.source, page=hit.page, score=hit.score, text=hit.text,
                              cited=source.n in cited, ocr=hit.ocr, location=hit.location)
            info = self._rag.document(hit.source)
            path = Path(info.path) if info is not None and info.path else None
            if path is not None and not path.is_file():
                view = _replace(view, missing_path=str(path))
            elif path is not None and previews and path.suffix.lower() == ".pdf":
                view = self._with_preview(view, path, hit.text, hit.doc_id)
            elif path is not None and path.suffix.lower() in AUDIO and self.serves(path):
                start = start_seconds(hit.location)
                view = _replace(view, audio_url=file_url(path) + (f"#t={start}" if start is not None else ""))
            views.append(view)
        return views

    def _with_preview(self, view: SourceView, path: Path, passage: str, doc_id: str) -> SourceView:
        try:
            preview = self._rag.preview(path, view.page, passage, doc_id=doc_id)
        except Exception as exc:  # noqa: BLE001 - a preview is a nicety: never let it take the answer down
            logger.warning("no preview of %s page %d: %s", path, view.page, exc)
            return view
        image = file_url(preview.image)
        if self.serves(path):
            return _replace(view, image_url=image, located=preview.located,
                            open_url=f"{file_url(path)}#page={view.page}", opens_pdf=True)
        return _replace(view, image_url=image, located=preview.located, open_url=image)


def start_seconds(location: str) -> int | None:
    """Where a passage of an audio file starts ("00:03:12-00:04:05" -> 192), or None."""
    match = _TIME_RANGE.match(location or "")
    if match is None:
        return None
    hours, minutes, seconds = (int(g) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _replace(view: SourceView, **changes: object) -> SourceView:
    from dataclasses import replace

    return replace(view, **changes)
