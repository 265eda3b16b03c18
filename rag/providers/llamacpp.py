"""In-process chat with llama.cpp (llama-cpp-python): the offline default, a LangChain chat model like the others."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from rag.errors import BusyError, ConfigError
from rag.providers import bundled_gguf
from rag.providers.registry import require

DEFAULT_MODEL = bundled_gguf.QWEN_05B
_ROLES = {"human": "user", "ai": "assistant", "system": "system"}


def resolve_model(model: str | None) -> tuple[str, str]:
    """(display name, GGUF path) for ``llm.model``: empty means the default bundled model; a bundled model's
    name (``rag.providers.bundled_gguf.MODELS``), or the path of a .gguf file."""
    name = model or DEFAULT_MODEL
    if name in bundled_gguf.MODELS:
        return name, bundled_gguf.path(name)
    if os.path.isfile(name):
        return os.path.basename(name), name
    raise ConfigError(f"llama.cpp model '{model}' is neither a bundled model nor a file",
                      hint="set llm.model to the path of a .gguf file or to a bundled model ("
                           + ", ".join(bundled_gguf.MODELS) + "), or leave it empty for the default")


class Gate:
    """One request at a time on the model, at most ``max_waiting`` waiting for it, each at most ``timeout``
    seconds: past either bound the request gets ``BusyError`` instead of an unbounded wait. It also keeps the
    loaded model. Shared by the copies ``ChatModel`` makes for per-request parameters (pydantic copies private
    attributes shallowly), so a copy neither loads a model of its own nor runs beside the original."""

    def __init__(self) -> None:
        self.llama: Any = None
        self._model = threading.Lock()
        self._count = threading.Lock()
        self.waiting = 0

    @contextlib.contextmanager
    def hold(self, max_waiting: int, timeout: float) -> Iterator[None]:
        if not self._model.acquire(blocking=False):
            with self._count:
                if self.waiting >= max_waiting:
                    raise _busy(f"{self.waiting} other questions are already waiting", timeout)
                self.waiting += 1
            started = time.monotonic()
            try:
                got = self._model.acquire(timeout=timeout)
            finally:
                with self._count:
                    self.waiting -= 1
            if not got:
                raise _busy(f"this question waited {time.monotonic() - started:.0f} s for it", timeout)
        try:
            yield
        finally:
            self._model.release()


def _busy(why: str, timeout: float) -> BusyError:
    return BusyError(f"the model is busy answering other questions ({why}); try again in a moment",
                     hint="the local model answers one question at a time: ask again shortly, or raise "
                          "llm.max_waiting / llm.busy_timeout to let more questions wait longer",
                     retry_after=max(1, min(30, round(timeout / 6))))


class ChatLlamaCpp(BaseChatModel):
    model_path: str
    model_name: str = DEFAULT_MODEL
    n_ctx: int = 4096
    n_threads: int | None = None
    temperature: float = 0.1
    top_p: float = 0.9
    max_tokens: int = 384
    repeat_penalty: float = 1.15  # small models loop without it
    seed: int = 0
    max_waiting: int = 4  # requests that may wait while one runs; more get BusyError at once
    busy_timeout: float = 60.0  # seconds a request waits for the model before BusyError

    _gate: Gate = PrivateAttr(default_factory=Gate)

    @property
    def waiting(self) -> int:
        """Requests waiting for the model now (not counting the one it is answering)."""
        return self._gate.waiting

    @property
    def _llm_type(self) -> str:
        return "llamacpp"

    def _model(self) -> Any:
        if self._gate.llama is None:
            llama_cpp = require("llama_cpp", "llama-cpp-python", extra="local")
            self._gate.llama = llama_cpp.Llama(model_path=self.model_path, n_ctx=self.n_ctx,
                                               n_threads=self.n_threads or os.cpu_count(), seed=self.seed, verbose=False)
        return self._gate.llama

    def _params(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {
            "temperature": kwargs.get("temperature", self.temperature),
            "top_p": kwargs.get("top_p", self.top_p),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "stop": stop or [],
            "repeat_penalty": self.repeat_penalty,
        }

    @staticmethod
    def _messages(messages: list[BaseMessage]) -> list[dict[str, str]]:
        return [{"role": _ROLES.get(m.type, "user"), "content": str(m.content)} for m in messages]

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        with self._gate.hold(self.max_waiting, self.busy_timeout):
            result = self._model().create_chat_completion(messages=self._messages(messages), **self._params(stop, kwargs))
        usage = result.get("usage") or {}
        message = AIMessage(
            content=result["choices"][0]["message"]["content"] or "",
            usage_metadata=UsageMetadata(input_tokens=usage.get("prompt_tokens", 0),
                                         output_tokens=usage.get("completion_tokens", 0),
                                         total_tokens=usage.get("total_tokens", 0)),
            response_metadata={"model_name": self.model_name, "finish_reason": result["choices"][0].get("finish_reason")},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        with self._gate.hold(self.max_waiting, self.busy_timeout):
            llama = self._model()
            prompt_tokens: int | None = None
            finish_reason = None
            for part in llama.create_chat_completion(messages=self._messages(messages), stream=True,
                                                     **self._params(stop, kwargs)):
                if prompt_tokens is None:  # the prompt has just been evaluated: the context holds exactly it
                    prompt_tokens = llama.n_tokens
                choice = part["choices"][0]
                finish_reason = choice.get("finish_reason") or finish_reason
                text = choice.get("delta", {}).get("content") or ""
                if not text:
                    continue
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                if run_manager:
                    run_manager.on_llm_new_token(text, chunk=chunk)
                yield chunk
            prompt_tokens = prompt_tokens or 0
            # Every generated token but the last is evaluated into the context; at a stop (end of turn or stop
            # string) the last sampled token is not part of the answer, at the length limit it is.
            completion_tokens = max(llama.n_tokens - prompt_tokens + (1 if finish_reason == "length" else 0), 0)
        yield ChatGenerationChunk(message=AIMessageChunk(
            content="",
            usage_metadata=UsageMetadata(input_tokens=prompt_tokens, output_tokens=completion_tokens,
                                         total_tokens=prompt_tokens + completion_tokens),
            response_metadata={"model_name": self.model_name, "finish_reason": finish_reason},
        ))
