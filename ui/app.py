"""The page: documents on the left, the chat in the middle, sources on the right; English or Korean.

``build(rag)`` makes the Blocks; ``launch_options(rag.settings)`` says how to serve it safely (bind address,
optional login, upload limit, the only folders whose files the browser may open); ``asgi_app`` mounts the page
at "/" on the HTTP API's FastAPI app (rag/http: /api, /v1, /docs); ``serve`` runs that with uvicorn.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI

from rag import ConfigError, Rag, Settings
from rag.http import api_token, create_app
from ui import render
from ui.chat import ChatPanel, Conversation
from ui.i18n import DEFAULT, LANGUAGES, Labels, detect, t
from ui.library import LibraryPanel
from ui.settings import SettingsPanel
from ui.sources import SourceViews

STATIC = Path(__file__).resolve().parent / "static"
SAMPLES = Path(__file__).resolve().parent.parent / "data"  # the project's sample PDFs (make run ingests them)
USER_ENV, PASSWORD_ENV = "RAG_APP_USER", "RAG_APP_PASSWORD"


def served_folders(settings: Settings) -> list[Path]:
    """Folders whose files the browser may open: the uploads (with their previews) and the sample data."""
    return [settings.app.upload_dir, SAMPLES]


def build(rag: Rag) -> gr.Blocks:
    settings = rag.settings
    views = SourceViews(rag, served_folders(settings), blocked=[settings.store.path])
    labels = Labels()
    fixed = settings.app.language if settings.app.language != "auto" else None

    with gr.Blocks(title="PDF chat", analytics_enabled=False, fill_width=True) as demo:
        lang = gr.State(fixed or DEFAULT)
        with gr.Row(elem_id="header", equal_height=True):
            labels.add(gr.HTML(_header(DEFAULT), padding=False, elem_id="title"), value=_header)
            switch = gr.Radio(choices=[(name, code) for code, name in LANGUAGES.items()], value=DEFAULT,
                              label=" · ".join(t("language", code) for code in LANGUAGES), scale=0, min_width=270,
                              elem_id="language")
        with gr.Row(elem_id="main"):
            with gr.Column(scale=3, min_width=300, elem_id="left"):
                library = LibraryPanel(rag, labels)
                settings_panel = SettingsPanel(rag, labels)
            with gr.Column(scale=5, min_width=380, elem_id="center"):
                chat = ChatPanel(rag, views, labels)
            with gr.Column(scale=4, min_width=320, elem_id="right"):
                chat.panel()

        library.wire(lang)
        settings_panel.wire(lang)
        chat.wire(lang, library.selected, library.known, settings_panel.params)

        def on_load(request: gr.Request) -> list[Any]:
            code = fixed or detect(request.headers.get("accept-language") if request else None)
            return [code, gr.update(value=code), *labels.updates(code), *library.refreshed(code),
                    render.sources_panel([], "", "", code), settings_panel.current(code)]

        demo.load(on_load, None, [lang, switch, *labels.components, *library.outputs(), chat.sources,
                                  settings_panel.model_status])

        def on_switch(code: str, rows: list[render.FileRow], conv: Conversation) -> list[Any]:
            code = code if code in LANGUAGES else DEFAULT
            return [code, *labels.updates(code), render.ingest_results(rows, code),
                    render.library(rag.documents(), code), chat.sources_html(conv, code),
                    settings_panel.current(code)]

        switch.input(on_switch, [switch, library.rows, chat.conversation],
                     [lang, *labels.components, library.results, library.table, chat.sources, settings_panel.model_status])
    return demo


def _header(lang: str) -> str:
    return (f'<div class="title"><h1>{render.esc(t("title", lang))}</h1>'
            f'<p class="muted">{render.esc(t("subtitle", lang))}</p></div>')


def credentials(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """Login from RAG_APP_USER and RAG_APP_PASSWORD; None when neither is set."""
    environ = os.environ if environ is None else environ
    user, password = environ.get(USER_ENV, ""), environ.get(PASSWORD_ENV, "")
    if not user and not password:
        return None
    if not user or not password:
        raise ConfigError(f"login needs both {USER_ENV} and {PASSWORD_ENV}",
                          hint="set both environment variables, or neither to run without a login")
    return user, password


def launch_options(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "server_name": settings.app.host,
        "server_port": settings.app.port,
        "auth": credentials(environ),
        "auth_message": "PDF chat",
        "max_file_size": f"{settings.app.max_upload_mb}mb",
        "allowed_paths": [str(p) for p in served_folders(settings)],
        "blocked_paths": [str(settings.store.path)],
        "css_paths": [STATIC / "app.css"],
        "footer_links": [],
        "ssr_mode": False,
        "show_error": False,
        "quiet": True,
    }


def asgi_app(rag: Rag, options: dict[str, Any], environ: Mapping[str, str] | None = None) -> FastAPI:
    """The HTTP API (token from RAG_API_TOKEN in ``environ``) with the page mounted at "/", served as
    ``launch_options`` say; the page's login, when set, guards the API too. Raises ConfigError before anything
    is served when the bind address reaches beyond this machine and no token is set."""
    api = create_app(rag, token=api_token(environ), host=options["server_name"], login=options["auth"])
    demo = build(rag)
    demo.queue(default_concurrency_limit=1)
    mounted = {key: value for key, value in options.items() if key in MOUNT_OPTIONS}
    return gr.mount_gradio_app(api, demo, path="/", run_history=False, **mounted)


# launch_options that gr.mount_gradio_app takes too (``quiet`` is launch's own: uvicorn logs warnings only)
MOUNT_OPTIONS = ("server_name", "server_port", "auth", "auth_message", "max_file_size", "allowed_paths",
                 "blocked_paths", "css_paths", "footer_links", "ssr_mode", "show_error")


def serve(rag: Rag, *, port: int | None = None, **overrides: Any) -> None:
    import uvicorn

    options = launch_options(rag.settings)
    if port:
        options["server_port"] = port
    options.update(overrides)
    app = asgi_app(rag, options)
    host, port = options["server_name"], options["server_port"]
    print(f"PDF chat on http://{host}:{port}" + (" (login required)" if options["auth"] else "")
          + f"; HTTP API on http://{host}:{port}/api and /v1 (docs: /docs)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
