"""Chat with your PDFs: ingestion, retrieval and grounded answers with page citations. No UI code here.

The public API is ``Rag`` (rag/api.py) and the values it takes and returns (rag/types.py); the CLI (rag/cli/)
and the app (ui/) use nothing else. Inside, one package per flow:

    rag/ingest/     a file to the store: loaders (pdf, plaintext, word), ocr, tables, splitting, workers, pipeline
    rag/search/     the store (the only module that knows Chroma), the BM25 index, retrieval
    rag/answer/     follow-ups, prompts, the answerer (where refusals are decided), grounding, cache, previews
    rag/providers/  chat and embedding models behind two registries (the only code that loads vendor SDKs)
    rag/eval/       retrieval evaluation on QA sets (``python -m rag eval``)

and beside them: config.py (settings, loaded once), errors.py, text.py (tokenising, stop words, language),
environment.py (offline defaults), doctor.py (set-up checks). docs/ARCHITECTURE.md draws the two flows.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rag.errors import (
    AuthenticationError,
    BusyError,
    ConfigError,
    ContextTooLongError,
    DocumentError,
    DocumentNotFoundError,
    EmbeddingMismatchError,
    MissingDependencyError,
    ModelNotFoundError,
    ProviderError,
    ProviderUnavailableError,
    RagError,
)

if TYPE_CHECKING:
    from rag.api import Rag
    from rag.config import Settings, load_config
    from rag.environment import offline_defaults
    from rag.ingest.loaders import SUFFIXES
    from rag.ingest.uploads import safe_name
    from rag.text import highlight_terms

__version__ = "0.1.0"

# Imported on first use, so that ``import rag.text`` (in a parse worker, say) does not load the whole library.
_LAZY = {
    "Rag": "rag.api",
    "Settings": "rag.config",
    "load_config": "rag.config",
    "offline_defaults": "rag.environment",
    "SUFFIXES": "rag.ingest.loaders",
    "safe_name": "rag.ingest.uploads",
    "highlight_terms": "rag.text",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rag' has no attribute '{name}'")


__all__ = [
    "SUFFIXES",
    "AuthenticationError",
    "BusyError",
    "ConfigError",
    "ContextTooLongError",
    "DocumentError",
    "DocumentNotFoundError",
    "EmbeddingMismatchError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "ProviderError",
    "ProviderUnavailableError",
    "Rag",
    "RagError",
    "Settings",
    "highlight_terms",
    "load_config",
    "offline_defaults",
    "safe_name",
]
