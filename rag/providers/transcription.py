"""Speech to text: transcription providers (openai, azure, and any server with OpenAI's /v1/audio/transcriptions
through ``transcription.base_url``; local: the bundled Whisper base on faster-whisper) behind one registry, and
``Transcriber``: one path for all of them that sends a long file in parts within the API's size limit, asks for
segment timestamps (``verbose_json``), shifts each part's times by where the part starts, and retries like chat.

Parts: with ``ffmpeg`` on the PATH any audio file is re-encoded to mono MP3 and cut into parts of a length that
fits the limit (ffmpeg's segment muxer, which also reports where each part starts); without it, a WAV file is
cut by frames with the standard library's ``wave`` module, and other formats over the limit fail with the fix.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rag.config import TranscriptionSettings
from rag.errors import ConfigError, DocumentError, MissingDependencyError
from rag.providers.registry import Registry, require
from rag.providers.retry import OnRetry, RetryPolicy

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".mp3", ".wav", ".m4a", ".ogg", ".webm")
DEFAULT_MODEL = "whisper-1"
MP3_KBPS = 48  # parts made by ffmpeg: mono MP3 at this bitrate (plenty for speech)
NOT_CONFIGURED_HINT = ("set transcription.provider: openai (key in OPENAI_API_KEY) or azure "
                       "(AZURE_OPENAI_API_KEY, transcription.base_url, transcription.deployment); for any server "
                       "with OpenAI's /v1/audio/transcriptions (a local whisper server) set transcription.provider: "
                       "openai and transcription.base_url: http://host:port/v1; offline: transcription.provider: local "
                       "(the bundled Whisper base, pip install -e '.[speech]')")


@dataclass(frozen=True, slots=True)
class Segment:
    start: float  # seconds from the start of the file
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    segments: tuple[Segment, ...] = ()
    language: str = ""
    duration: float = 0.0

    def shifted(self, seconds: float) -> Transcript:
        return replace(self, segments=tuple(Segment(s.start + seconds, s.end + seconds, s.text) for s in self.segments))


@dataclass(frozen=True, slots=True)
class Part:
    """A piece of an audio file small enough to send, and where it starts in the file (seconds)."""

    data: bytes
    filename: str
    start: float = 0.0


@dataclass(frozen=True)
class TranscriptionBackend:
    """What a factory builds: ``transcribe(part) -> Transcript`` (one request, no retries), the model's name
    and where it runs."""

    transcribe: Callable[[Part], Transcript] = field(repr=False)
    name: str
    base_url: str | None = None
    remote: bool = True


TranscriptionFactory = Callable[[TranscriptionSettings], TranscriptionBackend]
TRANSCRIPTION: Registry[TranscriptionFactory] = Registry("transcription")


@TRANSCRIPTION.register("none")
def _none(s: TranscriptionSettings) -> TranscriptionBackend:
    raise ConfigError("no transcription provider is configured, so audio cannot be turned into text",
                      hint=NOT_CONFIGURED_HINT)


@TRANSCRIPTION.register("openai")
def _openai(s: TranscriptionSettings) -> TranscriptionBackend:
    from rag.providers.keys import openai_key

    module = require("openai", "openai")
    client = module.OpenAI(api_key=openai_key(s.base_url).get_secret_value(), base_url=s.base_url,
                           timeout=s.timeout, max_retries=0)
    name = s.model or DEFAULT_MODEL
    return TranscriptionBackend(lambda part: _verbose(client, name, part, s.language), name, s.base_url)


@TRANSCRIPTION.register("azure")
def _azure(s: TranscriptionSettings) -> TranscriptionBackend:
    from rag.providers.keys import azure_key

    module = require("openai", "openai")
    endpoint = s.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
    deployment = s.deployment or s.model or DEFAULT_MODEL
    if not endpoint:
        raise ConfigError("Azure OpenAI transcription needs an endpoint",
                          hint="set transcription.base_url (https://NAME.openai.azure.com) or AZURE_OPENAI_ENDPOINT, "
                               "and transcription.deployment")
    client = module.AzureOpenAI(azure_endpoint=endpoint, azure_deployment=deployment,
                                api_version=s.api_version or "2024-10-21", api_key=azure_key().get_secret_value(),
                                timeout=s.timeout, max_retries=0)
    return TranscriptionBackend(lambda part: _verbose(client, deployment, part, s.language), deployment, endpoint)


@TRANSCRIPTION.register("local")
def _local(s: TranscriptionSettings) -> TranscriptionBackend:
    """Whisper on this machine through faster-whisper (CTranslate2): the bundled whisper-base when
    transcription.model is empty (rag.providers.bundled_whisper), or a faster-whisper model folder."""
    from rag.providers import bundled_whisper

    module = require("faster_whisper", "faster-whisper", extra="speech")
    if s.model in (None, bundled_whisper.NAME):
        try:
            path, name = bundled_whisper.folder(), bundled_whisper.NAME
        except MissingDependencyError as exc:
            raise MissingDependencyError(exc.message, hint="install the bundled speech model with: "
                                                           "pip install -e '.[speech]'") from None
    elif os.path.isdir(s.model):
        path, name = s.model, os.path.basename(os.path.normpath(s.model))
    else:
        raise ConfigError(f"transcription.model '{s.model}' is not a faster-whisper model folder",
                          hint=f"leave it empty for the bundled {bundled_whisper.NAME} (pip install -e '.[speech]'), or "
                               "point it at a folder holding model.bin, config.json and tokenizer.json")
    model = module.WhisperModel(path, device="cpu", compute_type="int8")

    def transcribe(part: Part) -> Transcript:
        segments, info = model.transcribe(io.BytesIO(part.data), language=s.language)
        found = tuple(Segment(float(x.start), float(x.end), x.text.strip()) for x in segments if x.text.strip())
        return Transcript(" ".join(x.text for x in found), found, info.language, float(info.duration))

    return TranscriptionBackend(transcribe, name, remote=False)


def _verbose(client: Any, model: str, part: Part, language: str | None) -> Transcript:
    """One request for ``verbose_json`` with segment timestamps; a server that sends plain JSON (text only)
    gives one segment over the whole part."""
    options: dict[str, Any] = {"language": language} if language else {}
    response = client.audio.transcriptions.create(model=model, file=(part.filename, part.data),
                                                  response_format="verbose_json",
                                                  timestamp_granularities=["segment"], **options)
    return parse_verbose(response if isinstance(response, dict | str) else response.model_dump())


def parse_verbose(body: dict[str, Any] | str) -> Transcript:
    if isinstance(body, str):
        return Transcript(body.strip(), (Segment(0.0, 0.0, body.strip()),) if body.strip() else ())
    text = str(body.get("text") or "").strip()
    segments = tuple(Segment(float(s.get("start") or 0.0), float(s.get("end") or 0.0), str(s.get("text") or "").strip())
                     for s in body.get("segments") or [] if str(s.get("text") or "").strip())
    duration = float(body.get("duration") or 0.0)
    if not segments and text:
        segments = (Segment(0.0, duration, text),)
    return Transcript(text or " ".join(s.text for s in segments), segments, str(body.get("language") or ""), duration)


# -- parts ----------------------------------------------------------------------------------------------

def split_audio(data: bytes, filename: str, limit: int, *, ffmpeg: str | None = "auto") -> list[Part]:
    """``data`` as parts of at most ``limit`` bytes, each with its start time. ``ffmpeg``: the command ("auto":
    found on the PATH; None: do without it)."""
    if len(data) <= limit:
        return [Part(data, filename)]
    command = shutil.which("ffmpeg") if ffmpeg == "auto" else ffmpeg
    if command:
        return _ffmpeg_parts(command, data, filename, limit)
    if Path(filename).suffix.lower() == ".wav":
        return wav_parts(data, filename, limit)
    mb = len(data) / 1024 / 1024
    raise DocumentError(f"the audio file is {mb:.0f} MB, over the {limit / 1024 / 1024:.0f} MB a transcription request "
                        "may carry, and it can be cut into parts only with ffmpeg (or as a .wav file)",
                        hint="install ffmpeg (apt-get install ffmpeg), or convert the file to .wav")


def wav_parts(data: bytes, filename: str, limit: int) -> list[Part]:
    """A WAV file cut by frames into WAV files of at most ``limit`` bytes (header included)."""
    try:
        with wave.open(io.BytesIO(data)) as source:
            params = source.getparams()
            frames = source.readframes(params.nframes)
    except (wave.Error, EOFError) as exc:
        raise DocumentError(f"cannot read the WAV file: {exc}", hint="check that the file is a PCM .wav file") from None
    frame_size = params.sampwidth * params.nchannels
    per_part = max(1, (limit - 1024) // frame_size)  # room for the header
    stem = Path(filename).stem
    parts = []
    for k, first in enumerate(range(0, params.nframes, per_part)):
        out = io.BytesIO()
        with wave.open(out, "wb") as target:
            target.setnchannels(params.nchannels)
            target.setsampwidth(params.sampwidth)
            target.setframerate(params.framerate)
            target.writeframes(frames[first * frame_size:(first + per_part) * frame_size])
        parts.append(Part(out.getvalue(), f"{stem}.part{k + 1}.wav", first / params.framerate))
    return parts


def _ffmpeg_parts(command: str, data: bytes, filename: str, limit: int) -> list[Part]:
    seconds = max(1.0, limit * 8 / (MP3_KBPS * 1000) * 0.9)  # 10% below the limit: MP3 frames vary a little
    with tempfile.TemporaryDirectory(prefix="rag-audio-") as tmp:
        folder = Path(tmp)
        source = folder / f"input{Path(filename).suffix.lower()}"
        source.write_bytes(data)
        listing = folder / "parts.csv"
        args = [command, "-nostdin", "-v", "error", "-i", str(source), "-vn", "-ac", "1", "-ar", "16000",
                "-c:a", "libmp3lame", "-b:a", f"{MP3_KBPS}k", "-f", "segment", "-segment_time", f"{seconds:.3f}",
                "-segment_list", str(listing), "-segment_list_type", "csv", str(folder / "part%04d.mp3")]
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            reason = (done.stderr or "").strip().splitlines()[-1:] or ["no reason given"]
            raise DocumentError(f"ffmpeg could not read the audio file: {reason[0][:200]}",
                                hint="check that the file plays; convert it to .mp3 or .wav")
        stem = Path(filename).stem
        parts = []
        for line in listing.read_text().splitlines():
            name, start, _end = line.rsplit(",", 2)
            chunk = (folder / name).read_bytes()
            if len(chunk) > limit:  # cannot happen at this bitrate; say so rather than send a request that fails
                raise DocumentError(f"ffmpeg made a part of {len(chunk)} bytes, over the limit of {limit}")
            parts.append(Part(chunk, f"{stem}.part{len(parts) + 1}.mp3", float(start)))
    return parts


# -- the transcriber ------------------------------------------------------------------------------------

class Transcriber:
    """A transcription model from the registry: parts, retries with backoff, translated errors."""

    def __init__(self, provider: str, backend: TranscriptionBackend, *, retry: RetryPolicy, max_part_bytes: int,
                 ffmpeg: str | None = "auto") -> None:
        self.provider = provider
        self.name = backend.name
        self.base_url = backend.base_url
        self._backend = backend
        self._retry = retry
        self._limit = max_part_bytes
        self._ffmpeg = ffmpeg

    def transcribe(self, data: bytes, filename: str, *, on_retry: OnRetry | None = None) -> Transcript:
        """The transcript of the audio ``data`` (the file named ``filename``), segment times from its start."""
        parts = split_audio(data, filename, self._limit, ffmpeg=self._ffmpeg) if self._backend.remote else [Part(data, filename)]
        if len(parts) > 1:
            logger.info("%s: %d bytes sent in %d parts", filename, len(data), len(parts))
        texts, segments, language, end = [], [], "", 0.0
        for part in parts:
            found = self._retry.call(lambda part=part: self._backend.transcribe(part), on_retry=on_retry)
            found = found.shifted(part.start)
            texts.append(found.text)
            segments.extend(found.segments)
            language = language or found.language
            end = max([end, part.start + found.duration, *(s.end for s in found.segments)])
        return Transcript(" ".join(t for t in texts if t).strip(), tuple(segments), language, end)


def build_transcriber(settings: TranscriptionSettings, *,
                      sleep: Callable[[float], None] = time.sleep, ffmpeg: str | None = "auto") -> Transcriber:
    """The configured transcriber (ConfigError with the fix when none is configured). ``ffmpeg``: the command
    that cuts long files ("auto": found on the PATH; None: WAV files only, by frames)."""
    from rag.providers.errors import translate

    backend = TRANSCRIPTION.get(settings.provider)(settings)
    retry = RetryPolicy(max_retries=settings.max_retries if backend.remote else 0, sleep=sleep,
                        translate=lambda exc: translate(exc, provider=settings.provider, model=backend.name,
                                                        base_url=backend.base_url, kind="transcription"))
    return Transcriber(settings.provider, backend, retry=retry, max_part_bytes=int(settings.max_part_mb * 1024 * 1024),
                       ffmpeg=ffmpeg)
