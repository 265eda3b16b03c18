"""The Gradio UI. It only calls the library's facade (``rag.Rag``) and renders the values of ``rag.types``.

    app.py        the page: layout, language, launch options (bind address, login, upload limit, served folders)
    library.py    uploads with progress and per-file results, the document list, choosing and deleting documents
    chat.py       streamed answers, follow-ups, Stop / New chat, the sources panel of each answer
    settings.py   provider and model (shared), temperature / top_p / max_tokens / k (per browser session)
    sources.py    an answer's sources -> what the panel shows, with page previews (Rag.preview)
    render.py     all HTML, escaped; i18n.py all strings (English, Korean)
    worker.py     library calls in a thread, their callbacks and streamed events handed to the page in order
"""
