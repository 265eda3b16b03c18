"""Chat providers (llamacpp, openai, azure, ollama) behind one registry, and ``ChatModel``: one path for all of
them that streams, counts tokens, prices them and retries with backoff."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage

from rag.config import LLMSettings
from rag.errors import ConfigError
from rag.providers.errors import broken_stream, translate
from rag.providers.registry import OLLAMA_URL, Registry, require
from rag.providers.retry import OnRetry, RetryPolicy
from rag.text import estimate_tokens
from rag.types import Usage

logger = logging.getLogger(__name__)
PARAMS = ("temperature", "top_p", "max_tokens")  # what a request may change; the rest comes from config


def _same_names(params: dict[str, Any]) -> dict[str, Any]:
    return dict(params)


@dataclass(frozen=True)
class ChatBackend:
    """What a factory builds: the LangChain model, the name to show and price, how per-request parameters
    become fields of the model, (where the API has it) how to list the models the server offers, and whether the
    API lets the model call tools (``bind_tools``)."""

    model: BaseChatModel
    name: str
    base_url: str | None = None
    fields: Callable[[dict[str, Any]], dict[str, Any]] = _same_names
    list_models: Callable[[], list[str]] | None = field(default=None, repr=False)
    tools: bool = False


@dataclass(frozen=True)
class ToolTurn:
    """The end of one turn of a model with tools (``ChatModel.stream_tools``): its message and its cost."""

    message: AIMessage
    usage: Usage


ChatFactory = Callable[[LLMSettings], ChatBackend]
CHAT: Registry[ChatFactory] = Registry("chat")


@CHAT.register("llamacpp")
def _llamacpp(s: LLMSettings) -> ChatBackend:
    from rag.providers.llamacpp import ChatLlamaCpp, resolve_model

    name, path = resolve_model(s.model)
    model = ChatLlamaCpp(model_path=path, model_name=name, n_ctx=s.context_window, n_threads=s.threads,
                         temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
                         max_waiting=s.max_waiting, busy_timeout=s.busy_timeout)
    return ChatBackend(model, name)


@CHAT.register("openai")
def _openai(s: LLMSettings) -> ChatBackend:
    from rag.providers.keys import openai_key

    module = require("langchain_openai", "langchain-openai")
    name = s.model or "gpt-4o-mini"
    common = dict(model=name, base_url=s.base_url, api_key=openai_key(s.base_url), temperature=s.temperature,
                  top_p=s.top_p, timeout=s.timeout, max_retries=0, stream_usage=True)
    if s.base_url:
        # langchain-openai sends `max_tokens` as `max_completion_tokens`, which many OpenAI-compatible servers
        # (llama.cpp's, LM Studio, older vLLM) silently ignore: send the classic field to them instead.
        model = module.ChatOpenAI(**common, extra_body={"max_tokens": s.max_tokens})

        def fields(params: dict[str, Any]) -> dict[str, Any]:
            update = {k: v for k, v in params.items() if k != "max_tokens"}
            if "max_tokens" in params:
                update["extra_body"] = {**(model.extra_body or {}), "max_tokens": params["max_tokens"]}
            return update
    else:
        model = module.ChatOpenAI(**common, max_tokens=s.max_tokens)
        fields = _same_names

    def list_models() -> list[str]:
        return [m.id for m in model.root_client.models.list()]

    return ChatBackend(model, name, s.base_url, fields, list_models, tools=True)


@CHAT.register("azure")
def _azure(s: LLMSettings) -> ChatBackend:
    from rag.providers.keys import azure_key

    module = require("langchain_openai", "langchain-openai")
    endpoint = s.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
    deployment = s.deployment or s.model
    if not endpoint or not deployment:
        raise ConfigError("Azure OpenAI needs an endpoint and a deployment",
                          hint="set llm.base_url (https://NAME.openai.azure.com) or AZURE_OPENAI_ENDPOINT, "
                               "and llm.deployment")
    model = module.AzureChatOpenAI(azure_endpoint=endpoint, azure_deployment=deployment,
                                   api_version=s.api_version or "2024-10-21", api_key=azure_key(),
                                   temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
                                   timeout=s.timeout, max_retries=0, stream_usage=True)
    # Priced by the model behind the deployment when llm.model names it, else by the deployment's name.
    return ChatBackend(model, s.model or deployment, endpoint, tools=True)


@CHAT.register("ollama")
def _ollama(s: LLMSettings) -> ChatBackend:
    module = require("langchain_ollama", "langchain-ollama")
    name = s.model or "llama3.2"
    base_url = s.base_url or OLLAMA_URL
    model = module.ChatOllama(model=name, base_url=base_url, temperature=s.temperature, top_p=s.top_p,
                              num_predict=s.max_tokens, num_ctx=s.context_window,
                              client_kwargs={"timeout": s.timeout})

    def fields(params: dict[str, Any]) -> dict[str, Any]:
        return {"num_predict" if k == "max_tokens" else k: v for k, v in params.items()}

    def list_models() -> list[str]:
        client = require("ollama", "ollama").Client(host=base_url, timeout=s.timeout)
        return [m.model for m in client.list().models if m.model]

    return ChatBackend(model, name, base_url, fields, list_models, tools=True)


def price_for(model: str, prices: dict[str, tuple[float, float]] | None) -> tuple[float, float] | None:
    """The price of ``model``: an exact entry, else the longest entry it starts with (dated snapshots such as
    gpt-4o-mini-2024-07-18 cost what gpt-4o-mini costs)."""
    prices = prices or {}
    if model in prices:
        return prices[model]
    prefixes = [p for p in prices if model.startswith(p)]
    return prices[max(prefixes, key=len)] if prefixes else None


class ChatModel:
    """A chat model from the registry with streaming, usage and cost, retries and translated errors."""

    def __init__(self, provider: str, backend: ChatBackend, *, retry: RetryPolicy,
                 prices: dict[str, tuple[float, float]] | None = None) -> None:
        self.provider = provider
        self.name = backend.name
        self.base_url = backend.base_url
        self._backend = backend
        self._retry = retry
        self._price = price_for(backend.name, prices)

    def _configured(self, params: dict[str, Any] | None) -> BaseChatModel:
        wanted = {k: v for k, v in (params or {}).items() if v is not None and k in PARAMS}
        return self._backend.model.model_copy(update=self._backend.fields(wanted)) if wanted else self._backend.model

    def stream(self, messages: list[BaseMessage], *, params: dict[str, Any] | None = None,
               on_retry: OnRetry | None = None) -> Iterator[str | Usage]:
        """Yield text pieces as they arrive, then one ``Usage``. Failures before the first piece are retried
        (nothing has reached the user yet); a failure mid-answer is translated and raised."""
        model = self._configured(params)

        def start() -> tuple[Any, Iterator[Any]]:
            iterator = iter(model.stream(messages))
            try:
                return next(iterator, None), iterator
            except Exception as exc:
                if not broken_stream(exc):
                    raise
            # Some servers (llama.cpp's) drop a stream without a word when the request fails, e.g. on a prompt
            # longer than the context: the same request without streaming gets the answer, or the real error.
            logger.info("the stream from %s broke before any text; asking again without streaming", self.name)
            try:
                return model.invoke(messages), iter(())
            except Exception as exc:  # the connection the server dropped may still have been in the pool
                if not broken_stream(exc):
                    raise
            return model.invoke(messages), iter(())

        first, rest = self._retry.call(start, on_retry=on_retry)
        usage_meta: dict[str, int] = {}
        parts: list[str] = []
        chunk = first
        try:
            while chunk is not None:
                meta = getattr(chunk, "usage_metadata", None)
                if meta:
                    for key in ("input_tokens", "output_tokens"):
                        usage_meta[key] = usage_meta.get(key, 0) + int(meta.get(key) or 0)
                text = chunk.content if isinstance(chunk.content, str) else ""
                if text:
                    parts.append(text)
                    yield text
                chunk = next(rest, None)
        except Exception as exc:
            raise self._retry.translate(exc).error from exc
        finally:
            close = getattr(rest, "close", None)
            if close is not None:  # a consumer that stops early (the UI's stop button) frees the model at once
                close()
        yield self._usage(messages, usage_meta, "".join(parts))

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

    @property
    def supports_tools(self) -> bool:
        """The provider's API lets the model call tools (openai, azure, ollama; not the bundled llama.cpp)."""
        return self._backend.tools

    def stream_tools(self, messages: list[BaseMessage], tools: list[dict[str, Any]], *,
                     params: dict[str, Any] | None = None, on_retry: OnRetry | None = None) -> Iterator[str | ToolTurn]:
        """One turn of a model that may call ``tools`` (OpenAI function schemas): its text pieces as they arrive,
        then one ``ToolTurn`` (the whole message, with its ``tool_calls``, and what it cost). Failures before the
        first piece are retried, later ones translated, as in ``stream``."""
        model = self._configured(params).bind_tools(tools)

        def start() -> tuple[Any, Iterator[Any]]:
            iterator = iter(model.stream(messages))
            return next(iterator, None), iterator

        first, rest = self._retry.call(start, on_retry=on_retry)
        whole, chunk = None, first
        try:
            while chunk is not None:
                whole = chunk if whole is None else whole + chunk
                if isinstance(chunk.content, str) and chunk.content:
                    yield chunk.content
                chunk = next(rest, None)
        except Exception as exc:
            raise self._retry.translate(exc).error from exc
        finally:
            close = getattr(rest, "close", None)
            if close is not None:
                close()
        text = whole.content if whole is not None and isinstance(whole.content, str) else ""
        message = AIMessage(content=text, tool_calls=list(getattr(whole, "tool_calls", None) or []))
        meta = {k: int((getattr(whole, "usage_metadata", None) or {}).get(k) or 0)
                for k in ("input_tokens", "output_tokens")}
        yield ToolTurn(message, self._usage(messages, meta, text))

    def list_models(self) -> list[str] | None:
        """Models the server offers (None when the provider cannot list them). Errors are translated."""
        if self._backend.list_models is None:
            return None
        return self._retry.call(self._backend.list_models)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        if self._price is None:
            return None
        return (prompt_tokens * self._price[0] + completion_tokens * self._price[1]) / 1_000_000

    def _usage(self, messages: list[BaseMessage], meta: dict[str, int], text: str) -> Usage:
        if meta.get("input_tokens") or meta.get("output_tokens"):
            prompt, completion, estimated = meta.get("input_tokens", 0), meta.get("output_tokens", 0), False
        else:  # some OpenAI-compatible servers send no usage when streaming: estimate, and say so
            prompt = sum(estimate_tokens(str(m.content)) for m in messages)
            completion, estimated = estimate_tokens(text) if text else 0, True
        return Usage(prompt, completion, self.cost(prompt, completion), estimated)


def build_chat_model(settings: LLMSettings, *, sleep: Callable[[float], None] = time.sleep) -> ChatModel:
    """The configured chat model. ``sleep`` waits between retries (tests pass one that records)."""

    backend = CHAT.get(settings.provider)(settings)
    retry = RetryPolicy(max_retries=settings.max_retries, sleep=sleep,
                        translate=lambda exc: translate(exc, provider=settings.provider, model=backend.name,
                                                        base_url=backend.base_url))
    return ChatModel(settings.provider, backend, retry=retry, prices=settings.prices)
