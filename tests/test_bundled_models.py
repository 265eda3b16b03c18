"""Chat models shipped in PyPI wheels: the split Qwen GGUF is joined from its installed parts, checked against its
pinned sha256 before use, re-checked when the joined file changes, and refused (with the fix) when it does not match."""

from __future__ import annotations

import dataclasses
import os

import pytest

from rag.errors import ConfigError
from rag.providers import bundled_gguf
from rag.providers.llamacpp import DEFAULT_MODEL, resolve_model


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "rag-pdf-chat" / "models"


def test_the_default_is_the_split_qwen_model_and_its_file_is_joined_and_verified(cache):
    model = bundled_gguf.MODELS[DEFAULT_MODEL]
    assert model.split and len(model.distributions) == 6 and all("==" in d for d in model.distributions)
    name, path = resolve_model(None)
    assert name == bundled_gguf.QWEN_05B and path == str(cache / f"{name}.gguf")
    with open(path, "rb") as f:
        assert f.read(4) == b"GGUF"
    parts = bundled_gguf._parts_of(model)
    assert os.path.getsize(path) == sum(p.stat().st_size for p in parts)
    assert list(cache.glob("*.partial")) == []  # nothing left half-written


def test_a_changed_joined_file_is_hashed_again_and_rebuilt(cache):
    path = bundled_gguf.path(bundled_gguf.QWEN_05B)
    stamp = os.stat(path).st_mtime_ns
    with open(path, "r+b") as f:  # one flipped byte in the middle of the weights
        f.seek(100_000_000)
        byte = f.read(1)
        f.seek(100_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert not bundled_gguf._verified(cache / os.path.basename(path), bundled_gguf.MODELS[bundled_gguf.QWEN_05B].sha256)
    assert bundled_gguf.path(bundled_gguf.QWEN_05B) == path
    assert os.stat(path).st_mtime_ns != stamp
    assert bundled_gguf._verified(cache / os.path.basename(path), bundled_gguf.MODELS[bundled_gguf.QWEN_05B].sha256)


def test_parts_that_do_not_join_to_the_pinned_hash_are_refused_with_the_fix(cache, monkeypatch):
    wrong = dataclasses.replace(bundled_gguf.MODELS[bundled_gguf.QWEN_05B], sha256="0" * 64)
    monkeypatch.setitem(bundled_gguf.MODELS, wrong.name, wrong)
    with pytest.raises(ConfigError) as err:
        resolve_model(wrong.name)
    assert "expected " + "0" * 64 in err.value.message and "not loaded" in err.value.message
    assert "SmolLM2-135M-Instruct" in err.value.hint
    assert not (cache / f"{wrong.name}.gguf").exists() and list(cache.glob("*.partial")) == []


def test_the_small_fallback_and_gguf_paths_still_resolve(tmp_path):
    name, path = resolve_model(bundled_gguf.SMOLLM2)
    assert name == bundled_gguf.SMOLLM2 and path.endswith("SmolLM2-135M-Instruct.Q4_1.gguf") and os.path.isfile(path)
    own = tmp_path / "mine.gguf"
    own.write_bytes(b"GGUF")
    assert resolve_model(str(own)) == ("mine.gguf", str(own))
    with pytest.raises(ConfigError) as err:
        resolve_model("no-such-model")
    assert bundled_gguf.QWEN_05B in err.value.hint
