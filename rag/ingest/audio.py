"""Audio files (.mp3 .wav .m4a .ogg .webm): transcribed with the configured provider
(``rag.providers.transcription``), the timed segments grouped into passages of about
``transcription.passage_seconds``. Each passage is a "page" (numbered from 1) whose ``location`` is its time range,
"00:03:12-00:04:05", cited like a page and played from its start in the app."""

from __future__ import annotations

from rag.errors import ConfigError, DocumentError
from rag.ingest.loading import Loaded, LoadOptions, OnPage
from rag.providers.transcription import NOT_CONFIGURED_HINT, Segment, build_transcriber
from rag.text import normalise
from rag.types import Page


def load_audio(data: bytes, source: str, options: LoadOptions, on_page: OnPage | None = None) -> Loaded:
    settings = options.transcription
    if settings is None or settings.provider == "none":
        raise DocumentError("audio files need a transcription provider, and none is configured",
                            hint=NOT_CONFIGURED_HINT)
    try:
        transcriber = build_transcriber(settings)
    except ConfigError as exc:  # a file-level failure with the fix, like any other unreadable file
        raise DocumentError(exc.message, hint=exc.hint) from None
    transcript = transcriber.transcribe(data, source)
    pages = passages(transcript.segments, source, settings.passage_seconds)
    if on_page is not None:
        on_page(len(pages), len(pages))
    return Loaded(pages)


def passages(segments: tuple[Segment, ...] | list[Segment], source: str, seconds: float) -> list[Page]:
    """Consecutive segments grouped while the group lasts under ``seconds`` (a segment is never cut)."""
    groups: list[list[Segment]] = []
    for segment in segments:
        if groups and segment.end - groups[-1][0].start <= seconds:
            groups[-1].append(segment)
        else:
            groups.append([segment])
    pages = []
    for group in groups:
        text = normalise(" ".join(s.text for s in group))
        if text:
            pages.append(Page(source=source, page=len(pages) + 1, text=text,
                              location=f"{clock(group[0].start)}-{clock(group[-1].end)}"))
    return pages


def clock(seconds: float) -> str:
    """Seconds as HH:MM:SS (rounded down)."""
    total = max(0, int(seconds))
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"

