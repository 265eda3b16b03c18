"""Every user-facing string of the app, in English and Korean, and the choice of language.

``t(key, lang, **values)`` formats a string; ``detect(accept_language)`` picks the language from the browser's
Accept-Language header. Gradio's own built-in texts (e.g. "Drop File Here") follow the browser by themselves.
"""

from __future__ import annotations

LANGUAGES = {"en": "English", "ko": "한국어"}
DEFAULT = "en"

TEXT: dict[str, dict[str, str]] = {
    # page
    "title": {"en": "Chat with your PDFs", "ko": "PDF와 대화하기"},
    "subtitle": {"en": "Answers come only from your documents, with page citations. Nothing leaves this machine "
                       "unless you choose an online model.",
                 "ko": "답변은 내 문서에서만 찾아 쪽 번호와 함께 인용합니다. 온라인 모델을 고르지 않는 한 "
                       "아무것도 이 컴퓨터 밖으로 나가지 않습니다."},
    "language": {"en": "Language", "ko": "언어"},  # shown in both languages at once
    # library
    "library": {"en": "Documents", "ko": "문서"},
    "upload": {"en": "Add PDFs, Word, text or audio files (drag and drop, up to {mb} MB each)",
               "ko": "PDF·Word·텍스트·음성 파일 추가 (끌어다 놓기, 파일당 최대 {mb}MB)"},
    "library_empty": {"en": "No documents yet. Add PDFs above to start.",
                      "ko": "아직 문서가 없습니다. 위에서 PDF를 추가하세요."},
    "col_name": {"en": "Name", "ko": "이름"},
    "col_pages": {"en": "Pages", "ko": "쪽"},
    "col_chunks": {"en": "Chunks", "ko": "조각"},
    "col_added": {"en": "Added", "ko": "추가한 날"},
    "ocr_pages": {"en": "{n} pages read by OCR", "ko": "{n}쪽은 OCR로 읽음"},
    "library_summary": {"en": "{docs} documents · {pages} pages · {chunks} chunks",
                        "ko": "문서 {docs}개 · {pages}쪽 · 조각 {chunks}개"},
    "use_docs": {"en": "Documents the chat may use", "ko": "대화에 쓸 문서"},
    "use_docs_info": {"en": "All are used unless you untick some.", "ko": "선택을 해제하지 않으면 모두 사용합니다."},
    "delete_pick": {"en": "Delete a document", "ko": "문서 삭제"},
    "delete": {"en": "Delete", "ko": "삭제"},
    "delete_confirm": {"en": "Delete “{name}” and its {chunks} chunks? This cannot be undone.",
                       "ko": "“{name}” 문서와 조각 {chunks}개를 삭제할까요? 되돌릴 수 없습니다."},
    "delete_yes": {"en": "Yes, delete", "ko": "삭제"},
    "cancel": {"en": "Cancel", "ko": "취소"},
    "deleted": {"en": "Deleted “{name}”.", "ko": "“{name}” 문서를 삭제했습니다."},
    "delete_none": {"en": "Choose a document to delete first.", "ko": "먼저 삭제할 문서를 고르세요."},
    # ingest results
    "ingest_title": {"en": "Upload results", "ko": "업로드 결과"},
    "st_waiting": {"en": "waiting", "ko": "대기 중"},
    "st_parsing": {"en": "reading pages…", "ko": "쪽을 읽는 중…"},
    "st_embedding": {"en": "embedding {detail}…", "ko": "임베딩 중 ({detail})…"},
    "n_chunks": {"en": "{n} chunks", "ko": "조각 {n}개"},
    "doc_counts": {"en": "{pages} pages, {chunks} chunks", "ko": "{pages}쪽, 조각 {chunks}개"},
    "st_added": {"en": "added: {detail}", "ko": "추가됨: {detail}"},
    "st_updated": {"en": "updated: {detail}", "ko": "갱신됨: {detail}"},
    "st_skipped": {"en": "already in the library, unchanged", "ko": "이미 있는 문서(변경 없음)"},
    "st_failed": {"en": "failed: {detail}", "ko": "실패: {detail}"},
    "too_large": {"en": "the file is {size} MB; the limit is {limit} MB (app.max_upload_mb)",
                  "ko": "파일 크기가 {size}MB입니다. 한도는 {limit}MB입니다 (app.max_upload_mb)"},
    "unsupported": {"en": "not a PDF ({suffix}); supported: {supported}",
                    "ko": "PDF가 아닙니다 ({suffix}). 지원 형식: {supported}"},
    "same_name": {"en": "another file in this upload has the same name; rename one",
                  "ko": "이번 업로드에 같은 이름의 파일이 또 있습니다. 하나의 이름을 바꾸세요"},
    "progress": {"en": "{file}: {stage}", "ko": "{file}: {stage}"},
    # chat
    "chat": {"en": "Chat", "ko": "대화"},
    "chat_placeholder": {"en": "Ask a question about your documents. Answers cite their pages, e.g. [1].",
                         "ko": "문서에 대해 질문하세요. 답변은 [1]처럼 근거 쪽을 인용합니다."},
    "question": {"en": "Your question", "ko": "질문"},
    "question_placeholder": {"en": "e.g. What does the report say about…?  (Enter to send)",
                             "ko": "예: 보고서에서 …에 대해 뭐라고 하나요? (Enter로 보내기)"},
    "send": {"en": "Send", "ko": "보내기"},
    "stop": {"en": "Stop", "ko": "멈추기"},
    "new_chat": {"en": "New chat", "ko": "새 대화"},
    "searching": {"en": "Searching your documents…", "ko": "문서를 찾는 중…"},
    "writing": {"en": "Found {n} passages; writing the answer…", "ko": "관련 구절 {n}개를 찾았습니다. 답변을 쓰는 중…"},
    "checking": {"en": "Checking the answer against the passages…", "ko": "답변을 구절과 대조하는 중…"},
    "retrying": {"en": "The model did not answer ({error}); retrying ({attempt}/{max}) in {delay:.1f} s…",
                 "ko": "모델이 응답하지 않았습니다 ({error}). {delay:.1f}초 후 다시 시도합니다 ({attempt}/{max})…"},
    "stopped": {"en": "Stopped.", "ko": "멈췄습니다."},
    "no_documents": {"en": "There are no documents yet: add PDFs on the left, then ask again.",
                     "ko": "아직 문서가 없습니다. 왼쪽에서 PDF를 추가한 뒤 다시 질문하세요."},
    "no_selection": {"en": "No document is selected for the chat: tick at least one under “Documents the chat may use”.",
                     "ko": "대화에 쓸 문서가 선택되지 않았습니다. “대화에 쓸 문서”에서 하나 이상 고르세요."},
    "refusal_label": {"en": "Not found in your documents", "ko": "문서에서 찾지 못함"},
    "error_label": {"en": "Something went wrong", "ko": "문제가 생겼습니다"},
    "fix": {"en": "Fix", "ko": "해결 방법"},
    "unexpected": {"en": "Unexpected error: {error}. The details are in the server log.",
                   "ko": "예기치 않은 오류: {error}. 자세한 내용은 서버 로그에 있습니다."},
    "usage": {"en": "{prompt} prompt + {completion} completion tokens", "ko": "토큰: 프롬프트 {prompt} + 답변 {completion}"},
    "usage_estimated": {"en": "estimated", "ko": "추정치"},
    "cost": {"en": "≈ ${cost:.4f}", "ko": "약 ${cost:.4f}"},
    "model_used": {"en": "model: {model}", "ko": "모델: {model}"},
    "rewritten": {"en": "searched for: {question}", "ko": "검색한 질문: {question}"},
    # sources
    "sources": {"en": "Sources", "ko": "출처"},
    "sources_empty": {"en": "Sources of the answer appear here: file, page, the passage and a preview of the page.",
                      "ko": "답변의 출처가 여기에 표시됩니다: 파일, 쪽, 구절과 쪽 미리보기."},
    "sources_for": {"en": "Sources for: {question}", "ko": "출처 — 질문: {question}"},
    "sources_none": {"en": "No passage in the chosen documents was relevant enough to answer.",
                     "ko": "선택한 문서에서 답할 만큼 관련 있는 구절을 찾지 못했습니다."},
    "sources_pick": {"en": "Click an answer in the chat to see its sources.",
                     "ko": "대화에서 답변을 누르면 그 출처를 볼 수 있습니다."},
    "page": {"en": "page {page}", "ko": "{page}쪽"},
    "play_from": {"en": "{name} from {time}", "ko": "{name} {time}부터"},
    "searches": {"en": "Searches the model made ({n})", "ko": "모델이 한 검색 ({n})"},
    "all_documents": {"en": "all documents", "ko": "모든 문서"},
    "search_found_none": {"en": "nothing found", "ko": "찾은 것 없음"},
    "record_question": {"en": "Ask by voice", "ko": "음성으로 질문"},
    "transcribing": {"en": "Turning the recording into text…", "ko": "녹음을 글로 옮기는 중…"},
    "heard_nothing": {"en": "No speech was recognised in the recording.", "ko": "녹음에서 말소리를 알아듣지 못했습니다."},
    "score": {"en": "score {score:.2f}", "ko": "점수 {score:.2f}"},
    "ocr": {"en": "OCR", "ko": "OCR"},
    "cited": {"en": "cited", "ko": "인용됨"},
    "not_cited": {"en": "Also retrieved, not cited ({n})", "ko": "검색되었지만 인용되지 않은 구절 ({n})"},
    "open_page": {"en": "Open page {page} ↗", "ko": "{page}쪽 열기 ↗"},
    "open_image": {"en": "Open page image ↗", "ko": "쪽 이미지 열기 ↗"},
    "not_located": {"en": "The passage could not be marked on this page (e.g. a scanned page).",
                    "ko": "이 쪽에서 구절 위치를 표시하지 못했습니다 (예: 스캔한 쪽)."},
    "no_preview": {"en": "No preview: the file is no longer at {path}.", "ko": "미리보기 없음: 파일이 {path}에 없습니다."},
    "preview_alt": {"en": "Page {page} of {name}", "ko": "{name}의 {page}쪽"},
    # settings
    "settings": {"en": "Settings", "ko": "설정"},
    "provider": {"en": "Provider", "ko": "제공자"},
    "model": {"en": "Model", "ko": "모델"},
    "model_placeholder": {"en": "empty: the provider's default", "ko": "비우면 제공자 기본값"},
    "base_url": {"en": "Server URL (optional)", "ko": "서버 URL (선택)"},
    "apply_model": {"en": "Use this model", "ko": "이 모델 사용"},
    "model_applies_all": {"en": "The model is shared by everyone using this app.",
                          "ko": "모델은 이 앱을 쓰는 모든 사용자에게 함께 적용됩니다."},
    "current_model": {"en": "Current model: {provider} / {model}", "ko": "현재 모델: {provider} / {model}"},
    "model_default": {"en": "default", "ko": "기본값"},
    "model_switched": {"en": "Now using {provider} / {model}.", "ko": "이제 {provider} / {model} 모델을 사용합니다."},
    "temperature": {"en": "Temperature", "ko": "온도 (temperature)"},
    "temperature_info": {"en": "Lower is more literal.", "ko": "낮을수록 문서에 충실합니다."},
    "top_p": {"en": "Top-p", "ko": "Top-p"},
    "max_tokens": {"en": "Max answer tokens", "ko": "최대 답변 토큰"},
    "k": {"en": "Passages per question (k)", "ko": "질문당 구절 수 (k)"},
}


def t(key: str, lang: str, **values: object) -> str:
    entry = TEXT[key]
    text = entry.get(lang) or entry[DEFAULT]
    return text.format(**values) if values else text


def detect(accept_language: str | None, default: str = DEFAULT) -> str:
    """The first supported language in an Accept-Language header, honouring q-values ("ko-KR,ko;q=0.9,en;q=0.8")."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        base = tag.strip().lower().split("-")[0]
        if base in LANGUAGES and quality > 0:
            ranked.append((-quality, position, base))
    return min(ranked)[2] if ranked else default


class Labels:
    """The components whose texts follow the chosen language. Register each with the properties to translate
    (a TEXT key, or a function of the language); ``updates(lang)`` gives one Gradio update per component."""

    def __init__(self) -> None:
        self._items: list[tuple[object, dict[str, object]]] = []

    def add(self, component, **props: object):  # -> the component, for use inline
        self._items.append((component, props))
        return component

    @property
    def components(self) -> list[object]:
        return [component for component, _ in self._items]

    def updates(self, lang: str) -> list[object]:
        import gradio as gr

        out = []
        for _, props in self._items:
            values = {prop: (spec(lang) if callable(spec) else t(str(spec), lang)) for prop, spec in props.items()}
            out.append(gr.update(**values))
        return out
