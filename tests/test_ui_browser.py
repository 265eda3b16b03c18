"""The app in a real browser: the real ``python app.py`` with the offline default models, driven by Playwright and
Debian's chromium. Waits are generous (a shared 2-core machine); nothing here asserts how fast anything is."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import ANSWERED, AppServer, ask, launch_browser, open_app, seen, upload, watch
from tests.conftest import ZORBLAX
from tests.pdfs import write_pdf

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    with AppServer(tmp_path_factory.mktemp("app")) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(app, browser):
    page = open_app(browser, app.url)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    yield page
    page.context.close()


def test_upload_ask_cited_answer_refusal_and_delete(page, tmp_path, app):
    good = write_pdf(tmp_path / "zorblax-review.pdf", ZORBLAX)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(os.urandom(3000))

    results = upload(page, [good, broken])
    assert results["zorblax-review.pdf"].startswith("added:") and "4" in results["zorblax-review.pdf"]
    assert results["broken.pdf"].startswith("failed:") and "not a PDF" in results["broken.pdf"]
    assert "zorblax-review.pdf" in page.inner_text("#library")
    assert page.locator("#use-docs input[type=checkbox]:checked").count() >= 1  # chosen for the chat by default
    assert (Path(app.folder) / "uploads" / "zorblax-review.pdf").is_file()  # kept for previews; the broken one is not
    assert not (Path(app.folder) / "uploads" / "broken.pdf").exists()

    watch(page, "streamed", "#chat .answer.streaming")
    answer = ask(page, "How many megawatts does the Quillon-7 reactor produce?")
    assert seen(page, "streamed"), "the answer was not shown while it streamed"
    assert "grounded" in answer.get_attribute("class")
    text = answer.inner_text()
    assert "418" in text
    assert "[1]" in text or "[2]" in text
    sources = page.locator("#sources")
    sources.locator(".src-card.cited").first.wait_for()
    cited = sources.locator(".src-card.cited").first
    assert "zorblax-review.pdf" in cited.inner_text()
    assert cited.get_attribute("data-page") == "3"
    assert "418" in cited.locator(".src-text").inner_text()
    assert cited.locator(".src-text mark").count() >= 1  # the question's words are highlighted
    preview = cited.locator("img")
    preview.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=preview.element_handle())
    link = cited.locator("a.src-open").get_attribute("href")
    assert link.endswith("#page=3") and "zorblax-review.pdf" in link
    response = page.request.get(app.url + link.split("#")[0])
    assert response.ok and response.body().startswith(b"%PDF")
    assert "token" in text.lower()  # usage is shown with each answer

    page.click("#new-chat")
    page.wait_for_function("sel => document.querySelectorAll(sel).length === 0", arg=ANSWERED)
    refusal = ask(page, "Who won the football world cup in 1966?")
    assert "refusal" in refusal.get_attribute("class")
    assert "Not found in your documents" in refusal.inner_text()

    page.get_by_text("Delete a document").click()
    page.locator("#delete-pick input").click()
    page.get_by_role("option", name="zorblax-review.pdf").click()
    page.click("#delete")
    page.locator("#delete-yes").wait_for(state="visible")
    assert "Delete “zorblax-review.pdf” and its 4 chunks?" in page.inner_text("#delete-box")
    page.click("#delete-yes")
    page.wait_for_function("() => !document.querySelector('#library').innerText.includes('zorblax-review.pdf')")
    assert "Deleted" in page.inner_text("#ingest-results")
    assert not (Path(app.folder) / "uploads" / "zorblax-review.pdf").exists()
    assert not list((Path(app.folder) / "uploads" / ".previews").glob("*.png"))  # its page previews went too
    assert page.dialogs == []


def test_script_in_a_pdf_is_shown_as_text(page, tmp_path):
    payload = "<script>alert(1)</script>"
    pdf = write_pdf(tmp_path / "notes.pdf", [f"Security notes\n\nThe string {payload} and <img src=x onerror=alert(2)> "
                                             "and <a href=\"javascript:alert(3)\">open</a> appear in this file. "
                                             "The vault code of Orlen Ridge is 7741."])
    # markup and a javascript: link in a file name, too
    named = write_pdf(tmp_path / "<img src=x onerror=alert(4)> javascript:alert(5).pdf",
                      ["Harbour log. The ferry Tamsel Wing docks at pier 12."])
    results = upload(page, [pdf, named])
    assert results["notes.pdf"].startswith(("added", "updated"))
    assert len(results) == 2 and all(r.startswith(("added", "updated")) for r in results.values()), results
    ask(page, "What is the vault code of Orlen Ridge?")
    card = page.locator("#sources .src-card").first
    card.wait_for()
    assert payload in card.locator(".src-text").inner_text()  # shown as text ...
    assert page.locator("#sources script, #chat script, #sources img[src=x]").count() == 0  # ... not as markup
    ask(page, "At which pier does the ferry Tamsel Wing dock?")
    page.locator("#sources .src-card").first.wait_for()
    assert page.locator("#library").inner_text().count("onerror") >= 1  # the file name is listed, as text
    assert page.locator("img[src=x], a[href^='javascript:' i], [onerror]").count() == 0  # nowhere on the page
    assert page.dialogs == []

    page.locator("#use-docs label", has_text="notes.pdf").click()  # the chat may no longer use it
    reply = ask(page, "What is the vault code of Orlen Ridge?")
    assert reply.get_attribute("class").split()[-1] in ("notice", "refusal")
    assert "notes.pdf" not in reply.inner_text()


def test_language_follows_the_browser_and_can_be_switched(app, browser):
    page = open_app(browser, app.url, locale="ko-KR")
    try:
        page.wait_for_function("() => document.querySelector('#title').innerText.includes('PDF와 대화하기')")
        assert "보내기" in page.inner_text("#send")
        page.locator("#language").get_by_text("English").click()
        page.wait_for_function("() => document.querySelector('#title').innerText.includes('Chat with your PDFs')")
        assert "Send" in page.inner_text("#send")
        assert "Documents the chat may use" in page.inner_text("#use-docs")
        library = page.inner_text("#library")
        assert "Name" in library or "No documents yet" in library  # panels are redrawn too
    finally:
        page.context.close()


def test_provider_errors_are_readable_and_retries_are_shown(page, tmp_path, free_port_closed):
    """A switch to OpenAI without a key is refused with the fix; a server that is down is retried, visibly,
    then reported with its fix; the offline model is put back."""
    assert upload(page, [write_pdf(tmp_path / "zorblax-review.pdf", ZORBLAX)])["zorblax-review.pdf"].split(":")[0] in (
        "added", "updated", "skipped")
    page.get_by_text("Settings").click()

    def use(provider: str, base_url: str = "") -> str:
        page.locator("#provider input").click()
        page.get_by_role("option", name=provider, exact=True).click()
        page.fill("#base-url textarea, #base-url input", base_url)
        before = page.locator("#model-status .model-status").get_attribute("data-seq")
        page.click("#apply-model")
        page.wait_for_function("seq => document.querySelector('#model-status .model-status').dataset.seq !== seq",
                               arg=before)
        return page.inner_text("#model-status .model-status")

    status = use("openai")
    assert "no OpenAI API key found" in status and "OPENAI_API_KEY" in status  # the message and its fix

    try:
        assert "Now using openai" in use("openai", f"http://127.0.0.1:{free_port_closed}/v1")
        watch(page, "retries", "#chat .answer", r"retrying \(\d/\d\)")
        error = ask(page, "How many megawatts does the Quillon-7 reactor produce?")
        assert "error" in error.get_attribute("class")
        text = error.inner_text()
        assert "cannot connect" in text and "Fix" in text
        assert "Traceback" not in page.inner_text("body")
        assert "retrying (1/3)" in seen(page, "retries"), "no retry notice was shown"
    finally:
        assert "Now using llamacpp" in use("llamacpp")


@pytest.fixture
def free_port_closed() -> int:
    from tests.browser import free_port

    return free_port()  # nothing listens on it


def test_login_is_required_when_configured(browser, tmp_path):
    env = {"RAG_APP_USER": "reader", "RAG_APP_PASSWORD": "s3cret-pass"}
    with AppServer(tmp_path / "app", env=env) as server:
        context = browser.new_context(locale="en-US")
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            page.goto(server.url, wait_until="load")
            page.locator("input[type=password]").wait_for()
            assert page.locator("#library").count() == 0
            page.locator("input[type=text]").first.fill("reader")
            page.fill("input[type=password]", "wrong")
            page.keyboard.press("Enter")
            page.get_by_text("Incorrect", exact=False).first.wait_for()
            page.locator("input[type=text]").first.fill("reader")  # the form is cleared after a failure
            page.fill("input[type=password]", "s3cret-pass")
            page.keyboard.press("Enter")
            page.wait_for_selector("#library")
        finally:
            context.close()
        assert "s3cret-pass" not in server.output()
