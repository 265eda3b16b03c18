"""The document library: upload PDFs with per-file progress and results, list documents, choose which ones the
chat may use, delete one (with a confirmation step)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from rag import SUFFIXES, Rag, RagError, safe_name
from rag.types import Failure, IngestReport, Progress
from ui import render, worker
from ui.i18n import DEFAULT, Labels, t

logger = logging.getLogger(__name__)

# Failure codes with a message of their own in ui.i18n (the others show the library's reason).
_TRANSLATED = ("unsupported", "same_name", "too_large")


class LibraryPanel:
    def __init__(self, rag: Rag, labels: Labels) -> None:
        self._rag = rag
        lang = DEFAULT
        mb = rag.settings.app.max_upload_mb
        self.files = labels.add(
            gr.File(label=t("upload", lang, mb=mb), file_count="multiple", file_types=sorted(SUFFIXES), height=130,
                    elem_id="upload"),
            label=lambda lang: t("upload", lang, mb=mb))
        self.results = gr.HTML("", elem_id="ingest-results", padding=False)
        self.rows = gr.State([])  # the last upload's FileRows, to redraw them in another language
        self.table = gr.HTML(render.library([], lang), elem_id="library", padding=False)
        self.selected = labels.add(
            gr.CheckboxGroup(label=t("use_docs", lang), info=t("use_docs_info", lang), choices=[], value=[],
                             show_select_all=True, elem_id="use-docs"),
            label="use_docs", info="use_docs_info")
        self.known = gr.State([])  # the documents listed in this page, to tell "all chosen" from "some"
        with labels.add(gr.Accordion(t("delete_pick", lang), open=False, elem_id="delete-box"), label="delete_pick"):
            with gr.Row(equal_height=True):
                self.pick = gr.Dropdown(choices=[], value=None, show_label=False, scale=3, elem_id="delete-pick",
                                        allow_custom_value=False)
                self.delete = labels.add(gr.Button(t("delete", lang), variant="stop", scale=1, min_width=80,
                                                   elem_id="delete"), value="delete")
            with gr.Group(visible=False) as self.confirm_box:
                self.confirm_text = gr.HTML("", padding=False)
                with gr.Row():
                    self.confirm = labels.add(gr.Button(t("delete_yes", lang), variant="stop", size="sm",
                                                        elem_id="delete-yes"), value="delete_yes")
                    self.cancel = labels.add(gr.Button(t("cancel", lang), size="sm", elem_id="delete-cancel"),
                                             value="cancel")

    # -- shared ---------------------------------------------------------------------------------------------

    def refreshed(self, lang: str, selected: list[str] | None = None, known: list[str] | None = None,
                  added: tuple[str, ...] = ()) -> tuple[Any, ...]:
        """(table, selected, known, pick) for the documents now in the store. Documents that were chosen stay
        chosen, new ones (or all, on first load) are chosen; when all were chosen, all still are."""
        docs = self._rag.documents()
        names = [d.source for d in docs]
        if known is None or set(selected or []) >= set(known):
            chosen = names
        else:
            keep = set(selected or []) | set(added)
            chosen = [n for n in names if n in keep or n not in known]
        return (render.library(docs, lang), gr.update(choices=names, value=chosen), names,
                gr.update(choices=names, value=None))

    def outputs(self) -> list[Any]:
        return [self.table, self.selected, self.known, self.pick]

    # -- events ---------------------------------------------------------------------------------------------

    def wire(self, lang: gr.State) -> None:
        self.files.upload(self.upload, [self.files, self.selected, self.known, lang],
                          [self.results, self.rows, *self.outputs(), self.files], concurrency_limit=1,
                          show_progress="full", show_progress_on=[self.files], trigger_mode="multiple")
        self.delete.click(self.ask_delete, [self.pick, lang], [self.confirm_box, self.confirm_text, self.results])
        for event in (self.cancel.click, self.pick.change):  # a new choice needs a new confirmation
            event(lambda: (gr.update(visible=False), ""), None, [self.confirm_box, self.confirm_text])
        self.confirm.click(self.do_delete, [self.pick, self.selected, self.known, lang],
                           [self.confirm_box, self.results, *self.outputs()])

    def upload(self, files: list[str] | None, selected: list[str] | None, known: list[str] | None, lang: str,
               progress: gr.Progress = gr.Progress()) -> Iterator[tuple[Any, ...]]:  # noqa: B008 - Gradio's way
        # Gradio keeps the browser's file name as the temporary file's name; the library stores it as safe_name.
        uploads = [(Path(temp), Path(temp).name) for temp in files or []]
        rows = [render.FileRow(safe_name(name)) for _, name in uploads]
        by_name = {row.name: row for row in rows}
        yield (render.ingest_results(rows, lang), rows, *[gr.update()] * 4, gr.update())

        def work(emit: worker.Emit) -> IngestReport:
            return self._rag.upload(uploads, on_progress=emit)

        report: IngestReport | None = None
        for batch in worker.run(work, name="ui-ingest"):
            for item in batch:
                if isinstance(item, Progress) and item.file in by_name:
                    _update(by_name[item.file], item)
                    progress((item.done, item.total), desc=t("progress", lang, file=item.file,
                                                             stage=render.stage_label(by_name[item.file], lang)))
                elif isinstance(item, worker.Finished):
                    report = item.value
                elif isinstance(item, worker.Failed):
                    if not isinstance(item.error, RagError):
                        logger.error("upload failed", exc_info=item.error)
                    for row in rows:
                        if row.stage not in ("added", "updated", "skipped", "failed"):
                            row.fail(_describe(item.error))
            yield (render.ingest_results(rows, lang), rows, *[gr.update()] * 4, gr.update())
        added = tuple(report.added + report.updated) if report else ()
        yield (render.ingest_results(rows, lang), rows, *self.refreshed(lang, selected, known, added), None)

    def ask_delete(self, name: str | None, lang: str) -> tuple[Any, ...]:
        info = self._rag.document(name) if name else None
        if info is None:
            return gr.update(visible=False), "", render.notice(t("delete_none", lang))
        text = t("delete_confirm", lang, name=info.source, chunks=info.chunks)
        return gr.update(visible=True), f'<div class="confirm">{render.esc(text)}</div>', ""

    def do_delete(self, name: str | None, selected: list[str] | None, known: list[str] | None,
                  lang: str) -> tuple[Any, ...]:
        hidden = gr.update(visible=False)
        try:
            info = self._rag.delete(name or "")  # its chunks, previews and uploaded copy
        except RagError as exc:
            return (hidden, render.error(exc, lang), *self.refreshed(lang, selected, known))
        message = render.notice(t("deleted", lang, name=info.source))
        return (hidden, message, *self.refreshed(lang, selected, known))


def _update(row: render.FileRow, item: Progress) -> None:
    row.stage = item.stage
    if item.stage == "embedding":
        row.chunks = item.steps
    elif item.document is not None:
        row.pages, row.chunks = item.document.pages, item.document.chunks
    elif item.failure is not None:
        _fail(row, item.failure)


def _fail(row: render.FileRow, failure: Failure) -> None:
    if failure.code in _TRANSLATED:
        row.fail(key=failure.code, **failure.values)
    else:
        row.fail(failure.reason)


def _describe(error: BaseException | None) -> str:
    if isinstance(error, RagError):
        return str(error)  # message (hint)
    if error is not None:
        return f"{type(error).__name__}: {error}"
    return ""
