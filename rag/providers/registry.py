"""A name -> factory registry. Built-in providers register through the same call a plug-in would use."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from rag.errors import ConfigError, MissingDependencyError

T = TypeVar("T")
OLLAMA_URL = "http://127.0.0.1:11434"  # where `ollama serve` listens by default


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/rag-pdf-chat`` (default ``~/.cache/rag-pdf-chat``): what local models derive once
    (ONNX exports, joined GGUF files) and keep between processes."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rag-pdf-chat"


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(factory: T) -> T:
            self._factories[name] = factory
            return factory

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._factories[name]
        except KeyError:
            known = ", ".join(sorted(self._factories))
            raise ConfigError(f"unknown {self.kind} provider '{name}'", hint=f"known providers: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._factories)


def require(module: str, package: str, *, extra: str | None = None):
    """Import a vendor SDK lazily; a missing one becomes an install hint instead of an ImportError."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        how = f"pip install -e '.[{extra}]'" if extra else f"pip install {package}"
        raise MissingDependencyError(f"the Python package '{package}' is not installed ({exc.name} missing)",
                                     hint=f"install it with: {how}") from None
