"""Provider registries: chat models and embeddings. Nothing outside this package imports a vendor SDK."""

from rag.providers.chat import CHAT, ChatModel, build_chat_model
from rag.providers.embeddings import EMBEDDINGS, Embedder, build_embedder

__all__ = ["CHAT", "EMBEDDINGS", "ChatModel", "Embedder", "build_chat_model", "build_embedder"]
