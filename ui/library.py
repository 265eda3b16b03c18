"""The document library: upload PDFs with per-file progress and results, list documents, choose which ones the
chat may use, delete one (with a confirmation step)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from rag.errors import DocumentError, RagError
from rag.ingest import Progress
from rag.loaders import LOADERS, supported
from rag.preview import PageRenderer
from rag.runtime import Rag
from rag.types import IngestReport
from ui import render, worker
from ui.i18n import DEFAULT, Labels, t
from ui.uploads import Staged, UploadFolder, safe_name

logger = logging.getLogger(__name__)

_FINAL = ("added", "updated", "skipped", "failed")


class LibraryPanel:
    def __init__(self, rag: Rag, uploads: UploadFolder, previews: PageRenderer, labels: Labels) -> None:
        self._rag = rag
        self._uploads = uploads
        self._previews = previews
        lang = DEFAULT
        mb = uploads.max_mb
        self.files = labels.add(
            gr.File(label=t("upload", lang, mb=mb), file_count="multiple", file_types=sorted(LOADERS), height=130,
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
        docs = self._rag.store.documents()
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
        rows: list[render.FileRow] = []
        staged: dict[Path, tuple[render.FileRow, Staged]] = {}
        for temp in map(Path, files or []):
            name = safe_name(temp.name)  # Gradio keeps the browser's file name as the temporary file's name
            row = render.FileRow(name)
            rows.append(row)
            self._check(temp, row, rows)
            if row.stage == "failed":
                continue
            try:
                stage = self._uploads.stage(temp, name)
            except OSError as exc:
                row.fail(str(exc.strerror or exc))
                continue
            staged[stage.path.resolve()] = (row, stage)
        keep = (render.ingest_results(rows, lang), rows)
        yield (*keep, *[gr.update()] * 4, gr.update())
        if not staged:
            yield (*keep, *self.refreshed(lang, selected, known), None)
            return
        by_name = {row.name: row for row, _ in staged.values()}

        def work(emit: worker.Emit) -> IngestReport:
            return self._rag.ingestor.ingest(list(staged), on_progress=emit,
                                             names={path: row.name for path, (row, _) in staged.items()})

        report: IngestReport | None = None
        error: BaseException | None = None
        for batch in worker.run(work, name="ui-ingest"):
            for item in batch:
                if isinstance(item, Progress) and item.file in by_name:
                    row = by_name[item.file]
                    self._update(row, item)
                    progress((item.done, item.total), desc=t("progress", lang, file=item.file,
                                                             stage=render.stage_label(row, lang)))
                elif isinstance(item, worker.Finished):
                    report = item.value
                elif isinstance(item, worker.Failed):
                    error = item.error
            yield (render.ingest_results(rows, lang), rows, *[gr.update()] * 4, gr.update())
        added = self._settle(staged, report, error)
        yield (render.ingest_results(rows, lang), rows, *self.refreshed(lang, selected, known, added), None)

    def _update(self, row: render.FileRow, item: Progress) -> None:
        row.stage = item.stage
        if item.stage == "embedding":
            count = item.detail.split()[0] if item.detail else ""
            row.chunks = int(count) if count.isdigit() else 0
        elif item.stage in ("added", "updated"):
            info = self._rag.store.document(item.file)
            row.pages, row.chunks = (info.pages, info.chunks) if info else (0, 0)
        elif item.stage == "failed":
            row.fail(item.detail)

    def _check(self, temp: Path, row: render.FileRow, rows: list[render.FileRow]) -> None:
        """Mark the row failed when this upload cannot be ingested."""
        suffix = Path(row.name).suffix
        if not supported(Path(row.name)):
            row.fail(key="unsupported", suffix=suffix or "?", supported=", ".join(sorted(LOADERS)))
        elif sum(1 for r in rows if r.name == row.name) > 1:
            row.fail(key="same_name")
        else:
            try:
                self._uploads.check_size(temp)
            except DocumentError:
                size = temp.stat().st_size / 1024 / 1024
                row.fail(key="too_large", size=f"{size:.1f}", limit=self._uploads.max_mb)

    def _settle(self, staged: dict[Path, tuple[render.FileRow, Staged]], report: IngestReport | None,
                error: BaseException | None) -> tuple[str, ...]:
        """Keep the uploaded copies that were ingested, put back or remove the others; say what went wrong."""
        failed = {f.file: f.reason for f in report.failed} if report else {}
        for row, stage in staged.values():
            if report is not None and row.name not in failed:
                self._uploads.commit(stage)
                continue
            self._uploads.rollback(stage)
            if row.stage != "failed":
                row.fail(failed.get(row.name) or _describe(error))
        if error is not None and not isinstance(error, RagError):
            logger.error("upload failed", exc_info=error)
        return tuple(report.added + report.updated) if report else ()

    def ask_delete(self, name: str | None, lang: str) -> tuple[Any, ...]:
        info = self._rag.store.document(name) if name else None
        if info is None:
            return gr.update(visible=False), "", render.notice(t("delete_none", lang))
        text = t("delete_confirm", lang, name=info.source, chunks=info.chunks)
        return gr.update(visible=True), f'<div class="confirm">{render.esc(text)}</div>', ""

    def do_delete(self, name: str | None, selected: list[str] | None, known: list[str] | None,
                  lang: str) -> tuple[Any, ...]:
        hidden = gr.update(visible=False)
        try:
            info = self._rag.store.delete(name or "")
        except RagError as exc:
            return (hidden, render.error(exc, lang), *self.refreshed(lang, selected, known))
        self._uploads.remove(info.path)
        self._previews.forget(info.doc_id)
        message = render.notice(t("deleted", lang, name=info.source))
        return (hidden, message, *self.refreshed(lang, selected, known))


def _describe(error: BaseException | None) -> str:
    if isinstance(error, RagError):
        return str(error)  # message (hint)
    if error is not None:
        return f"{type(error).__name__}: {error}"
    return ""
