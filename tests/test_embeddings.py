"""The local embedding model: ONNX Runtime must give PyTorch's vectors, and neither touches the network."""

import numpy as np

from rag.config import EmbeddingSettings
from rag.providers import build_embedder
from rag.providers.local_onnx import OnnxEmbeddings, cache_dir

TEXTS = ["The Quillon-7 reactor at Vessmark produces 418 megawatts.", "누리별 항공의 2023년 탑승객 수는 740만 명이다.",
         "short", "A much longer passage. " * 60]


def test_onnx_vectors_match_pytorch(embedder):
    assert isinstance(embedder._backend, OnnxEmbeddings)  # the default backend
    torch_embedder = build_embedder(EmbeddingSettings(backend="torch"))
    onnx_vectors = embedder.embed_documents(TEXTS)
    torch_vectors = torch_embedder.embed_documents(TEXTS)
    assert onnx_vectors.shape == torch_vectors.shape == (len(TEXTS), 384)
    cosine = (onnx_vectors * torch_vectors).sum(axis=1)
    assert cosine.min() > 0.99999
    assert np.allclose(np.linalg.norm(onnx_vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.model == torch_embedder.model == "all-MiniLM-L6-v2"  # one store works with both


def test_exported_graph_is_cached(embedder):
    embedder.embed_query("warm up")
    assert list(cache_dir().glob("*.onnx"))


def test_batches_keep_input_order(embedder):
    together = embedder.embed_documents(TEXTS)
    alone = np.stack([embedder.embed_query(t) for t in TEXTS])
    assert ((together * alone).sum(axis=1) > 0.9999).all()


def test_worker_threads_and_batch_sizes_give_the_same_vectors():
    from rag.providers.embeddings import local_model_path

    _, path = local_model_path(None)
    texts = TEXTS * 5
    one = OnnxEmbeddings(path, threads=1, batch_size=1)
    several = OnnxEmbeddings(path, threads=2, batch_size=3)
    a, b = one.embed_documents(texts), several.embed_documents(texts)
    assert a.shape == b.shape == (len(texts), 384)
    assert ((a * b).sum(axis=1) > 0.99999).all()  # padding in a batch changes nothing; order is kept
    assert several.forward_seconds > 0 and one.forward_seconds > 0
