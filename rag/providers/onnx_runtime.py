"""What the local ONNX embedders share: where exported graphs are cached, a single-threaded ONNX Runtime session
opened once, inputs cut into length-sorted batches run concurrently on worker threads, and the time spent in
forward passes.

Measured on 2 cores with 1,536 chunks of SEC filings (MiniLM): one input per pass on 2 concurrent
single-threaded sessions took half the time of batches of 32 on both cores (16.5 s against 33.0 s; likely no
padding and activations that stay in cache) and a third of the memory. Independent single-core runs also share
the cores well with other work, such as parsing the next files, where one run across all cores stalls at every
operator while something else holds a core.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.providers.registry import cache_root, require

T = TypeVar("T")


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rag-pdf-chat/onnx`` (default ``~/.cache/rag-pdf-chat/onnx``)."""
    return cache_root() / "onnx"


def open_session(graph: Path, optimization: str = "all") -> Any:
    """A single-threaded CPU session (parallelism comes from running several at once, see the module docstring)."""
    ort = require("onnxruntime", "onnxruntime", extra="local")
    options = ort.SessionOptions()
    options.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[optimization]
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


class OnnxEmbeddings(Embeddings):
    """Base of the ONNX embedders: ``_open`` (called once, under a lock) returns the session and sets up the
    tokenizer; ``_map`` runs a function over batches of inputs on ``threads`` workers; ``_forward`` runs the
    session, counting the wall time during which at least one batch is inside it (``forward_seconds``)."""

    def __init__(self, *, threads: int | None = None, batch_size: int = 1) -> None:
        self.threads = threads or os.cpu_count() or 1
        self.batch_size = batch_size
        self._session: Any = None
        self._lock = threading.Lock()
        self._busy = threading.Lock()
        self._running = 0
        self._busy_since = 0.0
        self._forward_total = 0.0

    def _open(self) -> Any:
        raise NotImplementedError

    def _loaded(self) -> Any:
        with self._lock:
            if self._session is None:
                self._session = self._open()
            return self._session

    @property
    def forward_seconds(self) -> float:
        """Wall seconds during which at least one batch was inside the model's forward pass."""
        with self._busy:
            return self._forward_total + (time.perf_counter() - self._busy_since if self._running else 0.0)

    def _forward(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        session = self._loaded()
        with self._busy:
            if self._running == 0:
                self._busy_since = time.perf_counter()
            self._running += 1
        try:
            return session.run(None, feed)[0]
        finally:
            with self._busy:
                self._running -= 1
                if self._running == 0:
                    self._forward_total += time.perf_counter() - self._busy_since

    def _map(self, inputs: Sequence[T], size: Callable[[T], int], batch: Callable[[list[T]], np.ndarray]) -> np.ndarray:
        """``batch`` over inputs sorted by ``size`` (similar lengths together: less padding), ``batch_size`` at a
        time on the worker threads; one output row per input, in input order."""
        order = np.argsort([-size(x) for x in inputs], kind="stable")
        groups = [order[start:start + self.batch_size] for start in range(0, len(inputs), self.batch_size)]
        work = [[inputs[i] for i in group] for group in groups]
        if len(groups) == 1 or self.threads == 1:
            results = [batch(w) for w in work]
        else:
            with ThreadPoolExecutor(max_workers=min(self.threads, len(groups)), thread_name_prefix="rag-embed") as pool:
                results = list(pool.map(batch, work))
        out = np.zeros((len(inputs), results[0].shape[1]), dtype=np.float32)
        for group, rows in zip(groups, results):
            out[group] = rows
        return out

    def _encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_documents(self, texts: list[str]) -> np.ndarray:  # type: ignore[override]
        return self._encode(texts)

    def embed_query(self, text: str) -> np.ndarray:  # type: ignore[override]
        return self._encode([text])[0]
