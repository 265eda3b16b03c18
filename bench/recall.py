"""Page recall of one QA row, for the bench scripts that compare ingest modes on the dev sets."""

from __future__ import annotations

from typing import Any


def gold_page_found(rag: Any, row: dict, k: int) -> tuple[bool, bool]:
    """Whether a gold page of ``row`` is among the top ``k`` hits searching every document, and searching only
    the row's own document."""
    gold = set(row["pages"])
    everywhere = rag.retriever.search(row["question"], k=k)
    own = rag.retriever.search(row["question"], k=k, sources=[row["doc"]])
    return (any(h.source == row["doc"] and h.page in gold for h in everywhere), any(h.page in gold for h in own))
