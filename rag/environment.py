"""The process environment an offline machine needs, in one place: no telemetry that would hang without a
network, no model-hub look-ups (a hub name costs ~70 s of retries before failing), quiet progress bars.

Entry points (the CLI, the app, tests, benchmarks) call ``offline_defaults()`` before importing heavy libraries;
the library never changes the environment on import. Values already set by the user win.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

OFFLINE = {
    "ANONYMIZED_TELEMETRY": "False",  # Chroma
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def offline_defaults(environ: MutableMapping[str, str] | None = None) -> None:
    """Set the offline defaults where unset, and make the standard streams UTF-8 (Korean file names)."""
    environ = os.environ if environ is None else environ
    for name, value in OFFLINE.items():
        environ.setdefault(name, value)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="replace")
