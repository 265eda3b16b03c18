"""Page-aware chunking: a chunk never crosses a page, so every chunk cites exactly one page."""

from __future__ import annotations

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.types import Chunk, Page

# Paragraphs, lines, then sentence ends (English and Korean "…다."), then words.
SEPARATORS = ["\n\n", "\n", ". ", "다. ", "? ", "! ", "; ", ", ", " ", ""]


class Splitter:
    def __init__(self, chunk_size: int, chunk_overlap: int) -> None:
        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            separators=SEPARATORS,
            keep_separator="end",
            strip_whitespace=True,
        )

    def split(self, pages: list[Page], doc_id: str) -> list[Chunk]:
        chunks: list[Chunk] = []
        for page in pages:
            for text in self._splitter.split_text(page.text):
                if not text.strip():
                    continue
                index = len(chunks)
                chunks.append(Chunk(
                    id=chunk_id(doc_id, index),
                    text=text,
                    source=page.source,
                    page=page.page,
                    doc_id=doc_id,
                    index=index,
                    ocr=page.ocr,
                    location=page.location,
                ))
        return chunks


def chunk_id(doc_id: str, index: int) -> str:
    return f"{doc_id[:32]}-{index:06d}"
