"""/api/documents: list, upload (through ``Rag.upload``, so copies go to app.upload_dir) and delete."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile
from starlette.concurrency import run_in_threadpool

from rag import Rag
from rag.http.errors import ApiError


def router(rag: Rag, writing: threading.Lock) -> APIRouter:
    api = APIRouter(prefix="/api/documents", tags=["documents"])

    @api.get("", summary="List the documents")
    async def documents() -> list[dict[str, Any]]:
        """Each document's name, doc_id, pages, chunks and when it was ingested (as `python -m rag docs --json`)."""
        return [d.to_json() for d in await run_in_threadpool(rag.documents)]

    @api.post("", summary="Upload files")
    async def upload(files: Annotated[list[UploadFile], File(description="PDF, .txt, .md or .docx files")]
                     ) -> dict[str, Any]:
        """Ingest the files: added, updated, skipped (unchanged) and failed (with the reason), as
        `python ingest.py --json` prints. A bad file never stops the others."""
        with tempfile.TemporaryDirectory(prefix="rag-upload-") as folder:
            staged = [(await _save(file, Path(folder) / str(i)), file.filename or "upload") for i, file in enumerate(files)]

            def ingest() -> dict[str, Any]:
                with writing:
                    return rag.upload(staged).to_json()

            return await run_in_threadpool(ingest)

    @api.delete("/{doc_id}", summary="Delete a document")
    async def delete(doc_id: str) -> dict[str, Any]:
        """Remove the document with this doc_id (sha256 of its bytes, as listed): its chunks, previews and
        uploaded copy."""

        def remove() -> dict[str, Any]:
            with writing:
                found = next((d for d in rag.documents() if d.doc_id == doc_id), None)
                if found is None:
                    raise ApiError(404, f"no document with doc_id {doc_id}", type="DocumentNotFoundError",
                                   hint="GET /api/documents lists the documents and their doc_id")
                return {"deleted": [rag.delete(found.source).to_json()]}

        return await run_in_threadpool(remove)

    return api


async def _save(file: UploadFile, path: Path) -> Path:
    """Copy an upload out of the request into ``path`` (Rag.upload takes files on disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        await run_in_threadpool(shutil.copyfileobj, file.file, out, 1024 * 1024)
    await file.close()
    return path
