"""Progress of a long file: per page while parsing, per batch of chunks while embedding; lines for logs."""

from __future__ import annotations

import io

from rag.cli.progress import IngestProgress
from rag.types import Progress
from tests.pdfs import write_pdf


def test_a_long_pdf_reports_every_page_and_embedding_batches(make_rag, tmp_path):
    path = write_pdf(tmp_path / "long.pdf", [f"Page {n}: the Vessmark plant produced {n * 3} megawatts." for n in range(1, 121)])
    events: list[Progress] = []
    log = io.StringIO()  # not a terminal: lines, not a bar
    progress = IngestProgress(log)

    def record(event: Progress) -> None:
        events.append(event)
        progress(event)

    report = make_rag().ingestor.ingest([path], on_progress=record)
    assert report.added == ["long.pdf"]
    parsing = [(e.step, e.steps) for e in events if e.stage == "parsing" and e.steps]
    assert parsing == [(n, 120) for n in range(1, 121)]
    embedding = [(e.step, e.steps) for e in events if e.stage == "embedding"]
    assert embedding[0] == (0, 120) and embedding[-1] == (120, 120)
    assert [e.stage for e in events][-1] == "added"

    lines = log.getvalue().splitlines()
    page_lines = [line for line in lines if ": page " in line]
    assert page_lines == [f"[0/1] parsing long.pdf: page {n}/120" for n in range(12, 121, 12)]
    assert lines[-1] == "[1/1] added long.pdf: 120 pages, 120 chunks"
