"""Translate exceptions of vendor SDKs (openai, ollama, httpx, llama.cpp) into RagErrors with the fix.

Works on the exception's shape (status code, type name, message) and LangChain's own error classes, so no
vendor SDK is imported here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from langchain_core import exceptions as lc

from rag.errors import (
    AuthenticationError,
    ContextTooLongError,
    ModelNotFoundError,
    ProviderError,
    ProviderUnavailableError,
)
from rag.providers.retry import Diagnosis

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
_CONTEXT = re.compile(r"context[_ ]length|context window|maximum context|too many tokens|exceed.*context|"
                      r"prompt is too long|input length", re.I)
_NAMES = {"openai": "OpenAI", "azure": "Azure OpenAI", "ollama": "Ollama", "llamacpp": "llama.cpp",
          "local": "the local embedding model"}
_KEY_VARS = {"openai": "OPENAI_API_KEY", "azure": "AZURE_OPENAI_API_KEY", "ollama": "OLLAMA_API_KEY"}


def translate(exc: BaseException, *, provider: str, model: str, base_url: str | None = None,
              kind: str = "chat") -> Diagnosis:
    """What ``exc`` raised by ``provider`` means for the user. ``kind`` is "chat", "embeddings" or
    "transcription": it picks the config section the fix names (llm.*, embeddings.*, transcription.*)."""
    section = "llm" if kind == "chat" else kind
    name = _NAMES.get(provider, provider)
    status = _status_code(exc)
    text = _message(exc)
    where = f" at {base_url}" if base_url else ""

    if status in (401, 403) or _is_a(exc, lc.ModelAuthenticationError, lc.ModelPermissionDeniedError):
        var = _KEY_VARS.get(provider, "the API key variable")
        what = "rejected the API key" if status != 403 else "refused access with this API key"
        return Diagnosis(AuthenticationError(f"{name} {what} ({status or 'unauthorised'}){where}",
                                           hint=f"set {var} to a valid key"))
    if status == 404 or _is_a(exc, lc.ModelNotFoundError) or (
            status is None and "not found" in text.lower() and "model" in text.lower()):
        return Diagnosis(_not_found(provider, name, model, text, where, section))
    if _is_a(exc, lc.ContextOverflowError) or (
            _CONTEXT.search(text) and (status in (None, 400, 413) or "context" in text.lower())):
        return Diagnosis(ContextTooLongError(
            f"the prompt does not fit the context window of {name} model '{model}'",
            hint="lower retrieval.k or ingest.chunk_size, raise llm.context_window (llamacpp, ollama), "
                 "or use a model with a larger context"))
    if status == 429 and "insufficient_quota" in text:
        return Diagnosis(ProviderError(f"{name} says the account has no quota left: {text[:200]}",
                                     hint="check the plan and billing of the account that owns the key"))
    if status in RETRYABLE_STATUS:
        busy = "is rate limiting requests" if status == 429 else f"answered HTTP {status}"
        return Diagnosis(ProviderUnavailableError(f"{name} {busy}{where}: {text[:200]}",
                                                hint="the service is overloaded or down; try again later"),
                       retryable=True, retry_after=_retry_after(exc))
    if _is_timeout(exc):
        return Diagnosis(ProviderUnavailableError(f"{name} did not answer in time{where}",
                                                hint=f"raise {section}.timeout, or check the server's load"),
                       retryable=True)
    if broken_stream(exc):
        return Diagnosis(ProviderUnavailableError(f"the connection to {name}{where} broke before the answer was complete",
                                                hint="check the server's log; it may have failed on this request"),
                       retryable=True)
    if _is_connection(exc):
        if provider == "ollama":
            hint = f"start it with `ollama serve`, or set {section}.base_url to where it runs"
        elif base_url:
            hint = f"check that the server is running and {section}.base_url is right"
        else:
            hint = "check the network connection (and HTTPS_PROXY if you need a proxy)"
        return Diagnosis(ProviderUnavailableError(f"cannot connect to {name}{where}", hint=hint), retryable=True)
    if status is not None:
        return Diagnosis(ProviderError(f"{name} answered HTTP {status}{where}: {text[:300]}"))
    return Diagnosis(ProviderError(f"{name} failed: {type(exc).__name__}: {text[:300]}"))


def _not_found(provider: str, name: str, model: str, text: str, where: str, section: str) -> ProviderError:
    about_model = "model" in text.lower() or "deployment" in text.lower()
    if provider == "ollama":
        if about_model or not text:
            return ModelNotFoundError(f"model '{model}' is not pulled in Ollama{where}", hint=f"run `ollama pull {model}`")
        return ProviderError(f"Ollama{where} answered 404: {text[:200]}",
                             hint=f"check that {section}.base_url points at an Ollama server")
    if provider == "azure":
        return ModelNotFoundError(f"Azure OpenAI deployment '{model}' was not found{where}",
                                  hint="check llm.deployment (the deployment's name, not the model's), llm.base_url "
                                       "and llm.api_version")
    if about_model or not text:
        return ModelNotFoundError(f"model '{model}' was not found by {name}{where}",
                                  hint=f"check {section}.model (and {section}.base_url)")
    return ProviderError(f"{name}{where} answered 404: {text[:200]}",
                         hint=f"check {section}.base_url (OpenAI-compatible servers usually end in /v1)")


def _is_a(exc: BaseException, *classes: type[BaseException]) -> bool:
    return any(isinstance(e, classes) for e in _chain(exc))


def _status_code(exc: BaseException) -> int | None:
    for attr in ("status_code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and value >= 100:
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) and value >= 100 else None


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
            return None  # an HTTP date: rare from APIs; fall back to our own backoff
        return seconds / 1000 if header.endswith("-ms") else seconds
    return None


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _is_timeout(exc: BaseException) -> bool:
    return any(isinstance(e, TimeoutError) or "timeout" in type(e).__name__.lower() for e in _chain(exc))


def broken_stream(exc: BaseException) -> bool:
    """The server accepted the request, then closed the connection without a (complete) answer."""
    if isinstance(exc, ValueError) and "No generation chunks" in str(exc):  # LangChain: a stream with no chunks
        return True
    for e in _chain(exc):
        name = type(e).__name__
        if name in ("ReadError", "RemoteProtocolError") or isinstance(e, ConnectionResetError):
            return True
    return False


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
        if isinstance(inner, str):
            return inner
    error = getattr(exc, "error", None)  # ollama.ResponseError
    if isinstance(error, str) and error:
        return error
    return str(exc)
