"""Is this setup able to answer? One check each, OK, FAIL (with the fix) or SKIP (``python -m rag doctor``).

    config       config.yaml and RAG_* variables are valid
    chat model   the provider is reachable, the key is accepted, the model exists and answers (one token)
    embeddings   the embedding provider is reachable and the model embeds (one short text)
    collection   the stored collection was built with the configured embedding model and dimension
    disk         the store's folder is writable and has free space
    speech       (when transcription.provider is set) the transcription provider turns a short clip into text

Checks use the same providers as answering, with no retries and a short timeout, so a problem shows the
same message and fix it would show in `ask`.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from rag.config import EmbeddingSettings, LLMSettings, Settings, StoreSettings, TranscriptionSettings, load_config
from rag.errors import AuthenticationError, ProviderUnavailableError, RagError
from rag.providers import ChatModel, build_chat_model, build_embedder
from rag.types import FAIL, OK, SKIP, Check

CHECK_TIMEOUT = 30.0  # seconds: a doctor should not wait as long as an answer may
MIN_FREE_MB = 500


@dataclass(frozen=True)
class _Embedding:
    provider: str
    model: str
    dimension: int


def run_checks(config: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None, *,
               min_free_mb: int = MIN_FREE_MB) -> Iterator[Check]:
    """Yield the checks one by one as they finish (some load a model or wait for a server)."""
    try:
        settings = load_config(config, environ)
    except RagError as exc:
        yield Check("config", FAIL, exc.message, exc.hint or "correct the setting named above")
        return
    yield Check("config", OK, _describe_config(settings))
    yield check_chat(settings.llm)
    embedding_check, embedding = check_embeddings(settings.embeddings)
    yield embedding_check
    yield check_collection(settings.store, embedding)
    yield check_disk(settings.store.path, min_free_mb)
    if settings.transcription.provider != "none":
        yield check_transcription(settings.transcription)


def check_chat(llm: LLMSettings) -> Check:
    from langchain_core.messages import HumanMessage


    quick = llm.model_copy(update={"max_retries": 0, "timeout": min(llm.timeout, CHECK_TIMEOUT)})
    what = f"{llm.provider} {llm.model or '(default model)'}"
    try:
        chat = build_chat_model(quick)
        what = f"{chat.provider} {chat.name}"
        offered = _offered_models(chat)
        if offered is not None and not _offers(offered, chat.name, chat.provider):
            shown = ", ".join(sorted(offered)[:12]) or "none"
            fix = (f"run `ollama pull {chat.name}`" if chat.provider == "ollama"
                   else f"set llm.model to one the server offers: {shown}")
            return Check("chat model", FAIL, f"{what}: the server does not offer this model (it offers: {shown})", fix)
        started = time.perf_counter()
        chat.invoke([HumanMessage("Reply with the single word OK.")], params={"max_tokens": 1, "temperature": 0.0})
        where = f" at {chat.base_url}" if chat.base_url else ""
        return Check("chat model", OK, f"{what}{where} answered in {time.perf_counter() - started:.1f}s")
    except RagError as exc:
        return Check("chat model", FAIL, f"{what}: {exc.message}", exc.hint)


def check_embeddings(settings: EmbeddingSettings) -> tuple[Check, _Embedding | None]:
    quick = settings.model_copy(update={"timeout": min(settings.timeout, CHECK_TIMEOUT)})
    what = f"{settings.provider} {settings.model or '(default model)'}"
    try:
        embedder = build_embedder(quick, max_retries=0)
        what = f"{embedder.provider} {embedder.model}"
        started = time.perf_counter()
        vector = embedder.embed_query("doctor: can this model embed a sentence?")
        elapsed = time.perf_counter() - started
    except RagError as exc:
        return Check("embeddings", FAIL, f"{what}: {exc.message}", exc.hint), None
    found = _Embedding(embedder.provider, embedder.model, int(vector.shape[0]))
    where = f" at {settings.base_url}" if settings.base_url else ""
    return Check("embeddings", OK, f"{what}{where} gives {found.dimension}-d vectors ({elapsed:.1f}s)"), found


def check_collection(store: StoreSettings, embedding: _Embedding | None) -> Check:
    from rag.search.store import Store

    name = f"collection '{store.collection}'"
    where = store.url or str(store.path)
    if not store.url and not store.path.exists():
        return Check("collection", OK, f"no store yet at {store.path}: nothing ingested")
    if embedding is None:
        return Check("collection", SKIP, f"{name} not compared: the embedding check failed")
    try:
        opened = Store.open(store.path, store.collection, keyword=False, url=store.url)
        signature = opened.embedding_signature()
        if signature is None:
            return Check("collection", OK, f"{name} is empty: nothing ingested yet")
        opened.check_embedding(embedding.provider, embedding.model, embedding.dimension)
    except RagError as exc:
        return Check("collection", FAIL, exc.message, exc.hint)
    except Exception as exc:  # noqa: BLE001 - a damaged store: say so rather than crash the doctor
        return Check("collection", FAIL, f"{name} at {where} cannot be opened: {type(exc).__name__}: {exc}",
                     f"move {store.path} aside and ingest again" if not store.url else
                     "check that the Chroma server runs (make serve-store) and store.url points at it")
    documents = opened.documents()
    return Check("collection", OK, f"{name}: {len(documents)} documents, {opened.count()} chunks, built with "
                                   f"{embedding.provider}/{embedding.model} ({embedding.dimension}-d)")


def check_disk(path: Path, min_free_mb: int = MIN_FREE_MB) -> Check:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK):
        return Check("disk", FAIL, f"{existing} is not writable", "set store.path to a folder you can write to")
    free_mb = shutil.disk_usage(existing).free // (1024 * 1024)
    if free_mb < min_free_mb:
        return Check("disk", FAIL, f"only {free_mb} MB free for {path} (want {min_free_mb} MB)",
                     "free some disk space, or set store.path on a larger disk")
    return Check("disk", OK, f"{free_mb / 1024:.1f} GB free for {path}")


def check_transcription(settings: TranscriptionSettings) -> Check:
    """Send half a second of silence (a WAV made here) through the configured transcription provider."""
    import io
    import wave

    from rag.providers.transcription import build_transcriber

    clip = io.BytesIO()
    with wave.open(clip, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0" * 16000)
    started = time.perf_counter()
    quick = settings.model_copy(update={"timeout": min(settings.timeout, CHECK_TIMEOUT), "max_retries": 0})
    what = f"{settings.provider}"
    try:
        transcriber = build_transcriber(quick)
        what = f"{settings.provider} {transcriber.name}"
        transcriber.transcribe(clip.getvalue(), "doctor-check.wav")
    except RagError as exc:
        return Check("speech", FAIL, f"{what}: {exc.message}", exc.hint)
    where = f" at {transcriber.base_url}" if transcriber.base_url else ""
    return Check("speech", OK, f"{what}{where} transcribed a test clip in {time.perf_counter() - started:.1f}s")


def _describe_config(settings: Settings) -> str:
    llm, emb = settings.llm, settings.embeddings
    return (f"chat: {llm.provider}{' ' + llm.model if llm.model else ''}; embeddings: {emb.provider}"
            f"{' ' + emb.model if emb.model else ''}; store: {settings.store.path} ({settings.store.collection})")


def _offered_models(chat: ChatModel) -> list[str] | None:
    """The models the server lists, or None when it cannot list them (then the one-token call decides)."""
    try:
        return chat.list_models()
    except (AuthenticationError, ProviderUnavailableError):
        raise
    except RagError:
        return None  # e.g. an OpenAI-compatible server without /models


def _offers(offered: list[str], model: str, provider: str) -> bool:
    if model in offered:
        return True
    if provider == "ollama" and ":" not in model:  # "llama3.2" means "llama3.2:latest"
        return f"{model}:latest" in offered
    return False
