"""A first upload + chat page (the full app is built in ui/ pages)."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from rag.generation import Done, Token
from rag.runtime import Rag


def build(rag: Rag) -> gr.Blocks:
    with gr.Blocks(title="PDF chat") as demo:
        gr.Markdown("## Chat with your PDFs")
        with gr.Row():
            with gr.Column(scale=1):
                files = gr.File(label="Upload PDFs", file_count="multiple", file_types=[".pdf"])
                result = gr.Markdown()
            with gr.Column(scale=2):
                chat = gr.Chatbot(label="Chat", height=480)
                question = gr.Textbox(label="Question", placeholder="Ask about your documents")

        def upload(paths: list[str] | None) -> str:
            if not paths:
                return ""
            names = {Path(p).resolve(): Path(p).name for p in paths}
            report = rag.ingestor.ingest(list(names), names=names)
            lines = [f"- added {html.escape(n)}" for n in report.added]
            lines += [f"- updated {html.escape(n)}" for n in report.updated]
            lines += [f"- unchanged {html.escape(n)}" for n in report.skipped]
            lines += [f"- failed {html.escape(f.file)}: {html.escape(f.reason)}" for f in report.failed]
            return "\n".join(lines)

        def respond(text: str, history: list[dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
            history = [*history, {"role": "user", "content": text}, {"role": "assistant", "content": ""}]
            for event in rag.answerer.stream(text):
                if isinstance(event, Token):
                    history[-1]["content"] += event.text
                    yield "", history
                elif isinstance(event, Done):
                    answer = event.answer
                    cited = "\n".join(f"[{s.n}] {s.hit.source}, page {s.hit.page}" for s in answer.sources)
                    history[-1]["content"] = answer.text + (f"\n\n{cited}" if cited and not answer.refused else "")
                    yield "", history

        files.upload(upload, files, result)
        question.submit(respond, [question, chat], [question, chat])
    return demo
