"""Answer a question from retrieved passages: condense, retrieve, refuse or prompt, stream, check citations."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from rag import prompts
from rag.cache import AnswerCache
from rag.config import LLMSettings, RetrievalSettings
from rag.grounding import Grounder, cited_numbers
from rag.providers.chat import ChatModel
from rag.providers.retry import OnRetry
from rag.retrieval import Retriever
from rag.text import estimate_tokens, language
from rag.types import Answer, Hit, Source, Usage

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Retrieved:
    """Passages chosen for the prompt (empty when the answer is a refusal without a model call)."""

    sources: list[Source]
    question: str


@dataclass(frozen=True, slots=True)
class Token:
    text: str


@dataclass(frozen=True, slots=True)
class Done:
    answer: Answer


Event = Retrieved | Token | Done
Turn = dict[str, str]  # {"role": "user" | "assistant", "content": ...}


class Answerer:
    def __init__(self, retriever: Retriever, chat: Callable[[], ChatModel], retrieval: RetrievalSettings,
                 llm: LLMSettings, cache: AnswerCache | None = None) -> None:
        self._retriever = retriever
        self._chat = chat
        self._retrieval = retrieval
        self._llm = llm
        self._cache = cache

    def ask(self, question: str, **kwargs: Any) -> Answer:
        for event in self.stream(question, **kwargs):
            if isinstance(event, Done):
                return event.answer
        raise RuntimeError("the answer stream ended without an answer")  # pragma: no cover - stream always ends with Done

    def stream(self, question: str, *, history: Sequence[Turn] = (), k: int | None = None,
               sources: Iterable[str] | None = None, params: dict[str, Any] | None = None,
               on_retry: OnRetry | None = None) -> Iterator[Event]:
        usage = Usage()
        standalone = question.strip()
        if history:
            standalone, usage = self.condense(question, history, on_retry=on_retry)
        hits = self._retriever.search(standalone, k=k, sources=sources)
        lang = language(question)
        if not hits or self._retriever.relevance(standalone, hits) < self._retrieval.min_score:
            yield Retrieved([], standalone)
            unmentioned, nowhere = self._retriever.unmentioned_names(standalone, hits)
            text = prompts.refusal(lang, unmentioned, nowhere=nowhere)
            yield Done(Answer(text, [], refused=True, usage=usage, question=standalone))
            return

        numbered = [Source(n, hit) for n, hit in enumerate(self._fit(hits, standalone, params), start=1)]
        yield Retrieved(numbered, standalone)
        messages: list[BaseMessage] = [SystemMessage(prompts.SYSTEM),
                                       HumanMessage(prompts.user_message(standalone, numbered))]
        chat = self._chat()
        key = cached = None
        if self._cache is not None:
            key = self._cache.key(messages, provider=chat.provider, model=chat.name, base_url=chat.base_url,
                                  params=self._sampling(params))
            cached = self._cache.get(key)
        parts: list[str] = []
        if cached is not None:  # answered before: no model call, no cost
            parts.append(cached.text)
            yield Token(cached.text)
        else:
            answer_usage = Usage()
            for item in chat.stream(messages, params=params, on_retry=on_retry):
                if isinstance(item, Usage):
                    answer_usage = item
                else:
                    parts.append(item)
                    yield Token(item)
            usage = usage + answer_usage
            if key is not None and "".join(parts).strip():
                self._cache.put(key, "".join(parts), model=chat.name, prompt_tokens=answer_usage.prompt_tokens,
                                completion_tokens=answer_usage.completion_tokens)
        raw = "".join(parts).strip()
        grounder = Grounder(standalone, numbered, similarity=self._retriever.similarities)
        text = grounder.check(raw, strict=self.strict)
        refused = not cited_numbers(text) and (not raw or prompts.is_model_refusal(raw))
        if refused:
            text = prompts.refusal(lang)
        elif not text:  # nothing the model said is backed by the passages: quote them instead of guessing
            text = grounder.quote(lang) or prompts.refusal(lang)
            refused = not cited_numbers(text)
        yield Done(Answer(text, numbered, refused=refused, usage=usage, question=standalone,
                          cached=cached is not None))

    def _sampling(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """The sampling parameters a request really runs with: config, overridden by the request."""
        values: dict[str, Any] = {"temperature": self._llm.temperature, "top_p": self._llm.top_p,
                                  "max_tokens": self._llm.max_tokens}
        values.update({k: v for k, v in (params or {}).items() if k in values and v is not None})
        return values

    @property
    def strict(self) -> bool:
        """Strict grounding keeps only sentences a passage supports (see rag.grounding)."""
        mode = self._llm.grounding
        return mode == "strict" or (mode == "auto" and self._llm.provider == "llamacpp")

    def condense(self, question: str, history: Sequence[Turn], on_retry: OnRetry | None = None) -> tuple[str, Usage]:
        """Rewrite a follow-up ("what about 2022?") into a standalone question, using the recent history."""
        recent = [t for t in history if t.get("role") in ("user", "assistant") and t.get("content")][-6:]
        if not recent or not needs_context(question):
            return question.strip(), Usage()  # a self-contained question: no rewrite, no topic carried over
        messages: list[BaseMessage] = [SystemMessage(prompts.CONDENSE)]
        for turn in recent:
            content = str(turn["content"])[:1500]
            messages.append(HumanMessage(content) if turn["role"] == "user" else AIMessage(content))
        messages.append(HumanMessage(f"Last user question: {question}\nStandalone question:"))
        text, usage = self._chat().invoke(messages, params={"temperature": 0.0, "max_tokens": 96}, on_retry=on_retry)
        rewritten = text.strip().strip('"').splitlines()[0].strip() if text.strip() else ""
        last_user = next((str(t["content"]) for t in reversed(recent) if t["role"] == "user"), "")
        if not _usable_rewrite(rewritten, question, " ".join(str(t["content"]) for t in recent)):
            rewritten = f"{last_user} {question}".strip()  # a tiny model may answer instead of rewriting
        return rewritten, usage

    def _fit(self, hits: list[Hit], question: str, params: dict[str, Any] | None) -> list[Hit]:
        """Keep the best passages that fit the model's context window, trimming the last one if needed."""
        max_tokens = (params or {}).get("max_tokens") or self._llm.max_tokens
        budget = self._llm.context_window - max_tokens - estimate_tokens(prompts.SYSTEM + question) - 64
        kept: list[Hit] = []
        for hit in hits:
            cost = estimate_tokens(hit.text) + 16
            if cost <= budget:
                kept.append(hit)
                budget -= cost
            else:
                if budget > 100:
                    share = budget / cost
                    kept.append(_trimmed(hit, int(len(hit.text) * share)))
                break
        return kept or [_trimmed(hits[0], 400)]


_REFERS_BACK_EN = re.compile(r"\b(it|its|they|them|their|this|that|these|those|he|she|him|his|her|there|then|same|"
                             r"also|too|else|former|latter|above|previous)\b|^\s*(and|but|or|so|what about|how about)\b",
                             re.I)
_REFERS_BACK_KO = re.compile(r"그것|이것|저것|그거|이거|그건|이건|그럼|그러면|그리고|거기|그때|그곳|해당|위의|앞의|"
                             r"그\s|이\s|저\s|또|그래서|그중|그 중")


def needs_context(question: str) -> bool:
    """Does a follow-up lean on the conversation ("when was it built?", "what about 2022?", "그럼 2022년은?")?
    Short questions with few content words do too."""
    from rag.lexical import tokenize

    pattern = _REFERS_BACK_KO if language(question) == "ko" else _REFERS_BACK_EN
    return bool(pattern.search(question)) or len(set(tokenize(question))) <= 2


def _usable_rewrite(rewritten: str, question: str, history: str) -> bool:
    """A rewrite is usable when it is a question in the same language that brings in something from the
    conversation (otherwise it resolved nothing, or the model answered instead of rewriting)."""
    from rag.lexical import tokenize

    if not rewritten or len(rewritten) > 4 * len(question) + 200 or language(rewritten) != language(question):
        return False
    if not (rewritten.rstrip().endswith(("?", "？")) or re.search(r"(까|요|나요|가요)\s*[?.]?$", rewritten)):
        return False
    new_terms = set(tokenize(rewritten)) - set(tokenize(question))
    return bool(new_terms & set(tokenize(history)))


def _trimmed(hit: Hit, chars: int) -> Hit:
    from dataclasses import replace

    return replace(hit, text=hit.text[:max(chars, 1)].rstrip() + "…")
