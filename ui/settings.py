"""Settings: the chat provider and model (shared by the whole app, switched with Rag.use_llm and checked at once),
and the per-answer parameters (temperature, top_p, max_tokens, k), which are this browser session's own."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import gradio as gr

from rag import Rag, RagError
from ui import render
from ui.i18n import DEFAULT, Labels, t

logger = logging.getLogger(__name__)


class SettingsPanel:
    def __init__(self, rag: Rag, labels: Labels) -> None:
        self._rag = rag
        self._seq = itertools.count(1)
        llm = rag.settings.llm
        lang = DEFAULT
        with labels.add(gr.Accordion(t("settings", lang), open=False, elem_id="settings"), label="settings"):
            self.provider = labels.add(gr.Dropdown(choices=Rag.providers()["chat"], value=llm.provider, label=t("provider", lang),
                                                   elem_id="provider"), label="provider")
            self.model = labels.add(gr.Textbox(value=llm.model or "", label=t("model", lang),
                                               placeholder=t("model_placeholder", lang), elem_id="model"),
                                    label="model", placeholder="model_placeholder")
            self.base_url = labels.add(gr.Textbox(value=llm.base_url or "", label=t("base_url", lang),
                                                  elem_id="base-url"), label="base_url")
            self.apply = labels.add(gr.Button(t("apply_model", lang), size="sm", elem_id="apply-model"),
                                    value="apply_model")
            self.model_status = gr.HTML(self.current(lang), padding=False, elem_id="model-status")
            self.temperature = labels.add(
                gr.Slider(0.0, 2.0, value=llm.temperature, step=0.05, label=t("temperature", lang),
                          info=t("temperature_info", lang)), label="temperature", info="temperature_info")
            self.top_p = labels.add(gr.Slider(0.05, 1.0, value=llm.top_p, step=0.05, label=t("top_p", lang)),
                                    label="top_p")
            self.max_tokens = labels.add(gr.Slider(16, 4096, value=llm.max_tokens, step=16, label=t("max_tokens", lang)),
                                         label="max_tokens")
            self.k = labels.add(gr.Slider(1, 20, value=rag.settings.retrieval.k, step=1, label=t("k", lang)), label="k")

    @property
    def params(self) -> list[Any]:
        return [self.temperature, self.top_p, self.max_tokens, self.k]

    def current(self, lang: str, result: str = "") -> str:
        """What the status shows: the result of the last switch (if any), then the model in use. ``data-seq``
        changes with every rendering, so a page (or a test) can tell a new result from the previous one."""
        llm = self._rag.settings.llm
        model = llm.model or t("model_default", lang)
        now = render.esc(t("current_model", lang, provider=llm.provider, model=model))
        return (f'<div class="model-status" data-seq="{next(self._seq)}">{result}<div class="muted small">{now}<br>'
                f'{render.esc(t("model_applies_all", lang))}</div></div>')

    def wire(self, lang: gr.State) -> None:
        self.apply.click(self.use_model, [self.provider, self.model, self.base_url, self.temperature, self.top_p,
                                          self.max_tokens, lang], [self.model_status], concurrency_limit=1,
                         show_progress="hidden")

    def use_model(self, provider: str, model: str, base_url: str, temperature: float, top_p: float,
                  max_tokens: float, lang: str) -> str:
        """Switch the app's chat model, building it now so a missing key or server shows here, not mid-answer."""
        previous = self._rag.settings.llm
        try:
            llm = previous.model_copy(update={
                "provider": provider, "model": model.strip() or None, "base_url": base_url.strip() or None,
                "temperature": float(temperature), "top_p": float(top_p), "max_tokens": int(max_tokens)})
            llm = type(previous).model_validate(llm.model_dump())  # model_copy does not validate
            self._rag.use_llm(llm)
            name = self._rag.chat().name
        except RagError as exc:
            self._rag.use_llm(previous)
            return self.current(lang, render.error(exc, lang))
        except Exception as exc:  # noqa: BLE001 - e.g. a pydantic ValidationError on a bad value
            logger.warning("switching the model failed: %s", exc)
            self._rag.use_llm(previous)
            return self.current(lang, render.error(exc, lang))
        done = t("model_switched", lang, provider=provider, model=name)
        return self.current(lang, f'<div class="ok">{render.esc(done)}</div>')
