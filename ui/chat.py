"""The chat: streamed answers with citations, follow-up questions (typed, or spoken into the microphone and
transcribed), a sources panel per answer, Stop and New chat.

The answer stream runs in a worker thread (ui.worker) so that retry notices from deep inside the provider reach
the page between tokens. The streamed text is shown while it arrives, then replaced by the final answer, which
the library's grounding step may have changed (repaired citations; in strict mode, quotes instead of unsupported sentences).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from rag import Rag, RagError
from rag.types import Answer, Done, Retrieved, Token
from ui import render, worker
from ui.i18n import DEFAULT, Labels, t
from ui.sources import SourceViews

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Retrying:
    attempt: int
    max_retries: int
    error: RagError
    delay: float


@dataclass(slots=True)
class Conversation:
    """One browser session's chat: what the Chatbot shows, the plain turns the model sees as history, and each
    answer (by its message index) for the sources panel."""

    messages: list[dict[str, str]] = field(default_factory=list)
    turns: list[dict[str, str]] = field(default_factory=list)
    answers: dict[int, tuple[Answer, str]] = field(default_factory=dict)  # message index -> (answer, question)
    shown: int | None = None  # message index whose sources the panel shows


class ChatPanel:
    def __init__(self, rag: Rag, views: SourceViews, labels: Labels) -> None:
        self._rag = rag
        self._views = views
        lang = DEFAULT
        self.chatbot = labels.add(
            gr.Chatbot(label=t("chat", lang), placeholder=t("chat_placeholder", lang), height=560, elem_id="chat",
                       buttons=["copy"], sanitize_html=True, line_breaks=False),
            label="chat", placeholder="chat_placeholder")
        with gr.Row(equal_height=True):
            self.question = labels.add(
                gr.Textbox(label=t("question", lang), placeholder=t("question_placeholder", lang), lines=1, max_lines=6,
                           scale=6, elem_id="question", autofocus=True, show_label=False, container=False),
                label="question", placeholder="question_placeholder")
            self.send = labels.add(gr.Button(t("send", lang), variant="primary", scale=1, min_width=90, elem_id="send"),
                                   value="send")
            self.stop = labels.add(gr.Button(t("stop", lang), variant="secondary", scale=1, min_width=90, elem_id="stop"),
                                   value="stop")
        self.mic = labels.add(
            gr.Audio(sources=["microphone"], type="filepath", format="wav", label=t("record_question", lang),
                     elem_id="mic", editable=False),
            label="record_question")
        with gr.Row():
            self.new_chat = labels.add(gr.Button(t("new_chat", lang), size="sm", scale=0, min_width=120,
                                                 elem_id="new-chat"), value="new_chat")
            self.status = gr.HTML("", elem_id="status", padding=False)
        self.conversation = gr.State(Conversation())

    def panel(self) -> gr.HTML:
        """The sources panel (placed by the page, usually beside the chat)."""
        self.sources = gr.HTML(render.sources_panel([], "", "", DEFAULT), elem_id="sources", padding=False)
        return self.sources

    # -- events --------------------------------------------------------------------------------------------

    def wire(self, lang: gr.State, selected: gr.CheckboxGroup, known: gr.State, params: list[Any]) -> None:
        """``selected``/``known``: chosen and listed documents; ``params``: temperature, top_p, max_tokens, k."""
        inputs = [self.question, self.conversation, lang, selected, known, *params]
        outputs = [self.question, self.chatbot, self.conversation, self.sources, self.status]
        # always_last: a question sent while the previous answer is being finished runs next, instead of being
        # ignored (Gradio's default for a running event)
        events = [trigger(self.respond, inputs, outputs, concurrency_limit=4, trigger_mode="always_last")
                  for trigger in (self.send.click, self.question.submit)]
        # a spoken question: transcribed into the question box, then asked like typed text
        heard = self.mic.stop_recording(self.heard, [self.mic, lang], [self.question, self.mic, self.status],
                                        concurrency_limit=2)
        events.append(heard.success(self.respond, inputs, outputs, concurrency_limit=4))
        # Stop and New chat first cancel a running answer, then update the chat, so that no late update of the
        # cancelled stream can overwrite what they show
        self.stop.click(None, None, None, cancels=events, queue=False).then(
            self.stopped, [self.conversation, lang], [self.chatbot, self.conversation, self.status])
        for trigger in (self.new_chat.click, self.chatbot.clear):
            trigger(None, None, None, cancels=events, queue=False).then(
                self.clear, [lang], [self.chatbot, self.conversation, self.sources, self.status])
        self.chatbot.select(self.select, [self.conversation, lang], [self.conversation, self.sources])

    def heard(self, recording: str | None, lang: str) -> tuple[Any, ...]:
        """The recorded question as text in the question box (the recording cleared); a message, and no
        question, when it cannot be transcribed (no provider configured, the provider failed, silence)."""
        if not recording:
            return gr.update(), None, ""
        try:
            text = self._rag.transcribe(recording).strip()
        except RagError as exc:
            return "", None, render.error(exc, lang)
        except OSError as exc:
            return "", None, render.notice(str(exc))
        return text, None, ("" if text else render.notice(t("heard_nothing", lang)))

    def respond(self, text: str, conv: Conversation, lang: str, selected: list[str] | None, known: list[str] | None,
                temperature: float, top_p: float, max_tokens: float, k: float) -> Iterator[tuple[Any, ...]]:
        question = (text or "").strip()
        if not question:  # (the status may hold why a recording gave no question: keep it)
            yield gr.update(), gr.update(), conv, gr.update(), gr.update()
            return
        conv.messages = [*conv.messages, {"role": "user", "content": render.esc(question)},
                         {"role": "assistant", "content": render.status_line(t("searching", lang))}]
        index = len(conv.messages) - 1
        yield "", conv.messages, conv, gr.update(), ""

        blocked = self._blocked(selected, known, lang)
        if blocked:
            conv.messages[index] = {"role": "assistant", "content": render.notice(blocked)}
            yield "", conv.messages, conv, gr.update(), ""
            return
        sources = None if set(selected or []) >= set(known or []) else list(selected or [])
        params = {"temperature": float(temperature), "top_p": float(top_p), "max_tokens": int(max_tokens)}
        history = list(conv.turns)

        def work(emit: worker.Emit) -> None:
            def on_retry(attempt: int, max_retries: int, error: RagError, delay: float) -> None:
                emit(Retrying(attempt, max_retries, error, delay))

            stream = self._rag.stream(question, history=history, k=int(k), sources=sources, params=params,
                                               on_retry=on_retry)
            try:
                for event in stream:
                    emit(event)
            finally:
                stream.close()  # releases the model (llama.cpp holds a lock while it streams)

        streamed = ""
        status = t("searching", lang)
        retry_note = ""
        for batch in worker.run(work, name="ui-answer"):
            answer: Answer | None = None
            for item in batch:
                if isinstance(item, Token):
                    streamed += item.text
                    retry_note = ""
                elif isinstance(item, Retrieved):
                    status = t("writing", lang, n=len(item.sources)) if item.sources else t("checking", lang)
                elif isinstance(item, Retrying):
                    retry_note = t("retrying", lang, error=item.error.message, attempt=item.attempt,
                                   max=item.max_retries, delay=item.delay)
                elif isinstance(item, Done):
                    answer = item.answer
                elif isinstance(item, worker.Failed):
                    if not isinstance(item.error, RagError):
                        logger.error("answering failed", exc_info=item.error)
                    conv.messages[index] = {"role": "assistant", "content": render.error(item.error, lang)}
                    yield gr.update(), conv.messages, conv, gr.update(), ""
                    return
            if answer is not None:
                yield from self._finish(conv, index, question, answer, lang)
                return
            content = render.streaming(streamed) if streamed else render.status_line(retry_note or status)
            conv.messages[index] = {"role": "assistant", "content": content}
            yield gr.update(), conv.messages, conv, gr.update(), render.notice(retry_note) if retry_note else ""

    def _finish(self, conv: Conversation, index: int, question: str, answer: Answer,
                lang: str) -> Iterator[tuple[Any, ...]]:
        anchor = str(index)
        model = self._rag.chat().name if answer.usage.prompt_tokens else ""
        conv.messages[index] = {"role": "assistant", "content": render.answer(answer, anchor, model, lang, question)}
        conv.turns = [*conv.turns, {"role": "user", "content": question}, {"role": "assistant", "content": answer.text}]
        conv.answers[index] = (answer, question)
        conv.shown = index
        yield gr.update(), conv.messages, conv, self._panel(conv, lang, previews=False), ""
        yield gr.update(), conv.messages, conv, self._panel(conv, lang), ""  # then with page previews

    def _blocked(self, selected: list[str] | None, known: list[str] | None, lang: str) -> str:
        if not self._rag.documents():
            return t("no_documents", lang)
        if known and not selected:
            return t("no_selection", lang)
        return ""

    def _panel(self, conv: Conversation, lang: str, previews: bool = True) -> str:
        if conv.shown is None or conv.shown not in conv.answers:
            return render.sources_panel([], "", "", lang)
        answer, question = conv.answers[conv.shown]
        views = self._views.build(answer, previews=previews)
        return render.sources_panel(views, question, str(conv.shown), lang, refused=answer.refused,
                                    searched=answer.question, several=len(conv.answers) > 1,
                                    searches=answer.searches)

    def sources_html(self, conv: Conversation, lang: str) -> str:
        return self._panel(conv, lang)

    def stopped(self, conv: Conversation, lang: str) -> tuple[Any, ...]:
        """Stop pressed: the last message, if still being written, says it was stopped."""
        if conv.messages and conv.messages[-1]["role"] == "assistant":
            last = len(conv.messages) - 1
            content = conv.messages[last]["content"]
            if last not in conv.answers and ('class="answer streaming"' in content or 'class="answer pending"' in content):
                content = (content.replace('<span class="cursor">▍</span>', "")
                           .replace('class="answer streaming"', 'class="answer stopped"')
                           .replace('class="answer pending"', 'class="answer stopped"'))
                note = f'<div class="answer-meta">{render.esc(t("stopped", lang))}</div>'
                conv.messages[last] = {"role": "assistant", "content": content.removesuffix("</div>") + note + "</div>"}
        return conv.messages, conv, ""

    def clear(self, lang: str) -> tuple[Any, ...]:
        return [], Conversation(), render.sources_panel([], "", "", lang), ""

    def select(self, conv: Conversation, lang: str, evt: gr.SelectData) -> tuple[Any, ...]:
        index = evt.index if isinstance(evt.index, int) else (evt.index[0] if evt.index else None)
        if index in conv.answers:
            conv.shown = index
            return conv, self._panel(conv, lang)
        return conv, gr.update()
