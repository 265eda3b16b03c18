"""Chat providers (llamacpp, openai, azure, ollama) behind one registry, and ``ChatModel``: one path for all of
them that streams, counts tokens, prices them and retries with backoff."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from rag.config import LLMSettings
from rag.errors import ConfigError
from rag.providers.registry import Registry, require
from rag.providers.retry import OnRetry, RetryPolicy
from rag.types import Usage


@dataclass(frozen=True)
class ChatBackend:
    """What a factory builds: the LangChain model, the name to show and price, and how it spells parameters."""

    model: BaseChatModel
    name: str
    base_url: str | None = None
    fields: dict[str, str] = field(default_factory=lambda: {"temperature": "temperature", "top_p": "top_p",
                                                            "max_tokens": "max_tokens"})


ChatFactory = Callable[[LLMSettings], ChatBackend]
CHAT: Registry[ChatFactory] = Registry("chat")


@CHAT.register("llamacpp")
def _llamacpp(s: LLMSettings) -> ChatBackend:
    from rag.providers.llamacpp import ChatLlamaCpp, resolve_model

    name, path = resolve_model(s.model)
    model = ChatLlamaCpp(model_path=path, model_name=name, n_ctx=s.context_window, n_threads=s.threads,
                         temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens)
    return ChatBackend(model, name)


@CHAT.register("openai")
def _openai(s: LLMSettings) -> ChatBackend:
    from rag.providers.keys import openai_key

    module = require("langchain_openai", "langchain-openai")
    name = s.model or "gpt-4o-mini"
    model = module.ChatOpenAI(model=name, base_url=s.base_url, api_key=openai_key(s.base_url),
                              temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
                              timeout=s.timeout, max_retries=0, stream_usage=True)
    return ChatBackend(model, name, s.base_url)


@CHAT.register("azure")
def _azure(s: LLMSettings) -> ChatBackend:
    from rag.providers.keys import azure_key

    module = require("langchain_openai", "langchain-openai")
    endpoint = s.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
    deployment = s.deployment or s.model
    if not endpoint or not deployment:
        raise ConfigError("Azure OpenAI needs an endpoint and a deployment",
                          hint="set llm.base_url (https://NAME.openai.azure.com) and llm.deployment")
    model = module.AzureChatOpenAI(azure_endpoint=endpoint, azure_deployment=deployment,
                                   api_version=s.api_version or "2024-10-21", api_key=azure_key(),
                                   temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
                                   timeout=s.timeout, max_retries=0, stream_usage=True)
    return ChatBackend(model, s.model or deployment, endpoint)


@CHAT.register("ollama")
def _ollama(s: LLMSettings) -> ChatBackend:
    module = require("langchain_ollama", "langchain-ollama")
    name = s.model or "llama3.2"
    base_url = s.base_url or "http://127.0.0.1:11434"
    model = module.ChatOllama(model=name, base_url=base_url, temperature=s.temperature, top_p=s.top_p,
                              num_predict=s.max_tokens, num_ctx=s.context_window,
                              client_kwargs={"timeout": s.timeout})
    return ChatBackend(model, name, base_url, {"temperature": "temperature", "top_p": "top_p",
                                               "max_tokens": "num_predict"})


class ChatModel:
    """A chat model from the registry with streaming, usage and cost, retries and translated errors."""

    def __init__(self, provider: str, backend: ChatBackend, *, retry: RetryPolicy,
                 prices: dict[str, tuple[float, float]] | None = None) -> None:
        self.provider = provider
        self.name = backend.name
        self.base_url = backend.base_url
        self._backend = backend
        self._retry = retry
        self._price = (prices or {}).get(backend.name)

    def _configured(self, params: dict[str, Any] | None) -> BaseChatModel:
        update = {self._backend.fields[k]: v for k, v in (params or {}).items()
                  if v is not None and k in self._backend.fields}
        return self._backend.model.model_copy(update=update) if update else self._backend.model

    def stream(self, messages: list[BaseMessage], *, params: dict[str, Any] | None = None,
               on_retry: OnRetry | None = None) -> Iterator[str | Usage]:
        """Yield text pieces as they arrive, then one ``Usage``. Failures before the first piece are retried."""
        model = self._configured(params)

        def start() -> tuple[Any, Iterator[Any]]:
            iterator = iter(model.stream(messages))
            return next(iterator, None), iterator

        first, rest = self._retry.call(start, on_retry=on_retry)
        usage_meta: dict[str, int] = {}
        pieces = 0
        chunk = first
        try:
            while chunk is not None:
                meta = getattr(chunk, "usage_metadata", None)
                if meta:
                    for key in ("input_tokens", "output_tokens"):
                        usage_meta[key] = usage_meta.get(key, 0) + int(meta.get(key) or 0)
                text = chunk.content if isinstance(chunk.content, str) else ""
                if text:
                    pieces += 1
                    yield text
                chunk = next(rest, None)
        except Exception as exc:
            raise self._retry.translate(exc).error from exc
        yield self._usage(messages, usage_meta, pieces)

    def invoke(self, messages: list[BaseMessage], *, params: dict[str, Any] | None = None,
               on_retry: OnRetry | None = None) -> tuple[str, Usage]:
        parts: list[str] = []
        usage = Usage()
        for item in self.stream(messages, params=params, on_retry=on_retry):
            if isinstance(item, Usage):
                usage = item
            else:
                parts.append(item)
        return "".join(parts), usage

    def _usage(self, messages: list[BaseMessage], meta: dict[str, int], pieces: int) -> Usage:
        if meta.get("input_tokens") or meta.get("output_tokens"):
            prompt, completion, estimated = meta.get("input_tokens", 0), meta.get("output_tokens", 0), False
        else:  # some OpenAI-compatible servers send no usage when streaming: estimate, and say so
            prompt = sum(len(str(m.content)) for m in messages) // 4
            completion, estimated = pieces, True
        cost = None
        if self._price is not None:
            cost = (prompt * self._price[0] + completion * self._price[1]) / 1_000_000
        return Usage(prompt, completion, cost, estimated)


def build_chat_model(settings: LLMSettings) -> ChatModel:
    from rag.providers.errors import translate

    backend = CHAT.get(settings.provider)(settings)
    retry = RetryPolicy(max_retries=settings.max_retries,
                        translate=lambda exc: translate(exc, provider=settings.provider, model=backend.name,
                                                        base_url=backend.base_url))
    return ChatModel(settings.provider, backend, retry=retry, prices=settings.prices)
