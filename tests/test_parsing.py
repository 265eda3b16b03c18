"""Parsing ahead of the embedding model, in worker processes or a thread: same result, errors and progress."""

import os
import signal
import threading

import pytest

from rag.errors import DocumentError
from rag.ingest.loading import LoadOptions
from rag.ingest.pdf import pdf_page_count
from rag.ingest.splitting import Splitter
from rag.ingest.workers import ParsePool, Planned
from tests.conftest import ZORBLAX
from tests.pdfs import write_pdf


def planned(path, doc_id="d" * 64, source=None) -> Planned:
    """What ingest planning hands the pool: the file, its name, hash and page count."""
    return Planned(path, source or path.name, doc_id, pdf_page_count(path.read_bytes()))


def parse_with(processes: int, path, doc_id="d" * 64):
    pages = []
    with ParsePool(LoadOptions(), Splitter(800, 120), lambda *event: pages.append(event), processes=processes) as pool:
        parsed = pool.submit(planned(path, doc_id)).result(timeout=120)
    return parsed, pages


def test_worker_processes_and_a_thread_parse_alike(tmp_path):
    path = write_pdf(tmp_path / "zorblax.pdf", ZORBLAX)
    in_process, pages_p = parse_with(2, path)
    in_thread, pages_t = parse_with(0, path)
    assert in_process == in_thread
    assert [c.page for c in in_process.chunks][-1] == len(ZORBLAX)
    assert all(in_process.texts) and len(in_process.texts) == len(in_process.chunks)
    expected = [("zorblax.pdf", n, len(ZORBLAX)) for n in range(1, len(ZORBLAX) + 1)]
    assert pages_p == pages_t == expected  # page progress comes back from the workers


def test_errors_from_a_worker_keep_their_type_and_fix(tmp_path):
    path = tmp_path / "page.pdf"
    path.write_text("<html><body>Not a PDF</body></html>")
    with ParsePool(LoadOptions(), Splitter(800, 120), lambda *e: None, processes=1) as pool:
        with pytest.raises(DocumentError) as raised:
            pool.submit(planned(path)).result(timeout=120)
    assert "HTML" in str(raised.value) and raised.value.hint


def test_a_killed_worker_is_replaced_and_the_file_still_parsed(tmp_path):
    """The OOM killer (here: SIGKILL) takes a worker mid-file: a fresh pool parses the file again."""
    path = write_pdf(tmp_path / "long.pdf", [f"Page {n} of the long report. " * 40 for n in range(1, 121)])
    started = threading.Event()

    def on_page(source, page, pages):
        started.set()

    with ParsePool(LoadOptions(), Splitter(800, 120), on_page, processes=1) as pool:
        future = pool.submit(planned(path))
        assert started.wait(timeout=120)
        workers = pool.pids()
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        parsed = future.result(timeout=300)
        assert len(parsed.pages) == 120
        assert parsed.pages and not set(pool.pids()) & set(workers)  # a new worker did it


def test_a_long_pdf_is_parsed_in_page_ranges_like_in_one_piece(tmp_path):
    from rag.ingest.workers import SPLIT_PAGES, processes_for

    texts = [f"Section {n}. The turbine hall {n} logged {n * 7} inspections." for n in range(1, 2 * SPLIT_PAGES + 11)]
    path = write_pdf(tmp_path / "long.pdf", texts)
    assert processes_for([planned(path)]) == 2 and processes_for([planned(write_pdf(tmp_path / "short.pdf", texts[:3]))]) == 0
    in_parts, progress = parse_with(2, path)
    whole, _ = parse_with(0, path)
    assert in_parts == whole  # same pages, chunks, ids and terms as one sequential parse
    assert [p.page for p in in_parts.pages] == list(range(1, len(texts) + 1))
    assert sorted(n for _, n, _ in progress) == list(range(1, len(texts) + 1))  # a count of pages read


def test_a_broken_part_fails_the_file_with_its_reason(tmp_path):
    texts = [f"Page {n} text." for n in range(1, 101)]
    path = write_pdf(tmp_path / "long.pdf", texts)
    blank = write_pdf(tmp_path / "blank.pdf", [" "] * 100)  # long, but no text on any page
    with ParsePool(LoadOptions(ocr="never"), Splitter(800, 120), lambda *e: None, processes=2) as pool:
        good = pool.submit(planned(path))
        bad = pool.submit(planned(blank, "e" * 64))
        assert len(good.result(timeout=120).pages) == 100
        with pytest.raises(DocumentError) as raised:
            bad.result(timeout=120)
    assert "text" in str(raised.value)
