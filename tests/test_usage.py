"""Token counts and cost: llama.cpp's streamed usage is exact, and prices come from llm.prices."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from rag.providers.chat import price_for

MESSAGES = [SystemMessage("You are a storyteller."), HumanMessage("Write a long story about a dragon.")]


@pytest.mark.slow
def test_llamacpp_streamed_usage_matches_llama_cpp_counts(chat):
    """The in-process provider streams; its counts equal what llama.cpp reports for the same request unstreamed."""
    import llama_cpp

    from rag.providers.llamacpp import resolve_model

    text, usage = chat.invoke(MESSAGES, params={"max_tokens": 8, "temperature": 0.0})
    same_model = llama_cpp.Llama(model_path=resolve_model(None)[1], n_ctx=512, n_threads=1, seed=0, verbose=False)
    reference = same_model.create_chat_completion(
        messages=[{"role": "system", "content": MESSAGES[0].content}, {"role": "user", "content": MESSAGES[1].content}],
        max_tokens=8, temperature=0.0)
    assert text.strip() and reference["choices"][0]["finish_reason"] == "length"
    assert not usage.estimated
    assert usage.prompt_tokens == reference["usage"]["prompt_tokens"]
    assert usage.completion_tokens == reference["usage"]["completion_tokens"] == 8


def test_prices_match_exact_names_then_the_longest_prefix():
    prices = {"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6), "smollm2": (1.0, 2.0)}
    assert price_for("gpt-4o-mini", prices) == (0.15, 0.6)
    assert price_for("gpt-4o-mini-2024-07-18", prices) == (0.15, 0.6)
    assert price_for("gpt-4o-2024-08-06", prices) == (2.5, 10.0)
    assert price_for("llama3.2", prices) is None
    assert price_for("gpt-4o", {}) is None
