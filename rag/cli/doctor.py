"""``python -m rag doctor``: the checks of ``rag.doctor`` as a table (or JSON), and an exit code."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from typing import TextIO

from rag import Rag
from rag.types import FAIL, Check


def report(config: str | os.PathLike[str] | None = None, *, as_json: bool = False, out: TextIO | None = None) -> int:
    """Print the checks (a table, or JSON) and return the exit code: 0 when nothing failed, else 1."""
    out = out or sys.stdout
    checks: list[Check] = []
    if not as_json:
        print(f"{'CHECK':<12} {'STATUS':<6} DETAIL", file=out, flush=True)
    for check in Rag.doctor(config):
        checks.append(check)
        if not as_json:
            print(f"{check.name:<12} {check.status:<6} {check.detail}", file=out, flush=True)
            if check.fix and check.status == FAIL:
                print(f"{'':<12} {'':<6} fix: {check.fix}", file=out, flush=True)
    ok = all(c.status != FAIL for c in checks)
    if as_json:
        print(json.dumps({"ok": ok, "checks": [asdict(c) for c in checks]}, ensure_ascii=False), file=out, flush=True)
    else:
        failed = sum(c.status == FAIL for c in checks)
        print("\nall checks passed" if ok else f"\n{failed} check{'s' if failed > 1 else ''} failed", file=out)
    return 0 if ok else 1
