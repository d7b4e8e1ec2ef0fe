"""`ml ui`'s server on a free port in a thread, over the test's home (`ui_server`), a client, and
the browser tests' Chromium (`browser`, `page`: used only where Chromium was found)."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

TOKEN = "test-token-123"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):  # noqa: ANN201
        import json

        return json.loads(self.body)


@dataclass
class UiServerHandle:
    base: str  # http://127.0.0.1:PORT
    token: str
    server: object

    @property
    def url(self) -> str:
        return f"{self.base}/?token={self.token}"

    def get(self, path: str, token: str | None = TOKEN, headers: dict[str, str] | None = None,
            method: str = "GET") -> Reply:
        """One request, without following redirects; the token as the X-MLPipe-Token header."""
        sent = dict(headers or {})
        if token is not None:
            sent["X-MLPipe-Token"] = token
        return self._open(urllib.request.Request(self.base + path, headers=sent, method=method))

    def send(self, method: str, path: str, body: object = None, token: str | None = TOKEN,
             origin: str | None = "same", headers: dict[str, str] | None = None) -> Reply:
        """A change (POST/PUT) with a JSON body, the token header and, by default, this server's Origin."""
        import json

        sent = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            sent["X-MLPipe-Token"] = token
        if origin is not None:
            sent["Origin"] = self.base if origin == "same" else origin
        data = json.dumps({} if body is None else body).encode()
        return self._open(urllib.request.Request(self.base + path, data=data, headers=sent, method=method))

    def _open(self, request: urllib.request.Request) -> Reply:
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=30) as resp:
                return Reply(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, dict(exc.headers), exc.read())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        return None


@pytest.fixture
def ui_server(env) -> Iterator[UiServerHandle]:  # noqa: ANN001 - conftest's Env
    """A real UiServer on 127.0.0.1 (any free port) over `env`'s home and apps."""
    from mlpipe.home.settings import init_home, load_settings
    from mlpipe.ui.server import UiServer

    settings = load_settings()
    init_home(settings)
    server = UiServer(settings, "127.0.0.1", 0, TOKEN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield UiServerHandle(f"http://127.0.0.1:{server.server_address[1]}", TOKEN, server)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    from bench.browser import find_chromium, launch

    with sync_playwright() as playwright:
        chromium = launch(playwright, find_chromium())
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, ui_server):
    """A fresh page, signed in through the printed URL; `page.requests` records every request."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.requests = []
    page.errors = []
    page.on("request", lambda request: page.requests.append(request.url))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(ui_server.url)
    page.wait_for_selector("main table")
    yield page
    assert page.errors == []
    context.close()
