"""Take docs/screenshot.png: the app on a fresh store, the sample PDFs uploaded, one question answered.

    python scripts/screenshot.py [--question "..."] [--out docs/screenshot.png]

Starts the real app (offline default models) on a free port, drives it with Playwright and /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import AppServer, ask, launch_browser, open_app, upload  # noqa: E402

SAMPLES = [ROOT / "data" / "aurora-tidal-power-2024.pdf", ROOT / "data" / "hanbit-smartfarm-2024-ko.pdf"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--question", default="How much electricity did the Kelvar Strait array generate in 2024?")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, AppServer(Path(tmp)) as server, sync_playwright() as playwright:
        browser = launch_browser(playwright)
        page = open_app(browser, server.url)
        upload(page, SAMPLES)
        ask(page, args.question)
        page.locator("#sources img").first.wait_for()
        page.wait_for_function("() => [...document.querySelectorAll('#sources .src-card.cited img')]"
                               ".every(i => i.complete && i.naturalWidth > 0)")
        time.sleep(1)  # let the last layout settle
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out))
        browser.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
