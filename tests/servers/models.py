"""The real models behind the test servers: SmolLM2 (llama.cpp) for chat, an embedding function for vectors."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class ContextOverflow(Exception):
    def __init__(self, requested: int, n_ctx: int) -> None:
        super().__init__(f"requested {requested} tokens, the context window is {n_ctx}")
        self.requested, self.n_ctx = requested, n_ctx


@dataclass
class Generation:
    """One chat completion: the pieces as llama.cpp produced them, and the token counts."""

    pieces: list[str]
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"

    @property
    def text(self) -> str:
        return "".join(self.pieces)


@dataclass
class LocalModels:
    llama: Any  # llama_cpp.Llama
    embed: Callable[[list[str]], np.ndarray]
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def chat(self, messages: list[dict[str, Any]], *, temperature: float = 0.8, top_p: float = 0.95,
             max_tokens: int | None = None, stop: list[str] | None = None) -> Generation:
        """Generate a whole completion (the servers then stream its pieces). Raises ContextOverflow when the
        prompt does not fit. Generating before answering keeps the model's lock out of the HTTP streaming."""
        messages = [{"role": m.get("role", "user"), "content": _text(m.get("content"))} for m in messages]
        with self._lock:
            stream = self.llama.create_chat_completion(messages=messages, stream=True, temperature=temperature,
                                                       top_p=top_p, max_tokens=max_tokens, stop=stop or [], seed=0)
            prompt_tokens: int | None = None
            pieces: list[str] = []
            finish = "stop"
            try:
                for part in stream:
                    if prompt_tokens is None:  # the prompt has just been evaluated: the context holds exactly it
                        prompt_tokens = self.llama.n_tokens
                    choice = part["choices"][0]
                    finish = choice.get("finish_reason") or finish
                    if choice.get("delta", {}).get("content"):
                        pieces.append(choice["delta"]["content"])
            except ValueError as exc:
                match = re.search(r"Requested tokens \((\d+)\) exceed context window of (\d+)", str(exc))
                if match:
                    raise ContextOverflow(int(match.group(1)), int(match.group(2))) from exc
                raise
            prompt_tokens = prompt_tokens or 0
            # every generated token but the last is in the context; the last one counts only at the length limit
            completion = self.llama.n_tokens - prompt_tokens + (1 if finish == "length" else 0)
        return Generation(pieces, prompt_tokens, max(completion, 0), finish)


def _text(content: Any) -> str:
    if isinstance(content, list):  # OpenAI content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)
