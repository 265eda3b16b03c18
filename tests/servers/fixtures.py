"""Session-scoped test servers on free loopback ports, torn down at the end (registered in tests/conftest.py).

    llama_cpp_server  llama-cpp-python's own OpenAI-compatible server (a subprocess), model alias "smollm2"
    openai_server     tests.servers.openai_api: OpenAI + Azure OpenAI protocol, keys TEST_OPENAI_KEY / TEST_AZURE_KEY
    ollama_server     tests.servers.ollama_api: Ollama protocol, models "smollm2" (chat) and "all-minilm" (embed)
    make_proxy        function-scoped: make_proxy(upstream_url) -> a started FaultProxy with ``.url``

The in-thread servers share one SmolLM2 (llama.cpp, one thread) and the session's MiniLM ``embedder``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.models import LocalModels
from tests.servers.ollama_api import ollama_app
from tests.servers.openai_api import openai_app
from tests.servers.proxy import FaultProxy
from tests.servers.running import ServerProcess, ServerThread
from tests.servers.running import llama_cpp_server as start_llama_cpp_server

TEST_OPENAI_KEY = "sk-test-4f1c2a9b7d"
TEST_AZURE_KEY = "azure-test-8e3d0c51"
AZURE_DEPLOYMENT = "rag-chat"  # the deployment name the Azure test server knows, serving "smollm2"


@pytest.fixture(scope="session")
def server_models(embedder) -> LocalModels:
    import llama_cpp

    from rag.providers import bundled_gguf

    llama = llama_cpp.Llama(model_path=bundled_gguf.path(bundled_gguf.SMOLLM2), n_ctx=2048, n_threads=1, seed=0, verbose=False)
    return LocalModels(llama, embed=embedder.embed_documents)


@pytest.fixture(scope="session")
def ollama_server(server_models: LocalModels) -> Iterator[ServerThread]:
    with ServerThread(ollama_app(server_models)) as server:
        yield server


@pytest.fixture(scope="session")
def openai_server(server_models: LocalModels) -> Iterator[ServerThread]:
    app = openai_app(server_models, api_key=TEST_OPENAI_KEY, azure_key=TEST_AZURE_KEY,
                     deployments={AZURE_DEPLOYMENT: "smollm2"})
    with ServerThread(app) as server:
        yield server


@pytest.fixture(scope="session")
def llama_cpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    from rag.providers import bundled_gguf

    log = tmp_path_factory.mktemp("llama-cpp-server") / "server.log"
    with start_llama_cpp_server(bundled_gguf.path(bundled_gguf.SMOLLM2), log) as server:
        yield server


@pytest.fixture
def make_proxy() -> Iterator:
    started: list[ServerThread] = []

    def make(upstream: str, **options) -> FaultProxy:
        proxy = FaultProxy(upstream, **options)
        server = ServerThread(proxy.app).start()
        started.append(server)
        proxy.url = server.url
        return proxy

    yield make
    for server in started:
        server.stop()
