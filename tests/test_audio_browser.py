"""Audio in a real browser: the real ``python app.py`` (SmolLM2 for speed) with its transcription provider pointed at
the loopback transcription server. An espeak-ng recording is uploaded, a question is spoken into Chromium's fake
microphone (it plays a WAV file), and the cited passage's player starts at the passage's time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.browser import ANSWERED, CHROMIUM, CHROMIUM_ARGS, AppServer, upload
from tests.servers.running import ServerThread
from tests.servers.transcription_api import transcription_app
from tests.test_audio import ENGLISH, speak

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng: scripts/install-system.sh test")]
QUESTION = "When was the Quillon-7 reactor commissioned?"


def test_upload_audio_ask_by_voice_and_play_the_cited_moment(tmp_path: Path):
    from playwright.sync_api import sync_playwright

    audio, said = speak(ENGLISH, "en", tmp_path)
    (tmp_path / "question").mkdir()
    recording, _ = speak([QUESTION], "en", tmp_path / "question")
    (tmp_path / "plant-tour.wav").write_bytes(audio)
    (tmp_path / "question.wav").write_bytes(recording)
    stt = transcription_app()
    stt.state.say(audio, said)
    stt.state.unknown = [(0.0, 2.5, QUESTION)]  # what the live recording says

    with ServerThread(stt) as server, \
            AppServer(tmp_path / "app", env={"RAG_LLM__MODEL": "SmolLM2-135M-Instruct",
                                             "RAG_TRANSCRIPTION__PROVIDER": "openai",
                                             "RAG_TRANSCRIPTION__BASE_URL": f"{server.url}/v1",
                                             "RAG_TRANSCRIPTION__PASSAGE_SECONDS": "5"}) as app_server, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={tmp_path / 'question.wav'}"])
        try:
            context = browser.new_context(permissions=["microphone"], viewport={"width": 1440, "height": 900})
            page = context.new_page()
            page.set_default_timeout(120_000)
            page.goto(app_server.url, wait_until="load")
            page.wait_for_selector("#library")

            results = upload(page, [tmp_path / "plant-tour.wav"])
            assert results["plant-tour.wav"].startswith("added:"), results

            page.click("#mic .record-button")
            page.wait_for_timeout(2500)
            page.click("#mic .stop-button")
            page.wait_for_function("sel => document.querySelectorAll(sel).length > 0", arg=ANSWERED, timeout=300_000)
            recorded = [r for r in server.app.state.requests if r["filename"] != "plant-tour.wav"]
            assert recorded and recorded[0]["size"] > 1000  # the browser's recording reached the provider
            assert QUESTION in page.inner_text("#chat")  # asked like typed text
            answer = page.locator(ANSWERED).last
            assert "grounded" in answer.get_attribute("class"), answer.inner_text()

            card = page.locator("#sources .src-card.cited").first
            card.wait_for()
            assert "plant-tour.wav" in card.inner_text() and "00:00:0" in card.inner_text()
            player = card.locator("audio")
            src = player.get_attribute("src")
            start = int(src.rsplit("#t=", 1)[1])
            assert src.startswith("gradio_api/file=") and start in {int(s) for s, _, _ in said}
            page.wait_for_function("a => a.readyState >= 1", arg=player.element_handle())
            assert player.evaluate("a => a.currentTime") == pytest.approx(start, abs=0.5)  # plays from that moment
        finally:
            browser.close()

