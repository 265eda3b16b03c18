"""Page-aware chunking: a chunk never crosses a page, so every chunk cites exactly one page.

Each chunk also remembers the heading of its page (the title lines at the top, such as "CONSOLIDATED BALANCE
SHEETS" or "Ⅱ. 주요 내용"), so that a chunk from the middle of a table page can still be found by its title.
What is embedded and indexed for keywords is ``search_text``: the document's title, the heading and the chunk;
what is shown and quoted is the chunk's own text.
"""

from __future__ import annotations

import re
from typing import Any

from rag.text import document_title, tokenize
from rag.types import Chunk, Page

# Paragraphs, lines, then sentence ends (English and Korean "…다."), then words.
SEPARATORS = ["\n\n", "\n", ". ", "다. ", "? ", "! ", "; ", ", ", " ", ""]

_NUMBERED = re.compile(r"^(?:(?:item|part|section|chapter|article|note)\s+[\dIVX]+[.:]?|[\dIVX]+(?:\.\d+)*[.)]|"
                       r"[ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩ]+\.?|제\s*\d+\s*[장절조항편]|[가나다라마바사]\.)\s*\S", re.I)
_PAGE_NUMBER = re.compile(r"^(?:page\s+)?\d{1,4}$|^-\s*\d{1,4}\s*-$|^\d{1,4}\s*/\s*\d{1,4}$", re.I)


def looks_like_heading(line: str) -> bool:
    line = line.strip()
    if not 3 <= len(line) <= 90 or line.endswith((".", ",", ";", ":", "다.")) or _PAGE_NUMBER.match(line):
        return False
    letters = [ch for ch in line if ch.isalpha()]
    if len(letters) < 3:
        return False
    if _NUMBERED.match(line):
        return True
    latin = [ch for ch in letters if ch.isascii()]
    if latin and len(latin) >= 0.6 * len(letters):
        if sum(ch.isupper() for ch in latin) >= 0.7 * len(latin):
            return True  # ALL CAPS titles
        return line[0].isupper() and len(line.split()) <= 6 and not re.search(r"[.!?,;]", line)  # "Financial results"
    # Korean (or other scripts): a short line that does not stop on a particle or verb ending mid-sentence
    return len(line) <= 30 and not re.search(r"[.!?,]", line) and line[-1] not in "은는이가을를에의로와과도만고며면서다"


def page_heading(text: str, max_lines: int = 2) -> str:
    """The title lines at the top of a page (after a page number, if any), joined by " / "."""
    found: list[str] = []
    for line in [ln.strip() for ln in text.split("\n") if ln.strip()][:6]:
        if _PAGE_NUMBER.match(line) and not found:
            continue
        if not looks_like_heading(line):
            break
        found.append(line)
        if len(found) == max_lines:
            break
    return " / ".join(found)


def search_text(chunk: Chunk) -> str:
    """What is embedded and indexed: the document title and page heading give a chunk its context."""
    head = document_title(chunk.source)
    if chunk.heading:
        head = f"{head} | {chunk.heading}"
    return f"{head}\n{chunk.text}"


def keyword_terms(chunk: Chunk) -> list[str]:
    """A chunk's keyword-search terms, as ingest indexes them (also for an index rebuilt from the store)."""
    return tokenize(search_text(chunk))


class Splitter:
    def __init__(self, chunk_size: int, chunk_overlap: int) -> None:
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._splitter: Any = None  # built on first use (langchain-text-splitters costs ~0.4 s to import)

    def __getstate__(self) -> dict[str, int]:  # sent to parse workers: settings only
        return {"chunk_size": self.chunk_size, "chunk_overlap": self.chunk_overlap}

    def __setstate__(self, state: dict[str, int]) -> None:
        self.__init__(state["chunk_size"], state["chunk_overlap"])

    def _texts(self, text: str) -> list[str]:
        if self._splitter is None:
            from langchain_text_splitters import RecursiveCharacterTextSplitter

            self._splitter = RecursiveCharacterTextSplitter(chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap,
                                                            separators=SEPARATORS, keep_separator="end",
                                                            strip_whitespace=True)
        return self._splitter.split_text(text)

    def split(self, pages: list[Page], doc_id: str) -> list[Chunk]:
        chunks: list[Chunk] = []
        for page in pages:
            heading = page_heading(page.text)
            for text in self._texts(page.text):
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
                    heading="" if not heading or text.startswith(heading.split(" / ")[0]) else heading,
                    location=page.location,
                ))
        return chunks


def chunk_id(doc_id: str, index: int) -> str:
    return f"{doc_id[:32]}-{index:06d}"
