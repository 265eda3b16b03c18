"""OCR for PDF pages without a usable text layer: decide which pages need it, render them, read them with Tesseract.

``text_layer_problem`` is the measurable test for "no usable text layer". On the non-whitespace characters of the
text the PDF's own layer gives (before clean-up), after dropping dot leaders (``·····`` in tables of contents):

- fewer than ``MIN_CHARS`` characters: no text layer (a scan, maybe with a stamped page number);
- more than ``MAX_BAD_SHARE`` of them unreadable (U+FFFD, private-use, unassigned, surrogates, control
  characters): the font has no usable Unicode map and the layer decodes to garbage;
- fewer than ``MIN_LETTER_SHARE`` of them letters (any script): glyph ids decoded as punctuation and digits.

On the dev sets (1,156 pages of SEC filings and Korean reports) the lowest letter share of a real page is 0.47 and
the highest unreadable share 0.08, so the thresholds leave a wide margin.

Pages are rendered one at a time with pypdfium2 and read by the ``tesseract`` binary (PNG on stdin, text on
stdout), single-threaded: Tesseract's OpenMP threads made a page 5-8x slower on a busy 2-core machine (7.9 s
against 1.0 s), and ingestion may run several files in parallel. pytesseract is not used because it cannot set
the subprocess environment.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

MIN_CHARS = 20
MAX_BAD_SHARE = 0.2
MIN_LETTER_SHARE = 0.25
INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-kor"
PAGE_TIMEOUT = 180  # seconds for one page
MAX_PIXELS_SIDE = 6000  # a poster-sized page is rendered smaller than the requested dpi
PSM = 4  # "a single column of text of variable sizes": best of 3/4/6 on five Korean report pages (see EVAL.md)
_LEADER_CHARS = set(".·…-_=*•\u2024\u2027\u22c5\u30fb")


class OcrUnavailable(Exception):
    """Tesseract (or a language it needs) is missing; ``hint`` says what to install."""

    def __init__(self, message: str, hint: str = INSTALL_HINT) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class TextQuality:
    chars: int  # non-whitespace characters, dot leaders excluded
    bad_share: float  # unreadable characters / chars
    letter_share: float  # letters / chars


def text_quality(raw: str) -> TextQuality:
    chars: list[str] = []
    run_char, run = "", 0
    for ch in raw:
        if ch.isspace():
            continue
        run = run + 1 if ch == run_char else 1
        run_char = ch
        chars.append(ch)
        if ch in _LEADER_CHARS and run >= 3:
            del chars[-3 if run == 3 else -1:]  # a run of 3+ leader characters counts as nothing
    if not chars:
        return TextQuality(0, 0.0, 0.0)
    bad = sum(1 for ch in chars if ch == "\ufffd" or unicodedata.category(ch) in ("Co", "Cn", "Cs", "Cc"))
    letters = sum(1 for ch in chars if unicodedata.category(ch).startswith("L"))
    return TextQuality(len(chars), bad / len(chars), letters / len(chars))


def text_layer_problem(raw: str) -> str:
    """Why the text layer ``raw`` is not usable ("no text layer", "garbled text layer"), or "" when it is."""
    quality = text_quality(raw)
    if quality.chars < MIN_CHARS:
        return "no text layer"
    if quality.bad_share > MAX_BAD_SHARE or quality.letter_share < MIN_LETTER_SHARE:
        return "garbled text layer"
    return ""


# -- Tesseract ------------------------------------------------------------------------------------------

def tesseract_binary(command: str = "tesseract") -> str:
    """Full path of the Tesseract binary, or OcrUnavailable with the install hint."""
    path = shutil.which(command)
    if path is None:
        raise OcrUnavailable("Tesseract OCR is not installed")
    return path


@functools.lru_cache(maxsize=8)
def _languages(binary: str) -> frozenset[str]:
    try:
        result = subprocess.run([binary, "--list-langs"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise OcrUnavailable(f"Tesseract OCR cannot run ({exc})") from None
    lines = result.stdout.decode("utf-8", "replace").splitlines()
    return frozenset(line.strip() for line in lines[1:] if line.strip())


def check_tesseract(languages: str, command: str = "tesseract") -> str:
    """The binary to use for ``languages`` (e.g. ``kor+eng``), or OcrUnavailable saying what to install."""
    binary = tesseract_binary(command)
    missing = [lang for lang in languages.split("+") if lang and lang not in _languages(binary)]
    if missing:
        packages = " ".join(f"tesseract-ocr-{lang.replace('_', '-').lower()}" for lang in missing)
        raise OcrUnavailable(f"Tesseract has no language data for {', '.join(missing)}",
                             hint=f"apt-get install {packages}")
    return binary


def ocr_image(image: Any, languages: str, binary: str) -> str:
    """Text of a PIL image, read by Tesseract in one single-threaded process."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    env = {**os.environ, "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "1")}
    try:
        result = subprocess.run([binary, "stdin", "stdout", "-l", languages, "--psm", str(PSM)],
                                input=buffer.getvalue(), capture_output=True, timeout=PAGE_TIMEOUT, env=env, check=False)
    except FileNotFoundError:
        raise OcrUnavailable("Tesseract OCR is not installed") from None
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"OCR took longer than {PAGE_TIMEOUT} s") from None
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(f"tesseract failed: {message[-1] if message else result.returncode}")
    return result.stdout.decode("utf-8", "replace")


class PageImages:
    """Renders pages of one PDF for OCR one at a time (bounded memory); opened on first use, closed by ``close``."""

    def __init__(self, data: bytes, dpi: int = 200) -> None:
        self._data = data
        self._dpi = dpi
        self._doc: Any = None

    def render(self, index: int) -> Any:
        """Page ``index`` (0-based) as a greyscale PIL image."""
        import pypdfium2 as pdfium

        if self._doc is None:
            self._doc = pdfium.PdfDocument(self._data)
        page = self._doc[index]
        try:
            width, height = page.get_size()
            scale = min(self._dpi / 72, MAX_PIXELS_SIDE / max(width, height, 1))
            bitmap = page.render(scale=scale, grayscale=True)
            try:
                return bitmap.to_pil().convert("L")
            finally:
                bitmap.close()
        finally:
            page.close()

    def close(self) -> None:
        if self._doc is not None:
            self._doc.close()
            self._doc = None
