"""How well OCR reads Korean scans, by render resolution and Tesseract page-segmentation mode.

Scanned pages are simulated from real Korean text: paragraphs taken from the text layers of the dev-ko PDFs are
typeset on an A4 page at a scanner's resolution (body text of ``--points`` pt, NanumMyeongjo or NanumGothic),
then degraded the way office scanners degrade pages (a slight skew, blur, speckle noise, JPEG compression), and
saved as image-only PDFs. Each page is then read the way ingest reads it (``rag.ingest.ocr.PageImages`` renders
it at the DPI under test; the ``tesseract`` binary reads it single-threaded with ``-l kor+eng``), and scored:

- word recall: the share of the source's Hangul words (whitespace-separated, punctuation stripped) found in
  the OCR text's words;
- bigram recall: the share of the source's Hangul character bigrams (spaces removed) found in the OCR text,
  which forgives a wrongly split or merged word;
- Latin-for-Hangul: Hangul words that came back as Latin letters (the "street name read as Latin" fault);
- seconds per page.

    python bench/ocr_quality.py [--dpis 150,200,300,400] [--psms 3,4,6] [--pages 4]

Results go to stdout as a Markdown table; docs/BENCHMARKS.md records a run.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HANGUL_WORD = re.compile(r"[\uac00-\ud7a3]+")
FONTS = {"gothic": "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
         "myeongjo": "/usr/share/fonts/truetype/nanum/NanumMyeongjo.ttf"}
# (name, scanner dpi, body text size in points, font, degrade)
SCANS = [("clean 300 dpi, 10 pt gothic", 300, 10, "gothic", False),
         ("office 200 dpi, 10 pt myeongjo, noisy", 200, 10, "myeongjo", True),
         ("office 200 dpi, 8 pt gothic, noisy", 200, 8, "gothic", True),
         ("fine print 300 dpi, 7 pt myeongjo, noisy", 300, 7, "myeongjo", True)]


def korean_paragraphs(folder: Path, pages: int, chars: int = 900) -> list[str]:
    """Text blocks of about ``chars`` characters from the Korean text layers of ``folder``'s PDFs."""
    from pypdf import PdfReader

    from rag.text import normalise

    blocks: list[str] = []
    for pdf in sorted(folder.glob("*.pdf")):
        try:
            reader = PdfReader(pdf)
        except Exception:  # noqa: BLE001 - a bench input we cannot read is skipped
            continue
        for page in reader.pages[1:6]:
            text = normalise(page.extract_text() or "")
            hangul = len(HANGUL_WORD.findall(text))
            if hangul < 80:
                continue
            lines = [ln for ln in text.split("\n") if HANGUL_WORD.search(ln) and len(ln) > 15]
            block = "\n".join(lines)[:chars]
            if len(block) > chars // 2:
                blocks.append(block)
                break
        if len(blocks) == pages:
            break
    return blocks


def wrap(text: str, font, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}".strip()
            if font.getlength(candidate) > width and line:
                lines.append(line)
                line = word
            else:
                line = candidate
        if line:
            lines.append(line)
    return lines


def scan(text: str, dpi: int, points: int, font_name: str, degrade: bool, seed: int):
    """A PIL image of ``text`` typeset on A4 at ``dpi``, degraded like an office scan when ``degrade``."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    width, height = round(8.27 * dpi), round(11.69 * dpi)
    size = round(points * dpi / 72)
    font = ImageFont.truetype(FONTS[font_name], size)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    margin = dpi  # one inch
    y = margin
    for line in wrap(text, font, width - 2 * margin):
        draw.text((margin, y), line, fill=0, font=font)
        y += round(size * 1.6)
    if not degrade:
        return image
    rng = random.Random(seed)
    image = image.rotate(rng.uniform(-0.8, 0.8), resample=Image.BICUBIC, fillcolor=255)
    image = image.filter(ImageFilter.GaussianBlur(0.7))
    pixels = image.load()
    for _ in range(width * height // 400):  # speckles
        pixels[rng.randrange(width), rng.randrange(height)] = rng.choice((0, 96, 160))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=55)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("L")


def ocr(pdf: Path, dpi: int, psm: int, binary: str) -> tuple[str, float]:
    from rag.ingest.ocr import PageImages

    start = time.perf_counter()
    images = PageImages(pdf.read_bytes(), dpi=dpi)
    try:
        image = images.render(0)
    finally:
        images.close()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    result = subprocess.run([binary, "stdin", "stdout", "-l", "kor+eng", "--psm", str(psm)], input=buffer.getvalue(),
                            capture_output=True, env=env, check=True, timeout=600)
    return result.stdout.decode("utf-8", "replace"), time.perf_counter() - start


def score(source: str, read: str) -> tuple[float, float, int]:
    words = HANGUL_WORD.findall(source)
    found = Counter(HANGUL_WORD.findall(read))
    hits = 0
    for word in words:
        if found[word] > 0:
            found[word] -= 1
            hits += 1
    flat_source = "".join(HANGUL_WORD.findall(source))
    flat_read = "".join(HANGUL_WORD.findall(read))
    bigrams = Counter(flat_source[i:i + 2] for i in range(len(flat_source) - 1))
    read_bigrams = Counter(flat_read[i:i + 2] for i in range(len(flat_read) - 1))
    bigram_hits = sum(min(n, read_bigrams[b]) for b, n in bigrams.items())
    latin_words = sum(1 for w in re.findall(r"\S+", read) if re.fullmatch(r"[A-Za-z]{2,}", w))
    return hits / max(len(words), 1), bigram_hits / max(sum(bigrams.values()), 1), latin_words


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval", default=str(Path(__file__).resolve().parents[2] / "shared/eval/dev-ko"))
    parser.add_argument("--dpis", default="150,200,300,400")
    parser.add_argument("--psms", default="4")
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--scans", default="", help="only the scans whose name contains this")
    args = parser.parse_args()

    from rag.ingest.ocr import check_tesseract

    binary = check_tesseract("kor+eng")
    blocks = korean_paragraphs(Path(args.eval) / "pdfs", args.pages)
    print(f"{len(blocks)} Korean text blocks, {sum(len(HANGUL_WORD.findall(b)) for b in blocks)} Hangul words", flush=True)
    print("| scan | OCR dpi | psm | word recall | bigram recall | Latin words | s/page |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, scan_dpi, points, font, degrade in [s for s in SCANS if args.scans in s[0]]:
            pdfs = []
            for i, block in enumerate(blocks):
                path = Path(tmp) / f"{scan_dpi}-{points}-{font}-{i}.pdf"
                scan(block, scan_dpi, points, font, degrade, seed=i).save(path, "PDF", resolution=scan_dpi)
                pdfs.append((path, block))
            for dpi in [int(d) for d in args.dpis.split(",")]:
                for psm in [int(p) for p in args.psms.split(",")]:
                    words = bigrams = seconds = 0.0
                    latin = 0
                    for path, block in pdfs:
                        text, elapsed = ocr(path, dpi, psm, binary)
                        w, b, lat = score(block, text)
                        words, bigrams, seconds, latin = words + w, bigrams + b, seconds + elapsed, latin + lat
                    n = len(pdfs)
                    print(f"| {name} | {dpi} | {psm} | {words / n:.3f} | {bigrams / n:.3f} | {latin} | {seconds / n:.1f} |",
                          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
