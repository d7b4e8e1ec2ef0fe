"""Find Debian's Chromium for Playwright (no `playwright install`: nothing is downloaded)."""

from __future__ import annotations

import os
import shutil

NO_BROWSER = ("no Chromium found (apt-get install chromium, or set MLPIPE_CHROMIUM) "
              "or Playwright missing (pip install playwright): browser tests skipped")


def find_chromium() -> str | None:
    """`$MLPIPE_CHROMIUM`, else `chromium` or `chromium-browser` on PATH; None when Playwright or
    the browser is missing."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None
    for candidate in (os.environ.get("MLPIPE_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def launch(playwright, executable: str):  # noqa: ANN001, ANN201 - Playwright's own types
    # NOTE: --no-sandbox because CI runs as root, where Chromium refuses its sandbox.
    return playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
