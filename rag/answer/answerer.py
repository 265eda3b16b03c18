"""Answer a question from retrieved passages, in steps:

    standalone question (follow-ups rewritten: rag.answer.followups)
    -> passages (rag.search.retrieval)
    -> refuse before any model call when the passages do not match the question (``refusal``)
    -> numbered passages that fit the context window -> prompt -> the model's text, streamed (or cached)
    -> claims with checked citations (rag.answer.grounding); a refusal when the model says it does not know or
       nothing it said is supported and nothing can be quoted (``checked``)

With ``llm.tools`` and a model whose API can call tools, the model searches instead (``_with_tools``): it calls
``search_documents``/``list_documents`` (rag.answer.tools) up to ``llm.max_tool_calls`` times, every passage
returned is numbered, and its answer is checked the same way; at the limit it answers from the standard prompt
over all those passages. A model that never searches, or whose server refuses tools, gets the flow above.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage, ToolMessage

from rag.answer import prompts, tools, translation
from rag.answer.cache import AnswerCache
from rag.answer.followups import Turn, condense
from rag.answer.grounding import Grounder
from rag.answer.tools import SCHEMAS, ToolSession
from rag.config import LLMSettings, RetrievalSettings
from rag.errors import ProviderError
from rag.providers.chat import ChatModel, ToolTurn
from rag.providers.retry import OnRetry
from rag.search.retrieval import Retriever
from rag.text import estimate_tokens, language
from rag.types import Answer, DocumentInfo, Done, Event, Hit, Retrieved, Source, Token, Usage

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Reply:
    """The model's raw text for one prompt, what it cost, and whether it came from the answer cache."""

    text: str
    usage: Usage
    cached: bool


class Answerer:
    def __init__(self, retriever: Retriever, chat: Callable[[], ChatModel], retrieval: RetrievalSettings,
                 llm: LLMSettings, cache: AnswerCache | None = None,
                 documents: Callable[[], list[DocumentInfo]] | None = None) -> None:
        """``documents``: the documents in the store, for the model's list_documents tool (``llm.tools``)."""
        self._retriever = retriever
        self._documents = documents or (lambda: [])
        self._chat = chat
        self._retrieval = retrieval
        self._llm = llm
        self.cache = cache

    def ask(self, question: str, **kwargs: Any) -> Answer:
        for event in self.stream(question, **kwargs):
            if isinstance(event, Done):
                return event.answer
        raise RuntimeError("the answer stream ended without an answer")  # pragma: no cover - stream always ends with Done

    def stream(self, question: str, *, history: Sequence[Turn] = (), k: int | None = None,
               sources: Iterable[str] | None = None, params: dict[str, Any] | None = None,
               on_retry: OnRetry | None = None) -> Iterator[Event]:
        standalone, usage = question.strip(), Usage()
        if history:
            standalone, usage = condense(self._chat(), question, history, on_retry=on_retry)
        lang = language(question)
        if self._llm.tools and self._chat().supports_tools:
            answered = yield from self._with_tools(standalone, lang, usage, k, sources, params, on_retry)
            if answered:
                return
        found = translation.search(self._retriever, self._chat, standalone, k=k, sources=sources, on_retry=on_retry)
        hits, usage = found.hits, usage + found.usage
        refusal = self.refusal(standalone, hits, lang)
        if refusal is not None:
            yield Retrieved([], standalone)
            yield Done(replace(refusal, usage=usage, question=standalone))
            return
        numbered = [Source(n, hit) for n, hit in enumerate(self._fit(hits, standalone, params), start=1)]
        yield Retrieved(numbered, standalone)
        reply = yield from self._generate(prompts.messages(standalone, numbered), params, on_retry)
        answer = self.checked(reply.text, standalone, numbered, lang)
        yield Done(replace(answer, usage=usage + reply.usage, question=standalone, cached=reply.cached))

    def _with_tools(self, question: str, lang: str, usage: Usage, k: int | None, sources: Iterable[str] | None,
                    params: dict[str, Any] | None, on_retry: OnRetry | None) -> Iterator[Event]:
        """The model searches with its tools, then answers; returns False (nothing yielded) when the single-search
        flow should answer instead: the server refuses tools, or the model answered without searching."""
        chat = self._chat()
        max_tokens = (params or {}).get("max_tokens") or self._llm.max_tokens
        budget = self._llm.context_window - max_tokens - estimate_tokens(prompts.SYSTEM + question) - 256
        session = ToolSession(self._retriever, self._documents, k=k or self._retrieval.k,
                              allowed=None if sources is None else list(sources), budget=budget)
        messages: list[BaseMessage] = [SystemMessage(tools.SYSTEM), HumanMessage(question)]
        calls, text = 0, None
        while calls < self._llm.max_tool_calls:
            turn = None
            try:
                for item in chat.stream_tools(messages, SCHEMAS, params=params, on_retry=on_retry):
                    if isinstance(item, ToolTurn):
                        turn = item
                    elif session.searches:  # the answer, streamed (text before any search: the fallback's)
                        yield Token(item)
            except ProviderError as exc:
                if calls or "tool" not in exc.message.lower():
                    raise
                logger.info("%s refused tools (%s); answering with a single search", chat.name, exc.message)
                return False
            assert turn is not None
            message, usage = turn.message, usage + turn.usage
            if not message.tool_calls:
                text = message.content if isinstance(message.content, str) else ""
                break
            messages.append(message)
            for call in message.tool_calls:  # every call is answered (the API requires it), within the limit
                if calls < self._llm.max_tool_calls:
                    calls += 1
                    result = session.run(call["name"], call.get("args"))
                    yield Retrieved(list(session.numbered), question)
                else:
                    result = "The search limit is reached: answer with the passages you have."
                messages.append(ToolMessage(result, tool_call_id=call.get("id") or call["name"]))
        if not any(s.tool == tools.SEARCH for s in session.searches):
            return False  # it never searched: an answer must rest on passages, so search for it
        numbered = session.numbered
        searches = tuple(session.searches)
        if not numbered:
            yield Retrieved([], question)
            refusal = self.refusal(question, [], lang)
            yield Done(replace(refusal, usage=usage, question=question, searches=searches))
            return True
        yield Retrieved(numbered, question)
        if text is None:  # the limit was reached: answer from all the passages found, with the standard prompt
            reply = yield from self._generate(prompts.messages(question, numbered), params, on_retry)
            text, usage, cached = reply.text, usage + reply.usage, reply.cached
        else:
            cached = False
        answer = self.checked(text, question, numbered, lang)
        yield Done(replace(answer, usage=usage, question=question, cached=cached, searches=searches))
        return True

    # -- the steps ---------------------------------------------------------------------------------------

    def refusal(self, question: str, hits: Sequence[Hit], lang: str) -> Answer | None:
        """The refusal to give without calling the model, or None to go on. Refused: nothing found, or the
        best passages match the question too weakly (``Retriever.relevance`` below ``retrieval.min_score``,
        which is zero when the question names something none of them mentions)."""
        if hits and self._retriever.relevance(question, hits) >= self._retrieval.min_score:
            return None
        unmentioned, nowhere = self._retriever.unmentioned_names(question, hits)
        return Answer.of_text(prompts.refusal(lang, unmentioned, nowhere=nowhere), refused=True)

    def checked(self, raw: str, question: str, numbered: list[Source], lang: str) -> Answer:
        """The model's ``raw`` text as a grounded answer: citations repaired (in strict mode, unsupported
        sentences dropped). Refused when the model said it does not know, or when nothing it said is supported
        and no passage sentence can be quoted instead."""
        raw = raw.strip()
        grounder = Grounder(question, numbered, similarity=self._retriever.similarities)
        claims = grounder.check(raw, strict=self.strict)
        cites = any(c.citations for c in claims)
        if not cites and (not raw or prompts.is_model_refusal(raw)):
            return Answer.of_text(prompts.refusal(lang), numbered, refused=True)
        if not claims:  # nothing the model said is backed by the passages: quote them instead of guessing
            claims = grounder.quote(lang)
            if not claims:
                return Answer.of_text(prompts.refusal(lang), numbered, refused=True)
        return Answer(claims, numbered, refused=False)

    def _generate(self, messages: list[BaseMessage], params: dict[str, Any] | None,
                  on_retry: OnRetry | None) -> Iterator[Event]:
        """Stream the model's reply as Tokens (or the cached reply as one); returns the whole ``_Reply``."""
        chat = self._chat()
        key = None
        if self.cache is not None:
            key = self.cache.key(messages, provider=chat.provider, model=chat.name, base_url=chat.base_url,
                                  params=self._sampling(params))
            cached = self.cache.get(key)
            if cached is not None:  # answered before: no model call, no cost
                yield Token(cached.text)
                return _Reply(cached.text, Usage(), cached=True)
        parts: list[str] = []
        usage = Usage()
        for item in chat.stream(messages, params=params, on_retry=on_retry):
            if isinstance(item, Usage):
                usage = item
            else:
                parts.append(item)
                yield Token(item)
        text = "".join(parts)
        if key is not None and self.cache is not None and text.strip():
            self.cache.put(key, text, model=chat.name, prompt_tokens=usage.prompt_tokens,
                            completion_tokens=usage.completion_tokens)
        return _Reply(text, usage, cached=False)

    def _sampling(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """The sampling parameters a request really runs with: config, overridden by the request."""
        values: dict[str, Any] = {"temperature": self._llm.temperature, "top_p": self._llm.top_p,
                                  "max_tokens": self._llm.max_tokens}
        values.update({k: v for k, v in (params or {}).items() if k in values and v is not None})
        return values

    @property
    def strict(self) -> bool:
        """Strict grounding keeps only sentences a passage supports (see rag.answer.grounding)."""
        mode = self._llm.grounding
        return mode == "strict" or (mode == "auto" and self._llm.provider == "llamacpp")

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


def _trimmed(hit: Hit, chars: int) -> Hit:
    return replace(hit, text=hit.text[:max(chars, 1)].rstrip() + "…")
