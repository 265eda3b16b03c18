"""Translate exceptions of vendor SDKs (openai, ollama, httpx, llama.cpp) into RagErrors with the fix.

Works on the exception's shape (status code, type name, message), so no SDK is imported here.
"""

from __future__ import annotations

import re

from rag.errors import (
    AuthenticationError,
    ContextTooLongError,
    ModelNotFoundError,
    ProviderError,
    ProviderUnavailableError,
)
from rag.providers.retry import Failure

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
_CONTEXT = re.compile(r"context[_ ]length|context window|maximum context|too many tokens|exceed.*context|"
                      r"prompt is too long|input length", re.I)
_NAMES = {"openai": "OpenAI", "azure": "Azure OpenAI", "ollama": "Ollama", "llamacpp": "llama.cpp",
          "local": "the local embedding model"}
_KEY_VARS = {"openai": "OPENAI_API_KEY", "azure": "AZURE_OPENAI_API_KEY"}


def translate(exc: BaseException, *, provider: str, model: str, base_url: str | None = None) -> Failure:
    name = _NAMES.get(provider, provider)
    status = _status_code(exc)
    text = _message(exc)
    where = f" at {base_url}" if base_url else ""

    if status in (401, 403):
        var = _KEY_VARS.get(provider, "the API key variable")
        return Failure(AuthenticationError(f"{name} rejected the API key ({status})", hint=f"set {var} to a valid key"))
    if status == 404 or (status is None and "not found" in text.lower() and "model" in text.lower()):
        if provider == "ollama":
            return Failure(ModelNotFoundError(f"model {model} is not pulled in Ollama{where}",
                                              hint=f"run `ollama pull {model}`"))
        if provider == "azure":
            return Failure(ModelNotFoundError(f"Azure OpenAI deployment '{model}' was not found{where}",
                                              hint="check llm.deployment, llm.base_url and llm.api_version"))
        return Failure(ModelNotFoundError(f"model '{model}' was not found by {name}{where}",
                                          hint="check llm.model (or embeddings.model) and llm.base_url"))
    if _CONTEXT.search(text) and (status in (None, 400, 413) or "context" in text.lower()):
        return Failure(ContextTooLongError(f"the prompt does not fit {name} model {model}'s context window",
                                           hint="lower retrieval.k or ingest.chunk_size, raise llm.context_window, "
                                                "or use a model with a larger context"))
    if status in RETRYABLE_STATUS:
        return Failure(ProviderUnavailableError(f"{name} answered HTTP {status}{where}: {text[:200]}",
                                                hint="the service is overloaded or down; try again later"),
                       retryable=True, retry_after=_retry_after(exc))
    if _is_timeout(exc):
        return Failure(ProviderUnavailableError(f"{name} did not answer in time{where}",
                                                hint="raise llm.timeout, or check the server's load"),
                       retryable=True)
    if _is_connection(exc):
        hint = ("start it with `ollama serve`" if provider == "ollama"
                else "check that the server is running and llm.base_url is right")
        return Failure(ProviderUnavailableError(f"cannot connect to {name}{where or ''}", hint=hint), retryable=True)
    if status is not None:
        return Failure(ProviderError(f"{name} answered HTTP {status}: {text[:300]}"))
    return Failure(ProviderError(f"{name} failed: {type(exc).__name__}: {text[:300]}"))


def _status_code(exc: BaseException) -> int | None:
    for attr in ("status_code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if not headers:
        return None
    for header in ("retry-after-ms", "retry-after"):
        value = headers.get(header)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            return None
        return seconds / 1000 if header.endswith("-ms") else seconds
    return None


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _is_timeout(exc: BaseException) -> bool:
    return any(isinstance(e, TimeoutError) or "timeout" in type(e).__name__.lower() for e in _chain(exc))


def _is_connection(exc: BaseException) -> bool:
    for e in _chain(exc):
        name = type(e).__name__.lower()
        if isinstance(e, ConnectionError) or "connect" in name or "connection refused" in str(e).lower():
            return True
    return False


def _message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    error = getattr(exc, "error", None)  # ollama.ResponseError
    if isinstance(error, str) and error:
        return error
    return str(exc)
