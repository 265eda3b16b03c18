"""`python -m rag doctor` on a working setup (the loopback test servers) and on broken ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rag import Rag
from rag.cli import main
from rag.doctor import FAIL, OK, SKIP, check_disk
from tests.servers.fixtures import TEST_OPENAI_KEY
from tests.servers.running import free_port

pytestmark = pytest.mark.slow


def write_config(folder: Path, **sections) -> Path:
    data = {"store": {"path": str(folder / "store")}, **sections}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def doctor(capsys, config: Path) -> tuple[int, dict[str, dict]]:
    code = main(["doctor", "--config", str(config), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is (code == 0)
    return code, {c["name"]: c for c in out["checks"]}


def test_working_setup_passes(ollama_server, corpus, tmp_path, capsys):
    config = write_config(tmp_path, llm={"provider": "ollama", "base_url": ollama_server.url, "model": "smollm2"},
                          embeddings={"provider": "ollama", "base_url": ollama_server.url, "model": "all-minilm"})
    code, checks = doctor(capsys, config)
    assert code == 0 and list(checks) == ["config", "chat model", "embeddings", "collection", "disk"]
    assert all(c["status"] == OK for c in checks.values())
    assert "nothing ingested" in checks["collection"]["detail"]

    from rag.config import load_config

    Rag(load_config(config)).ingestor.ingest([corpus])
    assert main(["doctor", "--config", str(config)]) == 0  # the table
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["CHECK", "STATUS", "DETAIL"]
    assert "chat model   OK     ollama smollm2 at " in out
    assert "embeddings   OK     ollama all-minilm at " in out and "384-d" in out
    assert "collection   OK     collection 'documents': 2 documents" in out
    assert "all checks passed" in out


def test_broken_setup_fails_with_fixes(ollama_server, tmp_path, capsys):
    nothing = f"http://127.0.0.1:{free_port()}"
    config = write_config(tmp_path, llm={"provider": "ollama", "base_url": nothing, "model": "smollm2"},
                          embeddings={"provider": "ollama", "base_url": ollama_server.url,
                                      "model": "nomic-embed-text"})
    (tmp_path / "store").mkdir()
    code, checks = doctor(capsys, config)
    assert code == 1
    assert checks["config"]["status"] == OK
    assert checks["chat model"]["status"] == FAIL
    assert f"cannot connect to Ollama at {nothing}" in checks["chat model"]["detail"]
    assert checks["chat model"]["fix"].startswith("start it with `ollama serve`")
    assert checks["embeddings"]["status"] == FAIL and checks["embeddings"]["fix"] == "run `ollama pull nomic-embed-text`"
    assert checks["collection"]["status"] == SKIP
    assert checks["disk"]["status"] == OK

    assert main(["doctor", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "fix: start it with `ollama serve`" in out and "2 checks failed" in out


def test_model_the_server_does_not_offer(llama_cpp_server, ollama_server, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = write_config(tmp_path, llm={"provider": "openai", "base_url": llama_cpp_server.url + "/v1",
                                         "model": "gpt-4o-mini"},
                          embeddings={"provider": "ollama", "base_url": ollama_server.url, "model": "all-minilm"})
    code, checks = doctor(capsys, config)
    assert code == 1
    chat = checks["chat model"]
    assert chat["status"] == FAIL and "does not offer this model (it offers: smollm2)" in chat["detail"]
    assert chat["fix"] == "set llm.model to one the server offers: smollm2"

    config = write_config(tmp_path, llm={"provider": "ollama", "base_url": ollama_server.url, "model": "qwen3"},
                          embeddings={"provider": "ollama", "base_url": ollama_server.url, "model": "all-minilm"})
    code, checks = doctor(capsys, config)
    assert code == 1 and checks["chat model"]["fix"] == "run `ollama pull qwen3`"


def test_collection_built_with_other_embeddings(ollama_server, openai_server, corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", TEST_OPENAI_KEY)
    llm = {"provider": "ollama", "base_url": ollama_server.url, "model": "smollm2"}
    built = write_config(tmp_path, llm=llm,
                         embeddings={"provider": "ollama", "base_url": ollama_server.url, "model": "all-minilm"})
    from rag.config import load_config

    Rag(load_config(built)).ingestor.ingest([corpus])
    config = write_config(tmp_path, llm=llm, embeddings={"provider": "openai", "base_url": openai_server.url + "/v1",
                                                         "model": "all-MiniLM-L6-v2"})
    code, checks = doctor(capsys, config)
    assert code == 1 and checks["embeddings"]["status"] == OK
    collection = checks["collection"]
    assert collection["status"] == FAIL
    assert "built with embeddings ollama/all-minilm (384-d)" in collection["detail"]
    assert "RAG_STORE__COLLECTION" in collection["fix"]


def test_invalid_config_and_missing_key(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("llm:\n  providr: openai\n")
    code, checks = doctor(capsys, bad)
    assert code == 1 and list(checks) == ["config"]
    assert "llm.providr: unknown key" in checks["config"]["detail"]

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("RAG_LLM__PROVIDER", "openai")
    monkeypatch.setenv("RAG_EMBEDDINGS__PROVIDER", "openai")
    code, checks = doctor(capsys, write_config(tmp_path))
    assert code == 1
    assert checks["chat model"]["fix"].startswith("set the OPENAI_API_KEY environment variable")
    assert checks["embeddings"]["status"] == FAIL and "OPENAI_API_KEY" in checks["embeddings"]["fix"]


def test_disk_check(tmp_path):
    assert check_disk(tmp_path / "not" / "yet").status == OK
    low = check_disk(tmp_path, min_free_mb=10**12)
    assert low.status == FAIL and "free some disk space" in low.fix


def test_store_on_a_chroma_server_that_does_not_answer(ollama_server, tmp_path, capsys):
    config = write_config(tmp_path, llm={"provider": "ollama", "base_url": ollama_server.url, "model": "smollm2"},
                          embeddings={"provider": "ollama", "base_url": ollama_server.url, "model": "all-minilm"})
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["store"]["url"] = f"http://127.0.0.1:{free_port()}"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    code, checks = doctor(capsys, config)
    assert code != 0 and checks["collection"]["status"] == FAIL
    assert data["store"]["url"] in checks["collection"]["detail"] + checks["collection"].get("fix", "")
    assert "serve-store" in checks["collection"].get("fix", "")
