"""`python -m bench.ui_editor PNG`: a screenshot of the pipe editor on the demo pipe (for the README).

Opens `#/edit/text_classification/pipe/bow_model.yaml` in Chromium over a fresh home, lets the
editor check the pipe and draw its DAG preview, and saves the page as PNG. Nothing is saved.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from bench.browser import NO_BROWSER, find_chromium, launch
from bench.ui import DEMO_PIPE, HERE, ui_server


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.ui_editor PNG", file=sys.stderr)
        return 2
    chromium = find_chromium()
    if chromium is None:
        print(f"bench.ui_editor: {NO_BROWSER}", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with (sync_playwright() as playwright, tempfile.TemporaryDirectory() as tmp,
          ui_server(Path(tmp) / "home", HERE.parent / "apps") as base):
        browser = launch(playwright, chromium)
        page = browser.new_page(viewport={"width": 1280, "height": 1500})
        page.goto(f"{base}/#/edit/{quote(DEMO_PIPE, safe='')}")
        page.wait_for_selector("#preview svg .node")
        page.locator("fieldset.job[data-job=bow_model] [data-param=num_epochs]").fill("20")
        page.wait_for_timeout(600)  # the check and the preview after the edit
        page.screenshot(path=argv[0])
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
