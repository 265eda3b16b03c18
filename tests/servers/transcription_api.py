"""A speech-to-text server for tests with OpenAI's shapes: ``POST /v1/audio/transcriptions`` takes multipart form
data (``file``, ``model``, ``response_format``, ``timestamp_granularities[]``, ``language``) and answers
``verbose_json`` (text, language, duration, segments with start/end) or ``json`` (text only); Azure OpenAI's
``POST /openai/deployments/{deployment}/audio/transcriptions?api-version=...`` (``api-key`` header) the same.

No speech model runs here: a test tells the server what its audio holds (``app.state.say(wav_bytes, segments)``),
keyed by the audio's sha256; other audio, such as a live recording, says ``app.state.unknown``. A WAV part of
such audio (the transcriber cuts long files) is recognised by finding its samples inside the whole, and answered
with the segments that overlap it, in the part's own time, so the transcriber's offsets are checked for real.
Every request is recorded in ``app.state.requests`` (form fields, file name, size and sha256 of the bytes
received); ``api_key`` None takes any key; ``app.state.failures`` is a list of HTTP statuses to answer first.
"""

from __future__ import annotations

import hashlib
import io
import wave
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse


@dataclass(frozen=True)
class Spoken:
    segments: list[tuple[float, float, str]]  # (start, end, text) in seconds
    language: str
    pcm: bytes = b""  # the WAV's samples, to recognise parts of it
    rate: int = 0
    frame_size: int = 0


def transcription_app(*, api_key: str | None = None, models: tuple[str, ...] = ("whisper-1",)) -> FastAPI:
    app = FastAPI(title="OpenAI audio transcription (test server)")
    app.state.requests = []
    app.state.failures = []
    app.state.unknown = [(0.0, 1.0, "unrecognised audio")]  # what any other audio (a live recording) says
    known: dict[str, Spoken] = {}

    def say(audio: bytes, segments: list[tuple[float, float, str]], language: str = "english") -> None:
        pcm, rate, size = _samples(audio)
        known[hashlib.sha256(audio).hexdigest()] = Spoken(segments, language, pcm, rate, size)

    app.state.say = say

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request):
        return await _transcribe(request, request.headers.get("authorization", "").removeprefix("Bearer ").strip())

    @app.post("/openai/deployments/{deployment}/audio/transcriptions")
    async def azure_transcriptions(deployment: str, request: Request):
        """Azure OpenAI's form: the deployment in the path, ``api-version`` in the query, an ``api-key`` header."""
        if request.query_params.get("api-version") is None:
            return _error(404, "Resource not found", "404")
        return await _transcribe(request, request.headers.get("api-key", ""), deployment=deployment)

    async def _transcribe(request: Request, key: str, deployment: str | None = None):
        form = await request.form()
        upload = form.get("file")
        data = await upload.read() if upload is not None and hasattr(upload, "read") else b""
        record: dict[str, Any] = {
            "path": request.url.path, "key": key, "deployment": deployment,
            "authorization": request.headers.get("authorization", ""),
            "content_type": request.headers.get("content-type", ""),
            "model": form.get("model"), "response_format": form.get("response_format"),
            "granularities": form.getlist("timestamp_granularities[]"), "language": form.get("language"),
            "filename": getattr(upload, "filename", None), "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "data": data,
        }
        app.state.requests.append(record)
        if app.state.failures:
            status = app.state.failures.pop(0)
            return _error(status, "The server is overloaded, try again", "server_error")
        if api_key is not None and key != api_key:
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        if deployment is None and record["model"] not in models:
            return _error(404, f"The model `{record['model']}` does not exist", "model_not_found")
        if not data:
            return _error(400, "No file was sent", "invalid_file")
        segments, language, duration = _recognise(data, known, app.state.unknown)
        text = " ".join(s[2] for s in segments)
        if record["response_format"] == "text":
            return PlainTextResponse(text)
        if record["response_format"] != "verbose_json":
            return JSONResponse({"text": text})
        return JSONResponse({
            "task": "transcribe", "language": language, "duration": duration, "text": text,
            "segments": [{"id": i, "seek": 0, "start": s, "end": e, "text": f" {t}", "tokens": [], "temperature": 0.0,
                          "avg_logprob": -0.2, "compression_ratio": 1.2, "no_speech_prob": 0.01}
                         for i, (s, e, t) in enumerate(segments)],
        })

    return app


def _recognise(data: bytes, known: dict[str, Spoken],
               unknown: list[tuple[float, float, str]]) -> tuple[list[tuple[float, float, str]], str, float]:
    whole = known.get(hashlib.sha256(data).hexdigest())
    if whole is not None:
        return whole.segments, whole.language, max((e for _, e, _ in whole.segments), default=0.0)
    pcm, rate, _ = _samples(data)
    for spoken in known.values():
        if pcm and spoken.pcm and rate == spoken.rate and (at := spoken.pcm.find(pcm)) >= 0 and at % spoken.frame_size == 0:
            start = at / spoken.frame_size / rate
            end = start + len(pcm) / spoken.frame_size / rate
            inside = [(max(s, start) - start, min(e, end) - start, t) for s, e, t in spoken.segments if e > start and s < end]
            return [(round(s, 3), round(e, 3), t) for s, e, t in inside], spoken.language, round(end - start, 3)
    return unknown, "english", max((e for _, e, _ in unknown), default=0.0)


def _samples(audio: bytes) -> tuple[bytes, int, int]:
    try:
        with wave.open(io.BytesIO(audio)) as w:
            return w.readframes(w.getnframes()), w.getframerate(), w.getsampwidth() * w.getnchannels()
    except (wave.Error, EOFError):
        return b"", 0, 0


def _error(status: int, message: str, code: str) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}}, status_code=status)
