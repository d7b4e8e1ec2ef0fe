"""`python -m bench.ui`: the web UI at 1,000 jobs; `--screenshot PNG`: the demo pipe's page.

Targets (DESIGN.md / issue 13): the pipe page of a 1,000-job pipe renders in under 2 s in
Chromium; `/api/pipes/<id>/plan` for 1,000 jobs answers in under 1 s. Both are measured for the
generated `chains` and `fanin` pipes (bench/generate.py) before any run and once every job is up to
date (more hashing). The page time runs from navigation to every node drawn with its state, so
it includes the graph, SVG and runs API calls. Figures go to bench/ui_results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from bench.browser import NO_BROWSER, find_chromium, launch
from bench.generate import write_case

HERE = Path(__file__).resolve().parent
REPEAT = 5
DEMO_PIPE = "text_classification/pipe/bow_model.yaml"


@contextmanager
def ui_server(home: Path, apps: Path) -> Iterator[str]:
    """`ml ui` (no token: loopback only) over `home` and `apps`, in a thread; yields its base URL."""
    os.environ.update(MLPIPE_HOME=str(home), MLPIPE_APPS=str(apps))
    from mlpipe.home.settings import init_home, load_settings
    from mlpipe.ui.server import UiServer

    settings = load_settings()
    init_home(settings)
    server = UiServer(settings, "127.0.0.1", 0, "")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def time_api(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:
        resp.read()
    return time.perf_counter() - started


def time_page(browser, url: str, n: int) -> float:  # noqa: ANN001 - Playwright's Browser
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    started = time.perf_counter()
    page.goto(url)
    expect(page.locator("#dag .node[data-state]:not([data-state=unknown])")).to_have_count(n, timeout=60_000)
    elapsed = time.perf_counter() - started
    page.close()
    return elapsed


def measure(browser, root: Path, shape: str, n: int) -> list[dict]:  # noqa: ANN001
    from mlpipe.cli.main import main

    case = write_case(root / shape, shape, n)
    rows = []
    with ui_server(case.home, case.apps) as base:
        for when in ("never run", "up to date"):
            if when == "up to date" and main(["runpipe", case.pipe_id, "-j", "2"]) != 0:
                raise SystemExit(f"bench.ui: running {case.pipe_id} failed")
            api = f"{base}/api/pipes/{case.pipe_id}/plan"
            time_api(api)  # the first request parses the YAML and fills the memo, as a first `ml` run would
            plan = [time_api(api) for _ in range(REPEAT)]
            page = [time_page(browser, f"{base}/#/pipe/{quote(case.pipe_id, safe='')}", n) for _ in range(REPEAT)]
            rows.append({"shape": shape, "jobs": n, "when": when, "plan_api_s": round(statistics.median(plan), 3),
                         "page_s": round(statistics.median(page), 3), "page_max_s": round(max(page), 3)})
            print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def screenshot(browser, out: Path) -> None:  # noqa: ANN001
    """Run the demo pipe in a fresh home, open its page, click `evaluate`, save a PNG."""
    from mlpipe.cli.main import main

    with tempfile.TemporaryDirectory() as tmp, ui_server(Path(tmp) / "home", HERE.parent / "apps") as base:
        if main(["runpipe", DEMO_PIPE]) != 0:
            raise SystemExit("bench.ui: the demo pipe failed")
        page = browser.new_page(viewport={"width": 1360, "height": 1180})
        page.goto(f"{base}/#/pipe/{quote(DEMO_PIPE, safe='')}")
        page.click("#dag .node[data-id=evaluate]")
        page.wait_for_selector("#panel details.preview")
        page.wait_for_timeout(300)
        page.screenshot(path=str(out))
        page.close()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui", description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", type=Path, metavar="PNG", help="only save the demo pipe's page as PNG")
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        print(f"bench.ui: {NO_BROWSER}", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        if args.screenshot:
            screenshot(browser, args.screenshot)
            return 0
        with tempfile.TemporaryDirectory() as tmp:
            rows = [row for shape in ("chains", "fanin") for row in measure(browser, Path(tmp), shape, 1000)]
        browser.close()
    result = {"machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_implementation()} "
                         f"{platform.python_version()}", "when": time.strftime("%Y-%m-%d"), "rows": rows}
    (HERE / "ui_results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'pipe':<8} {'jobs':>5}  {'state':<10}  {'plan API':>8}  {'page':>6}  (targets: 1 s, 2 s)")
    for r in rows:
        print(f"{r['shape']:<8} {r['jobs']:>5}  {r['when']:<10}  {r['plan_api_s']:>7.3f}s  {r['page_s']:>5.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
