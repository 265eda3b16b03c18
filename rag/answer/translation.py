"""Cross-lingual questions: a Korean question about English documents (or the other way round) is also
searched in the documents' language, translated by the chat model.

The multilingual embeddings find the right document across languages but rarely the page: a filing's
statements are tables of English labels that a small model does not tie to "영업현금흐름비율", and keyword
search cannot match across scripts at all. Searched in English as well, the question's words meet the page's.
The translation's ranking is fused with the question's own (a poor translation, which a small model may give,
then costs less), and the refusal check still reads the question as asked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from rag.answer import prompts
from rag.errors import ProviderError
from rag.providers.chat import ChatModel
from rag.providers.retry import OnRetry
from rag.search.retrieval import Retriever
from rag.text import language
from rag.types import Hit, Usage

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Found:
    """What a search found, and what translating the question cost (nothing when it was not needed)."""

    hits: list[Hit]
    usage: Usage = field(default_factory=Usage)


def translate(chat: ChatModel, question: str, into: str, on_retry: OnRetry | None = None) -> tuple[str | None, Usage]:
    """``question`` in language ``into`` ("en", "ko"), or None when the model's reply is not a usable
    translation (empty, another language, an answer instead of a question, far longer than the question); only
    the reply's first line is read."""
    messages: list[BaseMessage] = [SystemMessage(prompts.TRANSLATE.format(language=prompts.LANGUAGE_NAMES[into]))]
    for korean, english in prompts.TRANSLATE_EXAMPLES:
        asked, answered = (korean, english) if into == "en" else (english, korean)
        messages += [HumanMessage(asked), AIMessage(answered)]
    messages.append(HumanMessage(question))
    limit = max(64, len(question) * 2)
    text, usage = chat.invoke(messages, params={"temperature": 0.0, "max_tokens": limit}, on_retry=on_retry)
    lines = [line.strip() for line in text.strip().strip('"').splitlines() if line.strip()]
    translated = lines[0] if lines else ""
    usable = (bool(translated) and language(translated) == into and len(translated) <= 4 * len(question) + 100
              and ("?" not in question or "?" in translated))  # a question that came back a statement was answered
    return (translated if usable else None), usage


def search(retriever: Retriever, chat: Callable[[], ChatModel], question: str, *, k: int | None = None,
           sources: Iterable[str] | None = None, mode: str | None = None, on_retry: OnRetry | None = None) -> Found:
    """The passages for ``question``; with ``retrieval.translate``, when one of the first ``retrieval.k`` is in
    another language than the question and relevant on its own (``Retriever.relevance`` at least
    ``retrieval.min_score``), searched again with the question translated into that language as well. One of
    them, not the best: in a library of Korean and English documents, a Korean question about an English
    report ranks the Korean documents first (its words match theirs), and the report's page comes fourth.
    Relevant on its own: a question about nothing in the documents is still refused without a model call."""
    sources = None if sources is None else list(sources)
    hits = retriever.search(question, k=k, sources=sources, mode=mode)
    if not retriever.settings.translate:
        return Found(hits)
    asked = language(question)
    shown = hits[: retriever.settings.k]  # the passages an answer is given, also when more are asked for (eval)
    other = next((lang for h in shown if (lang := language(h.text)) != asked
                  and retriever.relevance(question, [h]) >= retriever.settings.min_score), None)
    if other is None:
        return Found(hits)
    try:
        translated, usage = translate(chat(), question, other, on_retry=on_retry)
    except ProviderError as exc:  # the translation only adds to the search: without it, the search stands
        logger.warning("the question was not translated (%s): searched as asked", exc.message)
        return Found(hits)
    if translated is None:
        return Found(hits, usage=usage)
    return Found(retriever.search(question, k=k, sources=sources, mode=mode, translation=translated), usage)
