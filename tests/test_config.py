from pathlib import Path

import pytest

from rag.config import DEFAULT_CONFIG, load_config
from rag.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_project_config_loads_with_offline_defaults():
    settings = load_config(environ={})
    assert settings.llm.provider == "llamacpp"
    assert settings.embeddings.provider == "local"
    assert settings.store.path == DEFAULT_CONFIG.parent / "data" / "store"
    assert settings.app.host == "127.0.0.1"


def test_misspelt_key_fails_with_its_name(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "llm:\n  temperatur: 0.5\n"), environ={})
    assert "llm.temperatur" in str(err.value)
    assert "unknown key" in str(err.value)


def test_unknown_section_fails(tmp_path):
    with pytest.raises(ConfigError, match="retrival"):
        load_config(write(tmp_path, "retrival:\n  k: 3\n"), environ={})


def test_invalid_value_names_key_and_reason(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "llm:\n  provider: gpt5\n"), environ={})
    assert "llm.provider" in str(err.value)


def test_overlap_must_be_below_chunk_size(tmp_path):
    with pytest.raises(ConfigError, match="ingest.chunk_overlap"):
        load_config(write(tmp_path, "ingest:\n  chunk_size: 300\n  chunk_overlap: 300\n"), environ={})


def test_environment_overrides_with_types(tmp_path):
    settings = load_config(write(tmp_path, "llm:\n  temperature: 0.1\n"), environ={
        "RAG_LLM__PROVIDER": "openai", "RAG_LLM__TEMPERATURE": "0.7", "RAG_RETRIEVAL__K": "9",
        "RAG_STORE__PATH": "/tmp/elsewhere", "RAG_LLM__CACHE": "true", "UNRELATED": "x"})
    assert settings.llm.provider == "openai"
    assert settings.llm.temperature == pytest.approx(0.7)
    assert settings.retrieval.k == 9
    assert settings.store.path == Path("/tmp/elsewhere")
    assert settings.llm.cache is True


def test_misspelt_environment_key_fails(tmp_path):
    with pytest.raises(ConfigError, match="llm.providr"):
        load_config(write(tmp_path, ""), environ={"RAG_LLM__PROVIDR": "openai"})
    with pytest.raises(ConfigError, match="unknown section 'lmm'"):
        load_config(write(tmp_path, ""), environ={"RAG_LMM__PROVIDER": "openai"})


def test_relative_store_path_is_relative_to_the_config_file(tmp_path):
    settings = load_config(write(tmp_path, "store:\n  path: mystore\n"), environ={})
    assert settings.store.path == tmp_path / "mystore"


def test_missing_and_broken_files_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", environ={})
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "llm: [unclosed\n"), environ={})


def test_upload_dir_defaults_beside_the_store_and_is_relative_to_the_config_file(tmp_path):
    assert load_config(environ={}).app.upload_dir == DEFAULT_CONFIG.parent / "data" / "uploads"
    settings = load_config(write(tmp_path, "app:\n  upload_dir: incoming\n"), environ={})
    assert settings.app.upload_dir == tmp_path / "incoming"
