"""The request bodies, as pydantic classes (they make the /docs page). Responses are the ``to_json()`` shapes of
``rag.types``, the same JSON the CLI prints with ``--json``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Mode = Literal["vector", "bm25", "hybrid"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Turn(_Strict):
    role: Literal["user", "assistant"]
    content: str


class SearchRequest(_Strict):
    query: str = Field(min_length=1, description="what to look for", examples=["Quillon-7 reactor output"])
    k: int | None = Field(None, ge=1, le=100, description="number of passages (default: retrieval.k)")
    sources: list[str] | None = Field(None, description="search only these documents (names as listed)")
    mode: Mode | None = Field(None, description="retrieval mode (default: retrieval.mode)")


class AskRequest(_Strict):
    question: str = Field(min_length=1, examples=["How many megawatts does the Quillon-7 reactor produce?"])
    history: list[Turn] = Field(default_factory=list, description="earlier turns, oldest first, for follow-ups")
    k: int | None = Field(None, ge=1, le=100, description="number of passages (default: retrieval.k)")
    sources: list[str] | None = Field(None, description="answer only from these documents (names as listed)")
    stream: bool = Field(False, description="server-sent events: retrieved, token..., done (or error)")
    max_tokens: int | None = Field(None, ge=1, description="longest answer in tokens (default: llm.max_tokens)")
    temperature: float | None = Field(None, ge=0, le=2, description="default: llm.temperature")

    def params(self) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens, "temperature": self.temperature}


# -- OpenAI-compatible chat ----------------------------------------------------------------------------------

class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, ...: accepted and ignored
    role: str = Field(description="system, developer, user or assistant; system turns are not used")
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat request. The last user message is the question, the user and assistant turns before it the
    conversation. Fields this server has no use for (n, seed, tools, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str = Field("rag", description="any id: there is one model (GET /v1/models)")
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)

    def params(self) -> dict[str, Any]:
        """Sampling parameters for ``Rag.stream`` (None keeps config's value)."""
        return {"temperature": self.temperature, "top_p": self.top_p,
                "max_tokens": self.max_completion_tokens or self.max_tokens}
