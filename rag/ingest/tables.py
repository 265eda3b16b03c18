"""Tables in PDF pages: keep each table row together with its header.

Input is a page's text from pypdf's layout mode (``extract_text(extraction_mode="layout")``), where columns keep
their horizontal positions. A run of at least ``MIN_ROWS`` lines holding numbers in aligned columns is a table.
Its rows are written as ``label | value | value``; the column headers found above it are merged per column
(``December 2, 2016``); and the rows are cut into small groups, each preceded by the table's title and header
and separated by blank lines, so a chunk boundary falls between groups and every chunk of a table says what its
numbers are. Everything that is not a table is left as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MIN_ROWS = 3
GROUP_ROWS = 8  # rows per group; a group is small enough that chunks break between groups
GROUP_CHARS = 480
_CELL = re.compile(r"\S+(?: {1,2}\S+)*")
_NUMBER = re.compile(r"^[(\[]?[-−–—]?[$€£¥₩]?\s?[-−–—]?\(?\d[\d,.]*\)?%?[)\]]?$|^[-−–—]+$|^\$?\s?[-−–—]$")
_YEAR = re.compile(r"^(?:FY ?)?(?:19|20)\d\d$")
_CURRENCY = {"$", "€", "£", "¥", "₩"}


@dataclass(frozen=True, slots=True)
class _Cell:
    start: int
    end: int
    text: str

    @property
    def numeric(self) -> bool:
        return bool(_NUMBER.match(self.text.replace(" ", "")))


def _cells(line: str) -> list[_Cell]:
    cells: list[_Cell] = []
    for m in _CELL.finditer(line):
        cell = _Cell(m.start(), m.end(), m.group())
        if cells and cells[-1].text in _CURRENCY:  # "$     4,584,833" is one cell
            cell = _Cell(cells[-1].start, cell.end, cells[-1].text + cell.text)
            cells[-1] = cell
        else:
            cells.append(cell)
    return cells


def _is_row(cells: list[_Cell]) -> bool:
    """At least two cells, and after the label at least as many numbers as words (footnotes are not rows)."""
    if len(cells) < 2:
        return False
    numbers = sum(c.numeric for c in cells[1:])
    return numbers >= 1 and numbers >= len(cells) - 1 - numbers


def table_text(layout: str) -> str:
    """``layout`` with every table rewritten as header-led row groups (see the module docstring)."""
    lines = layout.splitlines()
    cells = [_cells(line) for line in lines]
    out: list[str] = []
    i = 0
    last_end = 0  # lines since the last table were copied to ``out`` one for one
    while i < len(lines):
        end = _table_end(cells, i)
        if end > i and _count_rows(cells, i, end) >= MIN_ROWS:
            header_start = max(_header_start(cells, i), last_end)
            if i > header_start:
                del out[header_start - i:]  # the header lines were copied already; the table takes them
            out.extend(_rewrite(lines, cells, header_start, i, end))
            i = last_end = end
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def _table_end(cells: list[list[_Cell]], start: int) -> int:
    """End (exclusive) of the table starting at ``start``, or ``start`` when no table starts there."""
    if not _is_row(cells[start]):
        return start
    end = i = start
    blanks = 0
    while i < len(cells):
        row = cells[i]
        if not row:
            blanks += 1
            if blanks > 2:
                break
        elif _is_row(row):
            end = i + 1
            blanks = 0
        elif len(row) == 1 and len(row[0].text) <= 80:
            blanks = 0  # a sub-heading ("Cost of revenue:") inside the table
        else:
            break
        i += 1
    return end


def _count_rows(cells: list[list[_Cell]], start: int, end: int) -> int:
    return sum(1 for row in cells[start:end] if _is_row(row))


def _header_start(cells: list[list[_Cell]], start: int) -> int:
    """First line of the column headers above the table (up to four lines, one blank allowed)."""
    label_end = min((row[0].end for row in cells[start:start + 12] if _is_row(row) and not row[0].numeric), default=0)
    i, blanks, header = start - 1, 0, start
    while i >= 0 and start - i <= 5:
        row = cells[i]
        if not row:
            blanks += 1
            if blanks > 1:
                break
        elif all(c.start >= label_end for c in row) and label_end:
            header = i
        else:
            break
        i -= 1
    return header


def _years(row: list[_Cell]) -> bool:
    values = row if row[0].numeric else row[1:]
    return bool(values) and all(_YEAR.match(c.text) for c in values)


def _columns(rows: list[list[_Cell]]) -> list[int]:
    """Right edges of the value columns (numbers are right-aligned), clustered within 3 characters."""
    edges = sorted(c.end for row in rows for c in row[1:] if c.numeric)
    columns: list[list[int]] = []
    for edge in edges:
        if columns and edge - columns[-1][-1] <= 3:
            columns[-1].append(edge)
        else:
            columns.append([edge])
    return [max(group) for group in columns]


def _nearest(columns: list[int], cell: _Cell) -> int:
    return min(range(len(columns)), key=lambda k: abs(columns[k] - cell.end))


def _rewrite(lines: list[str], cells: list[list[_Cell]], header_start: int, start: int, end: int) -> list[str]:
    body = [row for row in cells[start:end]]
    data_rows = [row for row in body if _is_row(row) and not row[0].numeric]
    columns = _columns(data_rows or [row for row in body if _is_row(row)])
    names = [""] * len(columns)
    caption: list[str] = []
    header_rows = [row for row in cells[header_start:start] if row]
    # Leading rows whose values are all years ("Plant  2021  2022", "2016  2015  2014") are header rows too.
    first_data = next((k for k, row in enumerate(body) if row and not _years(row)), 0)
    header_rows += [row for row in body[:first_data] if row]
    value_start = min((c.start for row in data_rows for c in row[1:] if c.numeric), default=0)
    label_name = ""
    for row in header_rows:
        if len(row) == 1 and len(columns) > 1:
            caption.append(row[0].text)
            continue
        for cell in row:
            if cell.end <= value_start:
                label_name = f"{label_name} {cell.text}".strip()
                continue
            k = _nearest(columns, cell)
            names[k] = f"{names[k]} {cell.text}".strip()
    title = _title(lines, cells, header_start)
    head = " ".join(part for part in (title, " ".join(caption)) if part)
    header_line = " | ".join([label_name, *names]).strip() if any(names) else ""

    rows_out: list[str] = []
    for row in body[first_data:]:
        if not row:
            continue
        if not _is_row(row):
            rows_out.append(" ".join(c.text for c in row))
            continue
        label = "" if row[0].numeric else row[0].text
        values = [""] * len(columns)
        for cell in row[0 if row[0].numeric else 1:]:
            k = _nearest(columns, cell)
            values[k] = f"{values[k]} {cell.text}".strip()
        rows_out.append(" | ".join([label, *values]))

    out: list[str] = []
    group: list[str] = []
    size = 0
    for row in rows_out:
        if group and (len(group) >= GROUP_ROWS or size + len(row) > GROUP_CHARS):
            out.extend(_group(head, header_line, group))
            group, size = [], 0
        group.append(row)
        size += len(row) + 1
    if group:
        out.extend(_group(head, header_line, group))
    return out


def _group(head: str, header_line: str, rows: list[str]) -> list[str]:
    return ["", *[line for line in (head, header_line) if line], *rows, ""]


def _title(lines: list[str], cells: list[list[_Cell]], header_start: int) -> str:
    """Up to two one-cell lines just above the header (e.g. "CONSOLIDATED STATEMENTS OF INCOME" and a note under
    it), in reading order; a multi-cell line or two blank lines end the search."""
    found: list[str] = []
    blanks = 0
    for i in range(header_start - 1, max(-1, header_start - 8), -1):
        row = cells[i]
        if not row:
            blanks += 1
            if blanks >= 2 and found:
                break
            continue
        blanks = 0
        if len(row) > 1 or row[0].numeric or not 3 <= len(row[0].text) <= 120:
            break
        found.insert(0, row[0].text)
        if len(found) == 2:
            break
    return " ".join(found)
