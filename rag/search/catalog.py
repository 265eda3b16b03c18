"""The document catalog: which documents the store holds (a ``DocumentInfo`` per source), and a generation token
that tells other processes when it, or the chunks, changed.

Two implementations, chosen by ``Store.open``:

- ``FileCatalog``: the JSON manifest beside an embedded store (one machine, one writer at a time). Reading it
  needs no Chroma, so re-ingesting an unchanged folder never starts Chroma. It has no generation token.
- ``ChromaCatalog``: a companion collection ``<collection>__documents`` on the Chroma server, one record per
  source (id: a digest of the source; document: the ``DocumentInfo`` as JSON). Chroma is then the only source of
  truth: several app replicas and ingest workers share it and nothing on their disks can disagree with it.
  The generation token is that collection's metadata ``{"generation": <random hex>}``; every writer replaces
  it *after* its writes (chunks, then catalog record), and readers read it *before* reading the catalog or the
  chunks. A reader that saw token T and then read a half-written change will see a token other than T on its
  next check and read again, so every reader converges on what the writers left.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from rag.types import DocumentInfo

logger = logging.getLogger(__name__)


class Catalog(Protocol):
    shared: bool  # True: other processes write it too (read the generation before trusting a copy)

    def load(self) -> dict[str, DocumentInfo]: ...
    def get(self, source: str) -> DocumentInfo | None: ...
    def put(self, info: DocumentInfo, documents: dict[str, DocumentInfo]) -> None: ...
    def remove(self, source: str, documents: dict[str, DocumentInfo]) -> None: ...
    def generation(self) -> str: ...
    def bump(self) -> str: ...


class FileCatalog:
    """The manifest ``<folder>/<collection>.manifest.json``, replaced atomically on each change. ``put`` and
    ``remove`` get the full set of documents after the change (the store's copy) and write it."""

    shared = False

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, DocumentInfo]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("manifest %s unreadable (%s); documents will be ingested again", self.path, exc)
            return {}
        return {d["source"]: DocumentInfo(**d) for d in data.get("documents", [])}

    def get(self, source: str) -> DocumentInfo | None:
        return self.load().get(source)

    def put(self, info: DocumentInfo, documents: dict[str, DocumentInfo]) -> None:
        self._write(documents)

    def remove(self, source: str, documents: dict[str, DocumentInfo]) -> None:
        self._write(documents)

    def generation(self) -> str:
        return ""

    def bump(self) -> str:
        return ""

    def _write(self, documents: dict[str, DocumentInfo]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        ordered = sorted(documents.values(), key=lambda d: d.source.lower())
        data = {"version": 1, "documents": [d.to_json() for d in ordered]}
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)


class ChromaCatalog:
    """One record per source in the collection ``<collection>__documents`` of a Chroma server. Chroma wants an
    embedding per record: each gets the same one-dimensional placeholder."""

    shared = True
    PAGE = 1000

    def __init__(self, client: Callable[[], Any], collection: str) -> None:
        self._client = client  # the store's (lazily made) Chroma client
        self.name = f"{collection}__documents"
        self._collection: Any = None

    def load(self) -> dict[str, DocumentInfo]:
        col = self._get()
        out: dict[str, DocumentInfo] = {}
        offset = 0
        while True:
            page = col.get(include=["documents"], limit=self.PAGE, offset=offset)
            for text in page["documents"]:
                info = _info(text)
                if info is not None:
                    out[info.source] = info
            if len(page["ids"]) < self.PAGE:
                return out
            offset += self.PAGE

    def get(self, source: str) -> DocumentInfo | None:
        found = self._get().get(ids=[record_id(source)], include=["documents"])
        return _info(found["documents"][0]) if found["ids"] else None

    def put(self, info: DocumentInfo, documents: dict[str, DocumentInfo]) -> None:
        self._get().upsert(ids=[record_id(info.source)], embeddings=[[0.0]],
                           documents=[json.dumps(info.to_json(), ensure_ascii=False)],
                           metadatas=[{"source": info.source, "doc_id": info.doc_id}])

    def remove(self, source: str, documents: dict[str, DocumentInfo]) -> None:
        self._get().delete(ids=[record_id(source)])

    def generation(self) -> str:
        """The current token, read from the server (one small request, ~2 ms on a LAN)."""
        self._collection = None  # a collection object caches its metadata: fetch it anew
        return str((self._get().metadata or {}).get("generation", ""))

    def bump(self) -> str:
        token = uuid.uuid4().hex
        self._get().modify(metadata={"generation": token})  # the only metadata key: replacing it is safe
        return token

    def _get(self) -> Any:
        if self._collection is None:
            self._collection = self._client().get_or_create_collection(self.name, embedding_function=None)
        return self._collection


def record_id(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:32]


def _info(text: str | None) -> DocumentInfo | None:
    try:
        return DocumentInfo(**json.loads(text or ""))
    except (ValueError, TypeError) as exc:
        logger.warning("skipping an unreadable catalog record (%s)", exc)
        return None
