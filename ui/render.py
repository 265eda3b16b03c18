"""HTML for the app's panels. Every piece of text that comes from a document, a file name or a model is escaped
here before any markup is added, so a PDF containing ``<script>`` shows that text and never runs it."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rag import RagError, highlight_terms
from rag.types import Answer, Claim, DocumentInfo, Search, Usage
from ui.i18n import TEXT, t


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


# -- highlighting ----------------------------------------------------------------------------------------

def highlight(text: str, question: str) -> str:
    """``text`` escaped, with the question's words wrapped in <mark>. Matches are found on the raw text and
    every piece is escaped on its own, so no markup from the text can survive."""
    terms = highlight_terms(question)
    if not terms:
        return esc(text)
    parts = []
    for term in sorted(terms, key=len, reverse=True):
        if not term.isascii():  # Hangul: no word boundaries (particles follow the noun)
            parts.append(re.escape(term))
        elif term.isdigit():
            parts.append(rf"(?<![\w.]){re.escape(term)}(?![\w])")
        else:
            parts.append(rf"\b{re.escape(term)}\w*")
    pattern = re.compile("|".join(parts), re.IGNORECASE)
    out: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        out.append(esc(text[last:match.start()]))
        out.append(f"<mark>{esc(match.group(0))}</mark>")
        last = match.end()
    out.append(esc(text[last:]))
    return "".join(out)


# -- chat messages ---------------------------------------------------------------------------------------

def _claims(claims: Sequence[Claim], anchor: str) -> str:
    """The answer's sentences, escaped; each citation a small link to its source in the sources panel, placed
    before the sentence's final punctuation as in the plain text."""
    out: list[str] = []
    for i, claim in enumerate(claims):
        if i:
            out.append("<br>" if claim.new_line else " ")
        if not claim.citations:
            out.append(esc(claim.text).replace("\n", "<br>"))
            continue
        body, end = claim.split_end()
        links = "".join(f'<a class="cite" href="#src-{anchor}-{n}" title="[{n}]">[{n}]</a>' for n in claim.citations)
        out.append(f"{esc(body)} {links}{esc(end)}".replace("\n", "<br>"))
    return "".join(out)


def streaming(text: str) -> str:
    return f'<div class="answer streaming">{esc(text)}<span class="cursor">▍</span></div>'


def status_line(text: str) -> str:
    return f'<div class="answer pending"><em>{esc(text)}</em></div>'


def usage_line(usage: Usage, model: str, lang: str) -> str:
    parts = [t("usage", lang, prompt=usage.prompt_tokens, completion=usage.completion_tokens)]
    if usage.estimated:
        parts[0] += f" ({t('usage_estimated', lang)})"
    if usage.cost_usd is not None:
        parts.append(t("cost", lang, cost=usage.cost_usd))
    if model:
        parts.append(t("model_used", lang, model=model))
    return " · ".join(parts)


def answer(ans: Answer, anchor: str, model: str, lang: str, original_question: str = "") -> str:
    """The final, checked answer as a chat message: refusals look different; usage and sources follow."""
    meta = [usage_line(ans.usage, model, lang)]
    if ans.question and original_question and ans.question.strip() != original_question.strip():
        meta.append(t("rewritten", lang, question=ans.question))
    footer = f'<div class="answer-meta">{esc(" · ".join(meta))}</div>'
    if ans.refused:
        return (f'<div class="answer refusal"><div class="badge">⚠ {esc(t("refusal_label", lang))}</div>'
                f"{_claims(ans.claims, anchor)}{footer}</div>")
    cited = ans.cited() or ans.sources
    refs = " ".join(f'<a class="cite" href="#src-{anchor}-{s.n}">[{s.n}]</a> {esc(s.hit.source)}, '
                    f'{esc(s.hit.location or t("page", lang, page=s.hit.page))}' for s in cited)
    return (f'<div class="answer grounded">{_claims(ans.claims, anchor)}'
            f'<div class="answer-refs">{refs}</div>{footer}</div>')


def error(err: BaseException, lang: str) -> str:
    """A provider or config error as a readable message with its fix; anything else as one line."""
    if isinstance(err, RagError):
        body = esc(err.message)
        if err.hint:
            body += f'<div class="fix"><b>{esc(t("fix", lang))}:</b> {esc(err.hint)}</div>'
    else:
        body = esc(t("unexpected", lang, error=f"{type(err).__name__}: {err}"))
    return f'<div class="answer error"><div class="badge">✖ {esc(t("error_label", lang))}</div>{body}</div>'


def notice(text: str) -> str:
    return f'<div class="answer notice">{esc(text)}</div>'


# -- sources panel ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SourceView:
    """One numbered passage as the sources panel shows it (built by ui.sources)."""

    n: int
    source: str
    page: int
    score: float
    text: str
    cited: bool
    ocr: bool = False
    image_url: str = ""  # the whole page, the passage marked
    located: bool = False  # the passage is marked on the preview
    open_url: str = ""  # the PDF at that page (or the page image when the PDF is not served)
    opens_pdf: bool = False
    missing_path: str = ""  # the document's file is gone: no preview
    location: str = ""  # what the page number means for non-PDF files ("lines 61-120", "00:03:12-00:04:05")
    audio_url: str = ""  # an audio file's passage: the file, played from the passage's start (#t=seconds)


def sources_panel(views: Sequence[SourceView], question: str, anchor: str, lang: str, *, refused: bool = False,
                  searched: str = "", several: bool = False, searches: Sequence[Search] = ()) -> str:
    """The passages behind one answer to ``question``; words of the question and of the question actually
    ``searched`` (a follow-up rewritten with its context) are highlighted in them. ``several``: the chat holds
    other answers, which the user can click to see theirs. ``searches``: the searches the model made with its
    search tool, listed above the passages."""
    if not question:
        return f'<div class="sources empty">{esc(t("sources_empty", lang))}</div>'
    head = f'<div class="sources-head">{esc(t("sources_for", lang, question=question))}</div>'
    if several:
        head += f'<div class="muted small">{esc(t("sources_pick", lang))}</div>'
    words = f"{question} {searched}" if searched and searched != question else question
    if searches:
        head += _searches(searches, anchor, lang)
        words = " ".join([words, *(s.query for s in searches)])
    if not views:
        return f'<div class="sources">{head}<p class="muted">{esc(t("sources_none", lang))}</p></div>'
    cited = [v for v in views if v.cited]
    others = [v for v in views if not v.cited]
    if refused or not cited:  # nothing cited: show all that was searched, open
        return f'<div class="sources">{head}{"".join(_card(v, words, anchor, lang) for v in views)}</div>'
    body = "".join(_card(v, words, anchor, lang) for v in cited)
    if others:
        rest = "".join(_card(v, words, anchor, lang) for v in others)
        body += (f'<details class="more"><summary>{esc(t("not_cited", lang, n=len(others)))}</summary>'
                 f"{rest}</details>")
    return f'<div class="sources">{head}{body}</div>'


def _searches(searches: Sequence[Search], anchor: str, lang: str) -> str:
    items = []
    for s in searches:
        if not s.query:  # list_documents
            items.append(f'<li><code>{esc(s.tool)}()</code></li>')
            continue
        where = ", ".join(s.documents) if s.documents else t("all_documents", lang)
        found = " ".join(f'<a class="cite" href="#src-{anchor}-{n}">[{n}]</a>' for n in s.sources)
        items.append(f'<li><q>{esc(s.query)}</q> <span class="muted small">({esc(where)})</span> '
                     f'{found or esc(t("search_found_none", lang))}</li>')
    return (f'<details class="searches" open><summary>{esc(t("searches", lang, n=len(searches)))}</summary>'
            f'<ol>{"".join(items)}</ol></details>')


def _card(v: SourceView, question: str, anchor: str, lang: str) -> str:
    badges = [esc(v.location or t("page", lang, page=v.page)), esc(t("score", lang, score=v.score))]
    if v.ocr:
        badges.append(esc(t("ocr", lang)))
    if v.cited:
        badges.append(f'<span class="tag">{esc(t("cited", lang))}</span>')
    meta = (f'<div class="src-meta"><span class="src-n">[{v.n}]</span> <b class="src-file">{esc(v.source)}</b> '
            f'<span class="src-badges">{" · ".join(badges)}</span></div>')
    passage = f'<blockquote class="src-text">{highlight(v.text, question)}</blockquote>'
    links = []
    if v.open_url:
        label = t("open_page", lang, page=v.page) if v.opens_pdf else t("open_image", lang)
        links.append(f'<a class="src-open" href="{esc(v.open_url)}" target="_blank" rel="noopener">{esc(label)}</a>')
    alt = esc(t("preview_alt", lang, page=v.page, name=v.source))
    if v.image_url:
        note = "" if v.located else f'<div class="muted small">{esc(t("not_located", lang))}</div>'
        body = (f'<div class="src-body"><a class="src-preview" href="{esc(v.open_url or v.image_url)}" target="_blank" '
                f'rel="noopener"><img src="{esc(v.image_url)}" alt="{alt}" loading="lazy"></a>'
                f'<div>{passage}{note}</div></div>')
    elif v.audio_url:
        body = (f'{passage}<audio class="src-audio" controls preload="metadata" src="{esc(v.audio_url)}" '
                f'aria-label="{esc(t("play_from", lang, time=v.location, name=v.source))}"></audio>')
    elif v.missing_path:
        body = f'{passage}<div class="muted small">{esc(t("no_preview", lang, path=v.missing_path))}</div>'
    else:
        body = passage
    css = "src-card cited" if v.cited else "src-card"
    return (f'<div class="{css}" id="src-{anchor}-{v.n}" data-page="{v.page}">{meta}{body}'
            f'<div class="src-links">{" · ".join(links)}</div></div>')


# -- library and uploads ---------------------------------------------------------------------------------

def library(docs: Sequence[DocumentInfo], lang: str) -> str:
    if not docs:
        return f'<div class="library empty">{esc(t("library_empty", lang))}</div>'
    rows = []
    for d in docs:
        note = f' <span class="muted small">({esc(t("ocr_pages", lang, n=d.ocr_pages))})</span>' if d.ocr_pages else ""
        rows.append(f'<tr><td class="doc-name" title="{esc(d.source)}">{esc(d.source)}{note}</td>'
                    f'<td class="num">{d.pages}</td><td class="num">{d.chunks}</td>'
                    f'<td class="when" title="{esc(d.ingested_at)}">{esc(_when(d.ingested_at))}</td></tr>')
    summary = t("library_summary", lang, docs=len(docs), pages=sum(d.pages for d in docs),
                chunks=sum(d.chunks for d in docs))
    head = "".join(f"<th>{esc(t(k, lang))}</th>" for k in ("col_name", "col_pages", "col_chunks", "col_added"))
    return (f'<div class="library"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f'<div class="muted small">{esc(summary)}</div></div>')


def _when(iso: str) -> str:
    """ISO UTC time as the local date (the server's time zone); the full time is in the cell's tooltip."""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d")
    except ValueError:
        return iso


@dataclass(slots=True)
class FileRow:
    """One uploaded file's line in the upload results: ``stage`` as in rag.ingest.Progress, or waiting. The
    text is made when drawn, so the rows can be redrawn in the other language."""

    name: str
    stage: str = "waiting"
    pages: int = 0
    chunks: int = 0
    reason: str = ""  # why it failed, as the library said it
    reason_key: str = ""  # or why it failed, as a TEXT key with values (checks made by the UI)
    reason_values: dict[str, object] = field(default_factory=dict)

    def fail(self, reason: str = "", key: str = "", **values: object) -> None:
        self.stage, self.reason, self.reason_key, self.reason_values = "failed", reason, key, values


_STAGE_CLASS = {"added": "ok", "updated": "ok", "skipped": "same", "failed": "bad"}


def stage_label(row: FileRow, lang: str) -> str:
    if row.stage == "embedding":
        return t("st_embedding", lang, detail=t("n_chunks", lang, n=row.chunks))
    if row.stage in ("added", "updated"):
        return t(f"st_{row.stage}", lang, detail=t("doc_counts", lang, pages=row.pages, chunks=row.chunks))
    if row.stage == "failed":
        reason = t(row.reason_key, lang, **row.reason_values) if row.reason_key else row.reason
        return t("st_failed", lang, detail=reason)
    return t(f"st_{row.stage}" if f"st_{row.stage}" in TEXT else "st_parsing", lang)


def ingest_results(rows: Sequence[FileRow], lang: str) -> str:
    if not rows:
        return ""
    items = []
    for row in rows:
        css = _STAGE_CLASS.get(row.stage, "busy")
        label = stage_label(row, lang)
        items.append(f'<li class="{css}" data-stage="{esc(row.stage)}"><b>{esc(row.name)}</b> — {esc(label)}</li>')
    return (f'<div class="ingest"><div class="ingest-head">{esc(t("ingest_title", lang))}</div>'
            f'<ul>{"".join(items)}</ul></div>')
