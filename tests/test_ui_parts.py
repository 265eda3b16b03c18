"""The UI's pure parts: strings in both languages, escaping and highlighting, safe upload names, the worker
thread that carries streamed events, and the login settings."""

import re
import string
import threading

import pytest

from rag.errors import AuthenticationError, ConfigError
from rag.ingest.uploads import UploadFolder, safe_name
from rag.types import Answer, Claim, DocumentInfo, Hit, Source, Usage
from ui import render, worker
from ui.app import credentials, launch_options
from ui.i18n import LANGUAGES, TEXT, detect, t

SCRIPT = "<script>alert(1)</script>"


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_string_exists_in_english_and_korean_with_the_same_placeholders():
    for key, entry in TEXT.items():
        assert set(entry) == set(LANGUAGES), key
        assert all(entry.values()), key
        assert fields(entry["en"]) == fields(entry["ko"]), key
    assert re.search(r"[\uac00-\ud7a3]", t("send", "ko")) and t("send", "en") == "Send"


@pytest.mark.parametrize("header, expected", [
    ("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7", "ko"), ("en-US,en;q=0.9", "en"), ("fr-FR,fr;q=0.9,ko;q=0.5", "ko"),
    ("en;q=0.4,ko;q=0.8", "ko"), ("de-DE", "en"), ("", "en"), (None, "en"), ("ko;q=0", "en"), ("ko;q=abc,en", "en"),
])
def test_language_is_taken_from_accept_language(header, expected):
    assert detect(header) == expected


def hit(text: str, source: str = "doc.pdf", page: int = 2) -> Hit:
    return Hit("c1", text, source, page, "d" * 64, 0.8)


def test_highlight_escapes_first_and_marks_question_words():
    out = render.highlight(f"The apprentices wrote {SCRIPT} in 2023.", "How many apprentices in 2023?")
    assert "<script" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    marked = render.highlight(SCRIPT, "script alert")  # marks go around escaped text, never into a tag
    assert "<script" not in marked and "&lt;<mark>script</mark>&gt;" in marked
    assert "<mark>apprentices</mark>" in out and "<mark>2023</mark>" in out
    assert "<mark>The</mark>" not in out  # stop words are not highlighted
    korean = render.highlight("누리별 항공의 2023년 탑승객 수는 740만 명", "2023년 탑승객 수는 몇 명인가요?")
    assert "<mark>탑승객</mark>" in korean


def test_answers_refusals_and_errors_render_escaped_and_distinct():
    sources = [Source(1, hit(f"passage {SCRIPT}")), Source(2, hit("other", page=5))]
    answer = Answer((Claim(f"It says {SCRIPT}.", (1,)),), sources, refused=False, usage=Usage(300, 20, 0.00012))
    html = render.answer(answer, "4", "gpt-4o-mini", "en")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="#src-4-1"' in html and "grounded" in html
    assert "300 prompt + 20 completion tokens" in html and "$0.0001" in html and "gpt-4o-mini" in html
    refusal = render.answer(Answer.of_text("I couldn't find it.", refused=True), "6", "", "ko")
    assert "refusal" in refusal and t("refusal_label", "ko") in refusal
    error = render.error(AuthenticationError("OpenAI rejected the API key (401)", hint="set OPENAI_API_KEY"), "en")
    assert "OpenAI rejected the API key (401)" in error and "Fix:</b> set OPENAI_API_KEY" in error
    unexpected = render.error(KeyError(SCRIPT), "en")
    assert "Traceback" not in unexpected and "<script>" not in unexpected and "KeyError" in unexpected


def test_sources_panel_puts_cited_passages_first_and_escapes_everything():
    views = [render.SourceView(1, "a<b>.pdf", 3, 0.91, f"text {SCRIPT}", cited=True, image_url="gradio_api/file=/x.png",
                               open_url="gradio_api/file=/a.pdf#page=3", opens_pdf=True, located=True),
             render.SourceView(2, "b.pdf", 1, 0.4, "not cited", cited=False)]
    html = render.sources_panel(views, "what text?", "2", "en")
    assert "<script>" not in html and "a&lt;b&gt;.pdf" in html
    assert html.index('id="src-2-1"') < html.index("<details") < html.index('id="src-2-2"')
    assert "Open page 3" in html and "page 3" in html and "score 0.91" in html
    assert t("sources_none", "en") in render.sources_panel([], "q", "1", "en")


def test_library_table_lists_documents_escaped():
    docs = [DocumentInfo(f"{SCRIPT}.pdf", "d" * 64, 4, 9, "2024-05-01T10:00:00+00:00", ocr_pages=1)]
    html = render.library(docs, "ko")
    assert "<script>" not in html and "4" in html and "9" in html and "1쪽은 OCR로 읽음" in html
    assert t("library_empty", "en") in render.library([], "en")


@pytest.mark.parametrize("raw, expected", [
    ("../../etc/passwd", "passwd"), ("C:\\Users\\me\\보고서 2024.PDF", "보고서 2024.pdf"), (".hidden.pdf", "hidden.pdf"),
    ("..", "document"), ("CON.pdf", "_CON.pdf"), ('a<b>:"c"|?.pdf', "a_b___c___.pdf"), ("tab\there\n.pdf", "tab here.pdf"),
    ("누리별 항공 보고서.pdf", "누리별 항공 보고서.pdf"),
])
def test_upload_names_are_sanitised(raw, expected):
    assert safe_name(raw) == expected


def test_long_korean_names_fit_the_file_system():
    name = safe_name("가" * 300 + ".pdf")
    assert name.endswith(".pdf") and len(name.encode()) <= 200 and name.startswith("가")


def test_upload_folder_stages_keeps_the_old_file_until_the_new_one_is_ingested(tmp_path):
    folder = UploadFolder(tmp_path / "uploads", max_mb=1)
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"%PDF-first")
    second.write_bytes(b"%PDF-second")
    staged = folder.stage(first, "../report.pdf")
    assert staged.path == tmp_path / "uploads" / "report.pdf" and staged.backup is None
    folder.commit(staged)
    replacing = folder.stage(second, "report.pdf")
    assert replacing.path.read_bytes() == b"%PDF-second"
    folder.rollback(replacing)  # the new file failed to ingest: the old one is back
    assert staged.path.read_bytes() == b"%PDF-first"
    same = folder.stage(first, "report.pdf")
    folder.rollback(same)  # an identical re-upload never removes the existing copy
    assert staged.path.exists()
    assert [p.name for p in (tmp_path / "uploads").iterdir()] == ["report.pdf"]
    big = tmp_path / "big.pdf"
    big.write_bytes(b"0" * (1024 * 1024 + 1))
    too_large = folder.check(big, "big.pdf")
    assert too_large is not None and too_large.code == "too_large" and "limit is 1 MB" in too_large.reason
    assert folder.check(big, "big.exe").code == "unsupported" and folder.check(first, "a.pdf") is None
    assert folder.owns(staged.path) and not folder.owns(tmp_path / "a")
    folder.remove(tmp_path / "a")  # outside the uploads folder: never touched
    assert (tmp_path / "a").exists()


def test_worker_carries_events_then_the_result_or_the_error():
    def work(emit):
        for i in range(5):
            emit(i)
        return "done"

    items = [item for batch in worker.run(work) for item in batch]
    assert items[:5] == [0, 1, 2, 3, 4] and items[-1] == worker.Finished("done")

    def failing(emit):
        emit("first")
        raise AuthenticationError("bad key", hint="set it")

    items = [item for batch in worker.run(failing) for item in batch]
    assert items[0] == "first" and isinstance(items[-1], worker.Failed) and items[-1].error.hint == "set it"


def test_closing_the_stream_stops_the_worker():
    gate = threading.Event()
    finished = threading.Event()

    def work(emit):
        emit("one")
        gate.wait(10)
        try:
            emit("two")  # the consumer has gone: this raises Stopped
        finally:
            finished.set()

    stream = worker.run(work)
    assert next(stream) == ["one"]
    stream.close()
    gate.set()
    assert finished.wait(10)


def test_login_needs_both_variables_and_is_off_without_them(tmp_path):
    assert credentials({}) is None
    assert credentials({"RAG_APP_USER": "u", "RAG_APP_PASSWORD": "p"}) == ("u", "p")
    with pytest.raises(ConfigError, match="RAG_APP_PASSWORD"):
        credentials({"RAG_APP_USER": "u"})


def test_launch_options_are_safe_by_default(settings):
    options = launch_options(settings, environ={})
    assert options["server_name"] == "127.0.0.1" and options["auth"] is None
    assert options["max_file_size"] == "100mb"
    assert str(settings.app.upload_dir) in options["allowed_paths"]
    assert str(settings.store.path) in options["blocked_paths"]


def test_upload_results_are_redrawn_in_either_language():
    rows = [render.FileRow("a.pdf", "added", pages=4, chunks=9), render.FileRow("b.pdf")]
    rows[1].fail(key="too_large", size="120.0", limit=100)
    english, korean = render.ingest_results(rows, "en"), render.ingest_results(rows, "ko")
    assert "added: 4 pages, 9 chunks" in english and "120.0 MB; the limit is 100 MB" in english
    assert "추가됨: 4쪽, 조각 9개" in korean and "한도는 100MB" in korean
    failed = render.FileRow("c.pdf")
    failed.fail("not a PDF: no %PDF header")
    assert 'data-stage="failed"' in render.ingest_results([failed], "ko") and "not a PDF" in render.stage_label(failed, "ko")
