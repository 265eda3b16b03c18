"""Large files: generate an N-page PDF (default 1,000), ingest it into a temporary store, report memory and speed.

    python bench/large_pdf.py [--pages 1000] [--scanned 0] [--parse-only]

Prints one JSON object: pages, chunks, seconds and pages/s for parsing and for the whole ingest, the resident
memory (RSS) before the ingest (models loaded), at 10% and at 100% of the pages parsed, and the peak RSS of the
process. Bounded memory shows as RSS at 100% of the pages close to RSS at 10%. ``--scanned N`` makes N of the
pages pictures without a text layer, so OCR speed can be measured too (about 1-2 s a page on one core).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = ("reactor turbine output grid storage permit budget plant coolant inspection audit capacity revenue margin "
         "staff training safety schedule contract supplier").split()


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_pdf(path: Path, pages: int, scanned: int) -> None:
    import random

    from fpdf import FPDF

    rng = random.Random(7)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=False)
    pdf.set_font("Helvetica", size=10)
    step = pages // scanned if scanned else 0
    images = 0
    for number in range(1, pages + 1):
        pdf.add_page()
        text = (f"Section {number}. Plant {number % 37} report. "
                + " ".join(rng.choice(WORDS) for _ in range(170)) + f" The figure for page {number} is {number * 17}.")
        if step and number % step == 0 and images < scanned:
            pdf.image(_picture(text), x=0, y=0, w=210)
            images += 1
        else:
            pdf.multi_cell(0, 5, text)
    pdf.output(str(path))


def _picture(text: str):
    import textwrap

    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (1240, 1754), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=22)
    for i, line in enumerate(textwrap.wrap(text, 90)):
        draw.text((80, 100 + i * 32), line, fill=0, font=font)
    return image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--scanned", type=int, default=0, help="how many pages are pictures (read by OCR)")
    parser.add_argument("--parse-only", action="store_true", help="load and split only: no embedding model, no store")
    args = parser.parse_args()

    from rag import offline_defaults

    offline_defaults()
    import logging

    logging.disable(logging.WARNING)
    from rag import Rag
    from rag.config import load_config
    from rag.ingest.pipeline import file_hash
    from rag.ingest.splitting import Splitter
    from rag.ingest.workers import parse
    from rag.types import Progress

    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / f"large-{args.pages}.pdf"
        start = time.perf_counter()
        make_pdf(pdf, args.pages, args.scanned)
        made = time.perf_counter() - start
        settings = load_config(environ={"RAG_STORE__PATH": str(Path(tmp) / "store")})
        rag = Rag(settings)
        splitter = Splitter(settings.ingest.chunk_size, settings.ingest.chunk_overlap)
        if not args.parse_only:
            rag.embedder().embed_documents(["warm up"])  # load the model first, so RSS before counts it
        result: dict[str, object] = {"pages": args.pages, "scanned_pages": args.scanned,
                                     "file_mb": round(pdf.stat().st_size / 2**20, 1), "generate_s": round(made, 1),
                                     "rss_before_mb": round(rss_mb())}
        marks: dict[str, float] = {}

        def on_page(page: int, pages: int) -> None:
            if page == max(1, pages // 10):
                result["rss_at_10pct_pages_mb"] = round(rss_mb())
            if page == pages:
                result["rss_at_100pct_pages_mb"] = round(rss_mb())
                marks["parsed"] = time.perf_counter()

        def on_progress(event: Progress) -> None:
            if event.stage == "parsing" and event.steps:
                on_page(event.step, event.steps)

        start = time.perf_counter()
        if args.parse_only:
            data = pdf.read_bytes()
            parsed = parse(data, pdf.name, file_hash(data), rag.ingestor.options, splitter, on_page=on_page)
            chunks, ocr_pages = len(parsed.chunks), sum(p.ocr for p in parsed.pages)
        else:
            report = rag.ingestor.ingest([pdf], on_progress=on_progress)
            assert report.added == [pdf.name], report.to_json()
            info = rag.store.document(pdf.name)
            chunks, ocr_pages = info.chunks, info.ocr_pages
        total = time.perf_counter() - start
        parse = marks.get("parsed", time.perf_counter()) - start
        result.update({"chunks": chunks, "ocr_pages": ocr_pages, "parse_s": round(parse, 1),
                       "parse_pages_per_s": round(args.pages / parse, 1), "total_s": round(total, 1),
                       "total_pages_per_s": round(args.pages / total, 2), "peak_rss_mb": round(peak_mb())})
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
