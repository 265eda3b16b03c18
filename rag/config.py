"""Typed settings, loaded once from ``config.yaml`` plus ``RAG_<SECTION>__<KEY>`` environment overrides.

A misspelt or unknown key fails with its dotted name, so a typo never silently falls back to a default.
Secrets (API keys) are not settings: providers read them from the environment when they are built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rag.errors import ConfigError

ENV_PREFIX = "RAG_"
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_credentials(value: str | None) -> str | None:
    """A provider's base_url must not carry a key: HTTP clients log URLs, and errors name the server."""
    if value:
        parts = urlsplit(value.strip())
        query = parts.query.lower()
        if parts.username or parts.password or any(word in query for word in ("key=", "token=", "secret=")):
            raise ValueError("must not hold credentials (user:password@ or a key in the query): put the API key in "
                             "OPENAI_API_KEY (or AZURE_OPENAI_API_KEY), so it stays out of logs and messages")
    return value


class LLMSettings(_Section):
    provider: Literal["llamacpp", "openai", "azure", "ollama"] = "llamacpp"
    model: str | None = None  # None: the provider's default (the bundled GGUF for llamacpp)
    base_url: str | None = None  # OpenAI-compatible server, Ollama host, or Azure endpoint
    api_version: str | None = None  # Azure only
    deployment: str | None = None  # Azure only; defaults to `model`
    temperature: float = Field(0.1, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    max_tokens: int = Field(384, ge=1)
    timeout: float = Field(120.0, gt=0)
    max_retries: int = Field(3, ge=0, le=20)
    context_window: int = Field(4096, ge=512)  # llamacpp n_ctx
    threads: int | None = Field(None, ge=1)  # llamacpp n_threads; None: all cores
    max_waiting: int = Field(4, ge=0, le=1000)  # llamacpp: requests that may wait for the busy model; more: BusyError
    busy_timeout: float = Field(60.0, gt=0)  # llamacpp: seconds a request waits for the model before BusyError
    grounding: Literal["auto", "strict", "lenient"] = "auto"  # auto: strict for llamacpp (see rag.grounding)
    cache: bool = False  # answer cache (same question, passages, model and parameters)
    prices: dict[str, tuple[float, float]] = Field(default_factory=dict)  # model -> (USD per 1M in, out)
    tools: bool = False  # let a model that can call tools search the documents itself (rag.answer.tools)
    max_tool_calls: int = Field(4, ge=1, le=20)  # searches it may make before it must answer

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return _no_credentials(value)


class EmbeddingSettings(_Section):
    provider: Literal["local", "openai", "ollama"] = "local"
    model: str | None = None  # None: the provider's default (bundled multilingual-e5-small for local)
    base_url: str | None = None
    batch_size: int = Field(32, ge=1, le=4096)
    timeout: float = Field(60.0, gt=0)  # seconds per request to a remote embedding server
    threads: int | None = Field(None, ge=1)  # threads for the local model; None: all cores
    backend: Literal["onnx", "torch"] = "onnx"  # local model runtime: ONNX Runtime (faster, same vectors) or PyTorch

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return _no_credentials(value)


class TranscriptionSettings(_Section):
    """Speech to text for audio documents and spoken questions (rag.providers.transcription)."""

    provider: Literal["none", "openai", "azure", "local"] = "none"  # none: audio cannot be read
    model: str | None = None  # None: whisper-1 (openai, azure: the deployment); local: a faster-whisper folder
    base_url: str | None = None  # any server with OpenAI's /v1/audio/transcriptions; Azure: the endpoint
    api_version: str | None = None  # Azure only
    deployment: str | None = None  # Azure only; defaults to `model`
    language: str | None = None  # ISO 639-1 hint ("ko", "en"); None: detected
    timeout: float = Field(300.0, gt=0)  # seconds per request
    max_retries: int = Field(3, ge=0, le=20)
    max_part_mb: float = Field(24.0, gt=0, le=25)  # a longer file is sent in parts below this size (API: 25 MB)
    passage_seconds: float = Field(60.0, ge=5)  # segments are grouped into passages of about this length

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return _no_credentials(value)


class StoreSettings(_Section):
    path: Path = Path("data/store")  # the embedded store; with url: this process's local caches (answer cache)
    collection: str = Field("documents", min_length=3, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]$")
    url: str | None = None  # a Chroma server (`make serve-store`) shared by replicas and workers; None: embedded
    sync_seconds: float = Field(1.0, ge=0.0, le=3600.0)  # with url: how often to check for other processes' changes

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
            raise ValueError(f"must be a Chroma server address like http://host:8000, not '{value}'")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ValueError(f"'{value}' has an invalid port") from None
        return value.strip().rstrip("/")


class IngestSettings(_Section):
    chunk_size: int = Field(800, ge=100, le=8000)
    chunk_overlap: int = Field(120, ge=0)
    ocr: Literal["auto", "always", "never"] = "auto"
    ocr_languages: str = Field("kor+eng", pattern=r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$")  # Tesseract -l
    pdf_tables: bool = True  # PDF text in layout mode with tables as header-led rows (rag/tables.py; docs/EVAL.md)
    file_timeout: float = Field(1800, ge=0)  # seconds to parse one file in its worker process; 0: no limit
    file_memory_mb: int = Field(2048, ge=0)  # address-space limit of that process (RLIMIT_AS); 0: no limit
    file_max_chunks: int = Field(50_000, ge=0)  # passages one file may give (embedding time); 0: no limit

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, value: int, info: Any) -> int:
        size = info.data.get("chunk_size", 800)
        if value >= size:
            raise ValueError(f"must be smaller than chunk_size ({size})")
        return value


class RetrievalSettings(_Section):
    mode: Literal["vector", "bm25", "hybrid"] = "hybrid"
    k: int = Field(5, ge=1, le=100)
    candidates: int = Field(40, ge=1, le=1000)  # hits taken from each retriever before fusion
    fusion: Literal["rrf", "convex"] = "rrf"  # how hybrid mode combines the two rankings
    alpha: float = Field(0.5, ge=0.0, le=1.0)  # share of vector evidence in the fusion (1 - alpha: keywords)
    alpha_ko: float = Field(0.5, ge=0.0, le=1.0)  # the same for Korean questions (0 with MiniLM: no Korean)
    min_score: float = Field(0.3, ge=0.0, le=1.0)  # refuse below this relevance (see rag.retrieval)
    cosine_weight: float = Field(0.5, ge=0.0, le=1.0)  # share of cosine vs keyword coverage in relevance
    title_focus: float = Field(0.5, ge=0.0, le=10.0)  # weight of a search inside the documents a question names
    per_page: int = Field(1, ge=0, le=100)  # passages from one page at most (0: no limit)
    translate: bool = True  # a question with a relevant passage in another language is also searched translated
    mmr: bool = False
    mmr_lambda: float = Field(0.7, ge=0.0, le=1.0)
    mmr_pool: int = Field(20, ge=1, le=200)  # fused candidates MMR chooses from


class AppSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    max_upload_mb: int = Field(100, ge=1)
    language: Literal["auto", "en", "ko"] = "auto"
    upload_dir: Path = Path("data/uploads")  # uploaded PDFs are kept here (page previews, "open page" links)


class Settings(_Section):
    llm: LLMSettings = LLMSettings()
    embeddings: EmbeddingSettings = EmbeddingSettings()
    transcription: TranscriptionSettings = TranscriptionSettings()
    store: StoreSettings = StoreSettings()
    ingest: IngestSettings = IngestSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    app: AppSettings = AppSettings()


def load_config(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read YAML at ``path`` (default: the project's ``config.yaml``), apply env overrides, validate.

    Relative paths in the file are resolved against the file's folder, so the app behaves the same from any
    working directory; relative paths from the environment are resolved against the working directory.
    """
    environ = os.environ if environ is None else environ
    config_path = Path(path) if path is not None else DEFAULT_CONFIG
    raw: dict[str, Any] = {}
    if path is not None or config_path.exists():
        try:
            raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {config_path}", hint="pass --config PATH to an existing file") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{config_path} is not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{config_path} must hold a mapping of sections (llm, embeddings, store, ...)")
    base_dir = config_path.resolve().parent
    for section, key, model in (("store", "path", StoreSettings), ("app", "upload_dir", AppSettings)):
        values = raw.setdefault(section, {})
        if isinstance(values, dict):
            values[key] = str(base_dir / str(values.get(key, model.model_fields[key].default)))
    _apply_env(raw, environ)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, config_path)) from None


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        if section not in Settings.model_fields:
            raise ConfigError(f"unknown section '{section}' in environment variable {name}",
                              hint=f"sections are: {', '.join(Settings.model_fields)}")
        target = raw.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"section '{section}' in the config file must be a mapping")
        target[key] = _parse_env_value(value)


def _parse_env_value(value: str) -> Any:
    """Environment values are YAML scalars: ``0.2`` is a float, ``true`` a bool, ``null`` None."""
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return value if isinstance(parsed, (dict, list)) and not value.strip().startswith(("{", "[")) else parsed


def _describe(exc: ValidationError, source: Path) -> str:
    lines = [f"invalid settings (from {source} and RAG_* environment variables):"]
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (misspelt?)")
        else:
            lines.append(f"  {key}: {err['msg']}")
    return "\n".join(lines)
