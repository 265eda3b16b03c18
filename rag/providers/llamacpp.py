"""In-process chat with llama.cpp (llama-cpp-python): the offline default, a LangChain chat model like the others."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from rag.errors import ConfigError
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

    _llama: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "llamacpp"

    def _model(self) -> Any:
        if self._llama is None:
            llama_cpp = require("llama_cpp", "llama-cpp-python", extra="local")
            self._llama = llama_cpp.Llama(model_path=self.model_path, n_ctx=self.n_ctx,
                                          n_threads=self.n_threads or os.cpu_count(), seed=self.seed, verbose=False)
        return self._llama

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
        with self._lock:
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
        with self._lock:
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
