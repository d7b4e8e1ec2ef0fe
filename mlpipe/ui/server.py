"""`ml ui`'s HTTP server: the standard library's ThreadingHTTPServer, one page, its assets, the API.

Security (DESIGN.md "Graph and web UI"):
- Every request needs the session token, pages and assets included: job records, logs and
  paths are private, and a page that needed none could be read by any local user or, through
  DNS rebinding, by a web site. The printed URL carries it (`/?token=...`, as Jupyter does);
  the first request trades it for an HttpOnly, SameSite=Strict cookie and drops it from the URL.
  Scripts may send it as the `X-MLPipe-Token` header instead.
- A request that changes something (POST, PUT: run, cancel, save) also needs an `Origin` equal to
  the server's own, so another site cannot make the browser send one, and a JSON body.
- Content-Security-Policy `default-src 'self'`: nothing loads from outside the machine.
- Binds 127.0.0.1 by default; another address needs a token (an empty `--token` is refused).
- No request path becomes a file path: assets come from a fixed list, records by validated id.
"""

from __future__ import annotations

import hmac
import os
import secrets
import sys
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from mlpipe.core.errors import UsageError
from mlpipe.home.settings import Settings
from mlpipe.ui.api import Api
from mlpipe.ui.http import HttpError, dumps

LOOPBACK = ("127.0.0.1", "localhost", "::1")
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
ASSETS = {"app.js": "text/javascript", "actions.js": "text/javascript", "editor.js": "text/javascript",
          "ui.css": "text/css", "index.html": "text/html", "favicon.svg": "image/svg+xml"}
TOKEN_HEADER = "X-MLPipe-Token"
MAX_BODY = 2 << 20  # a pipe of the editor (1 MiB of text) as JSON


def status_css() -> str:
    """One rule per node state, from the same table `ml graph --format svg` colours with."""
    from mlpipe.core.graph_render import STYLE

    return "".join(f".st-{s} rect{{fill:{f};stroke:{k}}} .st-{s} .state{{fill:{k}}} .badge.st-{s}"
                   f"{{background:{f};border-color:{k};color:{k}}}\n" for s, (f, k, _g) in STYLE.items())


def read_asset(name: str) -> bytes:
    if name == "status.css":
        return status_css().encode()
    return (resources.files("mlpipe.ui") / "static" / name).read_bytes()


class UiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 8250, token: str | None = None):
        if token == "" and host not in LOOPBACK:
            raise UsageError(f"--host {host}: binding to an address other than loopback needs a token")
        self.api = Api(settings)
        self.token = secrets.token_urlsafe(24) if token is None else token
        super().__init__((host, port), _Handler)
        # cookies ignore ports: one name per port keeps two servers of one host apart
        self.cookie_name = f"mlpipe-ui-{self.server_address[1]}"

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/" + (f"?{urlencode({'token': self.token})}" if self.token else "")


class _Handler(BaseHTTPRequestHandler):
    server: UiServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not self._authorized(query):
            return self._send_error(HTTPStatus.FORBIDDEN, "open the URL `ml ui` printed: it carries the session token")
        if "token" in query and not url.path.startswith("/api/"):  # drop the token from the address bar
            rest = urlencode({k: v[-1] for k, v in query.items() if k != "token"})
            return self._send(HTTPStatus.SEE_OTHER, "text/plain", b"", {
                "Location": url.path + (f"?{rest}" if rest else ""),
                "Set-Cookie": f"{self.server.cookie_name}={self.server.token}; HttpOnly; SameSite=Strict; Path=/"})
        try:
            if url.path.startswith("/api/"):
                kind, body = self.server.api.get(url.path, url.query)
                return self._send(HTTPStatus.OK, kind, body, {"Cache-Control": "no-store"})
            name = "index.html" if url.path == "/" else url.path.removeprefix("/static/")
            if url.path != "/" and (not url.path.startswith("/static/") or name not in {*ASSETS, "status.css"}):
                raise HttpError(404, f"not found: {url.path}")
            return self._send(HTTPStatus.OK, ASSETS.get(name, "text/css"), read_asset(name))
        except HttpError as exc:
            return self._send_error(HTTPStatus(exc.status), str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the page's session
            if os.environ.get("MLPIPE_DEBUG"):
                raise
            print(f"ml ui: {url.path}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return self._send_error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}")

    def do_POST(self) -> None:  # noqa: N802
        self._change()

    def do_PUT(self) -> None:  # noqa: N802
        self._change()

    def _change(self) -> None:
        """Run, cancel, save...: only with the token and an Origin equal to this server's, and a JSON
        body (which a form on another site cannot send without the browser asking first)."""
        url = urlsplit(self.path)
        if not self._authorized(parse_qs(url.query)) or not self._same_origin():
            self._drain()
            return self._send_error(HTTPStatus.FORBIDDEN, "a change needs the session token and a same-origin request")
        try:
            body = self._json_body()
            answer = self.server.api.change(self.command, url.path, body)
            return self._send(HTTPStatus.OK, "application/json", dumps(answer), {"Cache-Control": "no-store"})
        except HttpError as exc:
            return self._send_error(HTTPStatus(exc.status), str(exc), exc.extra)
        except Exception as exc:  # noqa: BLE001 - as in do_GET
            if os.environ.get("MLPIPE_DEBUG"):
                raise
            print(f"ml ui: {self.command} {url.path}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return self._send_error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}")

    def _json_body(self) -> dict[str, Any]:
        import json

        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise HttpError(400, "bad Content-Length") from None
        if length > MAX_BODY:
            self.close_connection = True
            raise HttpError(413, f"a request body is at most {MAX_BODY} bytes")
        raw = self.rfile.read(length) if length > 0 else b""
        if self.headers.get_content_type() != "application/json":
            raise HttpError(415, "send a JSON body (Content-Type: application/json)")
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise HttpError(400, "the body must be a JSON object")
        return body

    def _drain(self) -> None:
        """Read a refused request's body (unread, it would be taken for the next request)."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if 0 < length <= MAX_BODY:
            self.rfile.read(length)
        elif length:
            self.close_connection = True

    def _authorized(self, query: dict[str, list[str]]) -> bool:
        token = self.server.token
        if not token:
            return True
        cookies = SimpleCookie()
        try:
            cookies.load(self.headers.get("Cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is just no cookie
            cookies = SimpleCookie()
        given = [*query.get("token", []), self.headers.get(TOKEN_HEADER, "")]
        if self.server.cookie_name in cookies:
            given.append(cookies[self.server.cookie_name].value)
        return any(hmac.compare_digest(g.encode(), token.encode()) for g in given if g)

    def _same_origin(self) -> bool:
        origin, host = self.headers.get("Origin"), self.headers.get("Host")
        return bool(origin and host) and origin == f"http://{host}" and host.rsplit(":", 1)[0].strip("[]") in (
            *LOOPBACK, self.server.server_address[0])

    def _send_error(self, status: HTTPStatus, message: str, extra: dict[str, Any] | None = None) -> None:
        self._send(status, "application/json", dumps({"error": message, "status": status.value, **(extra or {})}))

    def _send(self, status: HTTPStatus, kind: str, body: bytes, headers: dict[str, Any] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{kind}; charset=utf-8" if kind.startswith("text/") else kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        """Quiet: a request line would print the session token."""


def serve(settings: Settings, host: str, port: int, token: str | None, open_browser: bool) -> None:
    """Serve until Ctrl-C (which main() reports as an interruption)."""
    try:
        server = UiServer(settings, host, port, token)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    print(f"MLPipe UI: {server.url}", file=sys.stderr, flush=True)
    print("(Ctrl-C stops it)", file=sys.stderr, flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    finally:
        server.server_close()
