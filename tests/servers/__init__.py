"""Test servers on 127.0.0.1, standing in for services that cannot run here (OpenAI, Azure OpenAI, Ollama).

They speak the real wire protocols and are backed by the real small models (SmolLM2 through llama.cpp and
MiniLM embeddings), so the providers are exercised over real HTTP end to end. They are for tests only.
Fixtures that start them live in ``tests.servers.fixtures``.
"""
