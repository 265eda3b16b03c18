"""Page previews: render a PDF page to PNG with pypdfium2 and mark where a cited passage sits on it.

Passages are stored as normalised text (NFKC, whitespace collapsed, hyphenated line breaks joined), so they are
located by comparing "skeletons": only letters and digits, lower-cased, with every skeleton character mapped
back to its character index on the page. A passage found whole is marked whole; otherwise its pieces that can
be found are marked (a trimmed passage, a page whose text layer differs a little). Scanned pages have no text
layer, so nothing is marked and ``Preview.located`` is False.

Images are cached by document hash, page and passage, so showing the same source again costs nothing;
``forget(doc_id)`` drops a deleted document's images.
"""

from __future__ import annotations

import hashlib
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from rag.errors import DocumentError

Rect = tuple[float, float, float, float]  # left, bottom, right, top in PDF units
WINDOW = 24  # skeleton characters per piece when a passage is not found whole
MAX_HEIGHT = 4000  # pixels: a page of odd shape (1 x 14,400 pt) at the preview's width would take gigabytes
_render_lock = threading.Lock()  # pdfium is not thread-safe


@dataclass(frozen=True, slots=True)
class Preview:
    image: Path  # PNG of the page, the passage marked
    page: int  # 1-based
    located: bool  # the passage was found on the page and marked


def skeleton(text: str) -> tuple[str, list[int]]:
    """Letters and digits of ``text``, NFKC-folded and lower-cased, with the index in ``text`` of each one."""
    chars: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        for folded in unicodedata.normalize("NFKC", ch).lower():
            if folded.isalnum():
                chars.append(folded)
                where.append(i)
    return "".join(chars), where


def locate(page_text: str, passage: str) -> list[tuple[int, int]]:
    """Character ranges ``(start, end)`` of ``page_text`` that hold ``passage``: one range when the passage
    is found whole, else the ranges of those of its pieces that occur in order; [] when nothing is found."""
    page_skel, where = skeleton(page_text)
    passage_skel, _ = skeleton(passage)
    if not passage_skel or not page_skel:
        return []
    at = page_skel.find(passage_skel)
    if at >= 0:
        return [(where[at], where[at + len(passage_skel) - 1] + 1)]
    spans: list[tuple[int, int]] = []
    cursor = 0
    for start in range(0, len(passage_skel), WINDOW):
        piece = passage_skel[start:start + WINDOW]
        if len(piece) < min(WINDOW, 8):
            break
        at = page_skel.find(piece, cursor)
        if at < 0:
            continue
        end = at + len(piece)
        if spans and at <= spans[-1][1] + WINDOW:  # adjacent pieces: one span
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((at, end))
        cursor = end
    covered = sum(e - s for s, e in spans)
    if covered < min(len(passage_skel), 3 * WINDOW) / 2:  # a few stray words are not the passage
        return []
    return [(where[s], where[e - 1] + 1) for s, e in spans]


class Previews:
    """Page previews of PDF files, rendered into ``cache_dir`` (created on first use) and kept there."""

    def __init__(self, cache_dir: Path, width: int = 800) -> None:
        self.cache_dir = cache_dir
        self.width = width

    def render(self, pdf: Path, page: int, passage: str = "", *, doc_id: str = "") -> Preview:
        """PNG of ``page`` (1-based) of ``pdf``, the passage marked where it can be located."""
        key = hashlib.sha256(f"{doc_id or pdf}|{page}|{passage}|{self.width}".encode()).hexdigest()[:24]
        name = f"{doc_id[:12] or 'page'}-p{page}-{key}"
        for located in (True, False):  # the name says whether the passage was marked
            cached = self.cache_dir / f"{name}{'-marked' if located else ''}.png"
            if cached.exists():
                return Preview(cached, page, located)
        with _render_lock:
            image, located = self._draw(pdf, page, passage)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        out = self.cache_dir / f"{name}{'-marked' if located else ''}.png"
        tmp = out.with_suffix(f".{threading.get_ident()}.tmp")
        image.save(tmp, "PNG", optimize=True)
        tmp.replace(out)
        return Preview(out, page, located)

    def forget(self, doc_id: str) -> int:
        """Delete the cached previews of a document (when it is deleted); returns how many were removed."""
        if not doc_id or not self.cache_dir.is_dir():
            return 0
        removed = 0
        for image in self.cache_dir.glob(f"{doc_id[:12]}-p*.png"):
            image.unlink(missing_ok=True)
            removed += 1
        return removed

    def _draw(self, pdf: Path, page_no: int, passage: str):  # -> (PIL image, whether the passage was marked)
        import pypdfium2 as pdfium
        from PIL import ImageDraw

        try:
            doc = pdfium.PdfDocument(str(pdf))
        except (pdfium.PdfiumError, OSError) as exc:
            raise DocumentError(f"cannot open {pdf.name} for a preview ({exc})") from exc
        try:
            if not 1 <= page_no <= len(doc):
                raise DocumentError(f"{pdf.name} has no page {page_no}")
            page = doc[page_no - 1]
            left, bottom, right, top = page.get_bbox()
            scale = min(self.width / max(right - left, 1.0), MAX_HEIGHT / max(top - bottom, 1.0))
            if min(right - left, top - bottom) * scale < 8:
                raise DocumentError(f"page {page_no} of {pdf.name} is too narrow or too flat to preview")
            rotation = page.get_rotation() % 360
            image = page.render(scale=scale).to_pil().convert("RGB")
            rects = _passage_rects(page, passage) if passage else []
            layer = ImageDraw.Draw(image, "RGBA")  # RGBA drawing on an RGB image blends
            for rect in rects:
                x0, y0, x1, y1 = _to_pixels(rect, (left, bottom, right, top), rotation, scale)
                layer.rectangle((x0 - 3, y0 - 3, x1 + 3, y1 + 3), fill=(255, 214, 0, 110), outline=(230, 120, 0, 255),
                                width=3)
            return image, bool(rects)
        finally:
            doc.close()


def _passage_rects(page, passage: str) -> list[Rect]:
    textpage = page.get_textpage()
    try:
        count = textpage.count_chars()
        if count <= 0:
            return []
        text = textpage.get_text_range()
        if len(text) != count:  # rare: pdfium dropped or inserted characters; read them one by one
            text = "".join((textpage.get_text_range(i, 1) or "\0")[:1] for i in range(count))
        rects: list[Rect] = []
        for start, end in locate(text, passage):
            for i in range(textpage.count_rects(start, end - start)):
                rects.append(textpage.get_rect(i))
        return rects
    finally:
        textpage.close()


def _to_pixels(rect: Rect, box: Rect, rotation: int, scale: float) -> tuple[float, float, float, float]:
    """PDF-unit rectangle -> pixel box of the rendered (possibly rotated) page."""
    left, bottom, right, top = box
    width, height = right - left, top - bottom
    corners = []
    for x, y in ((rect[0], rect[1]), (rect[2], rect[3])):
        u, v = x - left, y - bottom
        if rotation == 90:
            px, py = v, u
        elif rotation == 180:
            px, py = width - u, v
        elif rotation == 270:
            px, py = height - v, width - u
        else:
            px, py = u, height - v
        corners.append((px * scale, py * scale))
    (ax, ay), (bx, by) = corners
    return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)
