"""The terminal front end: ``python -m rag COMMAND`` and ``python ingest.py`` (``main``), progress bars
(``progress``) and the doctor's report (``doctor``). It uses only ``rag.Rag`` and ``rag.types``, and is the
edge where errors become messages and exit codes."""

from rag.cli.main import ingest_main, main

__all__ = ["ingest_main", "main"]
