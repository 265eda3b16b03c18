"""The `azure` chat provider against the Azure-protocol routes of the OpenAI test server: the request's shape
(deployment in the path, api-version in the query, the key in an api-key header) and the errors."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage

from rag.config import LLMSettings
from rag.errors import AuthenticationError, ConfigError, ModelNotFoundError
from rag.providers import build_chat_model
from tests.servers.fixtures import AZURE_DEPLOYMENT, TEST_AZURE_KEY

pytestmark = pytest.mark.slow

HI = [HumanMessage("Say hello to Mira.")]


def azure_llm(endpoint: str, **overrides) -> LLMSettings:
    values = {"provider": "azure", "base_url": endpoint, "deployment": AZURE_DEPLOYMENT, "model": "gpt-4o-mini",
              "api_version": "2024-10-21", "temperature": 0.0, "max_tokens": 8, "max_retries": 0, "timeout": 60,
              "prices": {"gpt-4o-mini": (0.15, 0.60)}}
    return LLMSettings(**{**values, **overrides})


@pytest.fixture
def azure_key(monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", TEST_AZURE_KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)


def test_request_shape_and_usage(openai_server, azure_key):
    chat = build_chat_model(azure_llm(openai_server.url))
    before = len(openai_server.app.state.requests)
    text, usage = chat.invoke(HI)
    [request] = openai_server.app.state.requests[before:]
    assert request["method"] == "POST"
    assert request["path"] == f"/openai/deployments/{AZURE_DEPLOYMENT}/chat/completions"
    assert request["query"] == {"api-version": "2024-10-21"}
    assert request["headers"]["api-key"] == TEST_AZURE_KEY
    assert "authorization" not in request["headers"]
    assert request["json"]["stream"] is True and request["json"]["stream_options"] == {"include_usage": True}
    assert text.strip()
    reported = openai_server.app.state.last_usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (reported["prompt_tokens"], reported["completion_tokens"])
    # priced by llm.model (the model behind the deployment)
    assert usage.cost_usd == pytest.approx((usage.prompt_tokens * 0.15 + usage.completion_tokens * 0.60) / 1e6)


def test_endpoint_from_the_environment(openai_server, azure_key, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", openai_server.url)
    chat = build_chat_model(azure_llm(None, api_version="2025-01-01-preview"))
    chat.invoke(HI, params={"max_tokens": 2})
    assert openai_server.app.state.requests[-1]["query"] == {"api-version": "2025-01-01-preview"}


def test_unknown_deployment(openai_server, azure_key):
    chat = build_chat_model(azure_llm(openai_server.url, deployment="gpt4-prod", model=None))
    with pytest.raises(ModelNotFoundError) as err:
        chat.invoke(HI)
    assert "deployment 'gpt4-prod' was not found" in err.value.message
    assert "llm.deployment" in err.value.hint


def test_rejected_key_is_not_retried(openai_server, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "not-the-key")
    chat = build_chat_model(azure_llm(openai_server.url, max_retries=3))
    before = len(openai_server.app.state.requests)
    with pytest.raises(AuthenticationError) as err:
        chat.invoke(HI)
    assert err.value.hint == "set AZURE_OPENAI_API_KEY to a valid key"
    assert len(openai_server.app.state.requests) - before == 1


def test_missing_key_and_endpoint(monkeypatch):
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    with pytest.raises(AuthenticationError, match="AZURE_OPENAI_API_KEY"):
        build_chat_model(azure_llm("https://example.openai.azure.com"))
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "x")
    with pytest.raises(ConfigError) as err:
        build_chat_model(azure_llm(None))
    assert "endpoint" in err.value.message and "llm.base_url" in err.value.hint
    with pytest.raises(ConfigError, match="deployment"):
        build_chat_model(azure_llm("https://example.openai.azure.com", deployment=None, model=None))
