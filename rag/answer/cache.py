"""The answer cache (``llm.cache``, off by default): the same question over the same passages, asked of the same
model with the same parameters, is answered from a local SQLite file instead of a new model call.

The key is a SHA-256 over the exact messages sent (system prompt, question, numbered passages with their text),
the provider, model, server URL (without any credentials in it) and the sampling parameters, so a changed
document, prompt or setting is a new key. Rows hold only the key's digest, the model's raw answer and its token
counts: no question text, no keys.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from langchain_core.messages import BaseMessage

logger = logging.getLogger(__name__)

FILENAME = "answer-cache.sqlite3"
_SCHEMA = """CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY, text TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
    model TEXT NOT NULL, created REAL NOT NULL)"""


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    text: str
    prompt_tokens: int  # what the original call cost; a cached answer costs nothing
    completion_tokens: int


class AnswerCache:
    def __init__(self, path: Path, *, max_entries: int = 10_000) -> None:
        self.path = path
        self.max_entries = max_entries
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(_SCHEMA)

    @classmethod
    def in_store(cls, folder: Path) -> AnswerCache:
        """The cache that lives beside a store's collections."""
        return cls(folder / FILENAME)

    @staticmethod
    def key(messages: Sequence[BaseMessage], *, provider: str, model: str, base_url: str | None,
            params: dict[str, Any]) -> str:
        payload = {
            "messages": [[m.type, str(m.content)] for m in messages],
            "provider": provider,
            "model": model,
            "base_url": _without_credentials(base_url),
            "params": {k: params[k] for k in sorted(params)},
        }
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()

    def get(self, key: str) -> CachedAnswer | None:
        try:
            with self._connect() as db:
                row = db.execute("SELECT text, prompt_tokens, completion_tokens FROM answers WHERE key = ?",
                                 (key,)).fetchone()
        except sqlite3.Error as exc:  # a broken cache must never break answering
            logger.warning("answer cache %s unreadable: %s", self.path, exc)
            return None
        return CachedAnswer(*row) if row else None

    def put(self, key: str, text: str, *, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        try:
            with self._connect() as db:
                db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?)",
                           (key, text, prompt_tokens, completion_tokens, model, time.time()))
                db.execute("DELETE FROM answers WHERE key NOT IN "
                           "(SELECT key FROM answers ORDER BY created DESC LIMIT ?)", (self.max_entries,))
        except sqlite3.Error as exc:
            logger.warning("answer cache %s not written: %s", self.path, exc)

    def __len__(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def clear(self) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM answers")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One short-lived connection per call (safe from the app's worker threads), committed and closed."""
        db = sqlite3.connect(self.path, timeout=10)
        try:
            with db:
                yield db
        finally:
            db.close()


def _without_credentials(url: str | None) -> str | None:
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
