"""API keys come from the environment only; they are passed to SDKs and never stored or logged."""

from __future__ import annotations

import os

from pydantic import SecretStr

from rag.errors import AuthenticationError


def openai_key(base_url: str | None) -> SecretStr:
    key = os.environ.get("OPENAI_API_KEY", "")
    if key:
        return SecretStr(key)
    if base_url:  # an OpenAI-compatible server (vLLM, LM Studio, llama.cpp) usually takes any key
        return SecretStr("not-needed")
    raise AuthenticationError("no OpenAI API key found",
                              hint="set the OPENAI_API_KEY environment variable, or set llm.base_url for an "
                                   "OpenAI-compatible server, or use llm.provider: llamacpp to run offline")


def azure_key() -> SecretStr:
    key = os.environ.get("AZURE_OPENAI_API_KEY", "")
    if not key:
        raise AuthenticationError("no Azure OpenAI API key found", hint="set the AZURE_OPENAI_API_KEY environment variable")
    return SecretStr(key)
