"""Every error the library raises on purpose, each with a message that says what to do next.

    RagError                      base; ``str(err)`` is the message, ``err.hint`` the fix (may be empty)
    ├── ConfigError               config.yaml or RAG_* variables are invalid
    ├── DocumentError             one input file cannot be read (empty, not a PDF, encrypted, ...)
    ├── EmbeddingMismatchError    the collection was built with another embedding model or dimension
    ├── DocumentNotFoundError     `delete` / filters name a document that is not in the store
    ├── StoreError                the store cannot be reached (the Chroma server of ``store.url`` does not answer)
    ├── BusyError                 the local model already has ``llm.max_waiting`` requests waiting (HTTP: 503)
    └── ProviderError             a chat or embedding provider failed
        ├── MissingDependencyError    the provider's package is not installed
        ├── AuthenticationError       missing or rejected API key (never retried)
        ├── ModelNotFoundError        unknown model / deployment / not pulled
        ├── ProviderUnavailableError  server not reachable, or still failing after the last retry
        └── ContextTooLongError       the prompt does not fit the model's context window

Errors from dependencies are translated at the boundary (``raise ... from exc``); the CLI and the UI show
``message`` and ``hint`` and never a traceback.
"""

from __future__ import annotations


class RagError(Exception):
    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(RagError):
    pass


class DocumentError(RagError):
    pass


class EmbeddingMismatchError(RagError):
    pass


class DocumentNotFoundError(RagError):
    pass


class StoreError(RagError):
    pass


class BusyError(RagError):
    """The in-process model is answering other questions and its queue is full (or the wait ran out):
    ``retry_after`` is the seconds after which asking again is reasonable."""

    def __init__(self, message: str, *, hint: str = "", retry_after: int = 10) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class ProviderError(RagError):
    pass


class MissingDependencyError(ProviderError):
    pass


class AuthenticationError(ProviderError):
    pass


class ModelNotFoundError(ProviderError):
    pass


class ProviderUnavailableError(ProviderError):
    pass


class ContextTooLongError(ProviderError):
    pass
