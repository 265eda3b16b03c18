"""Plain text and Markdown files: ``.txt`` in blocks of ``text_lines`` lines (``location`` "lines 61-120");
``.md`` in sections that start at headings (``location`` "Installation (lines 12-40)"), or line blocks without any."""

from __future__ import annotations

import re

from rag.ingest.loading import Loaded, LoadOptions, OnPage, clip, span
from rag.text import normalise
from rag.types import Page

_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
_MD_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def load_text(data: bytes, source: str, options: LoadOptions, on_page: OnPage | None = None) -> Loaded:
    """Plain text: one section per block of ``text_lines`` lines, numbered from 1."""
    lines = _decode_text(data).splitlines()
    return Loaded(_line_blocks(lines, source, options.text_lines, first_line=1, first_page=1))


def load_markdown(data: bytes, source: str, options: LoadOptions, on_page: OnPage | None = None) -> Loaded:
    """Markdown: a section starts at each heading (not inside fenced code); without headings, line blocks."""
    lines = _decode_text(data).splitlines()
    starts: list[tuple[int, str]] = []  # (0-based line, heading text)
    fenced = False
    for i, line in enumerate(lines):
        if _MD_FENCE.match(line):
            fenced = not fenced
        elif not fenced and (m := _MD_HEADING.match(line)):
            starts.append((i, m.group(2).strip()))
    if not starts:
        return Loaded(_line_blocks(lines, source, options.text_lines, first_line=1, first_page=1))
    pages: list[Page] = []
    bounds = ([(0, "")] if starts[0][0] > 0 else []) + starts
    for k, (start, title) in enumerate(bounds):
        end = bounds[k + 1][0] if k + 1 < len(bounds) else len(lines)
        text = normalise("\n".join(lines[start:end]))
        if not text and not title:
            continue
        lines_span = span("lines", start + 1, max(start + 1, end))
        pages.append(Page(source=source, page=len(pages) + 1, text=text,
                          location=f"{clip(title)} ({lines_span})" if title else lines_span))
    return Loaded(pages)


def _line_blocks(lines: list[str], source: str, size: int, first_line: int, first_page: int) -> list[Page]:
    pages = []
    for start in range(0, max(len(lines), 1), size):
        block = lines[start:start + size]
        end = start + max(len(block), 1)
        pages.append(Page(source=source, page=first_page + start // size, text=normalise("\n".join(block)),
                          location=span("lines", first_line + start, first_line + end - 1)))
    return pages


def _decode_text(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp949", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", "replace")  # unreachable: latin-1 decodes anything
