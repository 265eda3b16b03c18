"""The HTTP API, served beside the web app: ``create_app(rag)`` is a FastAPI app over one ``Rag``.

    GET    /api/documents            the documents (the JSON of ``python -m rag docs --json``)
    POST   /api/documents            upload files (multipart, field ``files``) -> the IngestReport JSON
    DELETE /api/documents/{doc_id}   remove a document (404 when no document has that id)
    POST   /api/search               {query, k?, sources?, mode?} -> the hits (as ``python -m rag search --json``)
    POST   /api/ask                  {question, history?, k?, sources?, stream?} -> the Answer JSON, or
                                     server-sent events: ``retrieved``, ``token``..., ``done`` (or ``error``)
    POST   /v1/chat/completions      OpenAI-compatible chat, streamed or not; the numbered passages in ``sources``
    GET    /v1/models                the one model id ("rag" unless told otherwise)
    GET    /docs                     the OpenAPI page

Authentication is a bearer token from the environment (``RAG_API_TOKEN``, never from a config file). Without
one the API is open, which ``create_app`` allows only when it listens on a loopback address. Errors are JSON
(``{"error": {"message", "hint", "type"}}``, the OpenAI shape on /v1) and never a traceback. The package uses
only ``rag.Rag`` and ``rag.types``; Gradio mounts the web app on the same FastAPI app (ui/app.py).
"""

from __future__ import annotations

from rag.http.app import create_app
from rag.http.auth import TOKEN_ENV, api_token, check_exposure, is_loopback

__all__ = ["TOKEN_ENV", "api_token", "check_exposure", "create_app", "is_loopback"]
