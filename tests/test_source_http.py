"""HttpSource against a real HTTP server: versions, the download cache, retries, errors."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import source_context
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from mlpipe.core.errors import FetchError
from mlpipe.core.uri import Uri, parse_uri
from mlpipe.home.settings import load_settings
from mlpipe.sources.http import HttpSource, redact, version_of


def make_source(home: Path, progress: bool = False) -> HttpSource:
    """A fresh source, as a new `ml runpipe` would build it; retries without the real back-off."""
    settings = load_settings(env={"MLPIPE_HOME": str(home)})
    source = HttpSource(source_context(settings, progress=progress))
    source.retry_delays = (0.01, 0.01)
    return source


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def source(home: Path) -> HttpSource:
    return make_source(home)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def uri_for(server: HTTPServer, path: str) -> Uri:
    return parse_uri(server.url_for(path))


def requests_made(server: HTTPServer, method: str, path: str = "/data.tsv") -> list[int]:
    """Status codes of the requests the server answered for `method path`, in order."""
    return [resp.status_code for req, resp in server.log if req.method == method and req.path == path]


def serve(server: HTTPServer, body: bytes, etag: str) -> None:
    server.clear_all_handlers()
    server.expect_request("/data.tsv").respond_with_data(body, headers={"ETag": etag})


def test_first_fetch_downloads_then_same_etag_reuses_the_cache_without_get(httpserver: HTTPServer, home: Path):
    serve(httpserver, b"a\t1\n", '"v1"')
    uri = uri_for(httpserver, "/data.tsv")
    first = make_source(home)

    assert first.probe(uri).fingerprint is None  # not downloaded yet
    fetched = first.fetch(uri)
    assert fetched.path.read_bytes() == b"a\t1\n"
    assert fetched.fingerprint == md5(b"a\t1\n")
    assert fetched.version == 'etag:"v1"'

    again = make_source(home)  # the next run
    assert again.probe(uri).fingerprint == md5(b"a\t1\n")  # known from one HEAD
    assert again.fetch(uri).path.read_bytes() == b"a\t1\n"
    assert requests_made(httpserver, "GET") == [200]  # only the first download


def test_etag_change_downloads_again_with_a_new_fingerprint(httpserver: HTTPServer, source: HttpSource):
    uri = uri_for(httpserver, "/data.tsv")
    serve(httpserver, b"old\n", '"v1"')
    old = source.fetch(uri)
    serve(httpserver, b"new\n", '"v2"')

    probe = source.probe(uri)
    assert (probe.version, probe.fingerprint) == ('etag:"v2"', None)
    new = source.fetch(uri)
    assert new.path.read_bytes() == b"new\n"
    assert new.fingerprint == md5(b"new\n") != old.fingerprint
    assert requests_made(httpserver, "GET") == [200, 200]


def test_server_without_version_headers_downloads_every_time_and_compares_md5(
    httpserver: HTTPServer, source: HttpSource
):
    body = [b"same\n"]
    # a streamed body: no ETag, no Last-Modified, no Content-Length
    httpserver.expect_request("/data.tsv").respond_with_handler(lambda _req: Response(iter(list(body))))
    uri = uri_for(httpserver, "/data.tsv")

    probe = source.probe(uri)
    assert (probe.version, probe.fingerprint) == ("", None)
    first, second = source.fetch(uri), source.fetch(uri)
    assert first.fingerprint == second.fingerprint == md5(b"same\n")
    body[0] = b"changed\n"
    assert source.fetch(uri).fingerprint == md5(b"changed\n")
    assert requests_made(httpserver, "GET") == [200, 200, 200]


@pytest.mark.parametrize(
    ("headers", "version"),
    [
        ({"ETag": '"abc"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT", "Content-Length": "3"}, 'etag:"abc"'),
        ({"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT", "Content-Length": "3"},
         "lm:Mon, 01 Jan 2024 00:00:00 GMT;len:3"),
        ({"Content-Length": "3"}, ""),  # a length alone is no version: same-length edits would go unseen
        ({}, ""),
    ],
)
def test_version_prefers_etag_then_last_modified_and_length(headers: dict[str, str], version: str):
    assert version_of(headers) == version


@pytest.mark.parametrize("status", [403, 405, 501])  # 403: presigned URLs are signed for GET only
def test_head_not_allowed_falls_back_to_get_headers(httpserver: HTTPServer, home: Path, status: int):
    httpserver.expect_request("/data.tsv", method="HEAD").respond_with_data(b"", status=status)
    httpserver.expect_request("/data.tsv", method="GET").respond_with_data(b"x\n", headers={"ETag": '"e"'})
    uri = uri_for(httpserver, "/data.tsv")

    assert make_source(home).fetch(uri).path.read_bytes() == b"x\n"
    probe = make_source(home).probe(uri)
    assert (probe.version, probe.fingerprint) == ('etag:"e"', md5(b"x\n"))
    assert requests_made(httpserver, "GET") == [200, 200, 200]  # headers, download, headers again


def test_404_is_a_clear_fetch_error_and_caches_nothing(httpserver: HTTPServer, source: HttpSource):
    httpserver.expect_request("/data.tsv").respond_with_data(b"gone", status=404)
    uri = uri_for(httpserver, "/data.tsv")
    with pytest.raises(FetchError, match=r"/data\.tsv: HTTP 404 Not Found$"):
        source.fetch(uri)
    assert source.cache.lookup(uri) is None
    assert requests_made(httpserver, "HEAD") == [404]  # a 4xx is not retried


def test_a_500_is_retried_then_the_download_succeeds(httpserver: HTTPServer, source: HttpSource):
    httpserver.expect_request("/data.tsv", method="HEAD").respond_with_data(b"", headers={"ETag": '"1"'})
    httpserver.expect_oneshot_request("/data.tsv", method="GET").respond_with_data(b"busy", status=500)
    httpserver.expect_request("/data.tsv", method="GET").respond_with_data(b"ok\n", headers={"ETag": '"1"'})
    fetched = source.fetch(uri_for(httpserver, "/data.tsv"))
    assert fetched.path.read_bytes() == b"ok\n"
    assert requests_made(httpserver, "GET") == [500, 200]


def test_a_persistent_500_gives_up_after_three_attempts(httpserver: HTTPServer, source: HttpSource):
    httpserver.expect_request("/data.tsv").respond_with_data(b"down", status=503)
    with pytest.raises(FetchError, match=r"HTTP 503 Service Unavailable \(gave up after 3 attempts\)"):
        source.fetch(uri_for(httpserver, "/data.tsv"))
    assert requests_made(httpserver, "HEAD") == [503, 503, 503]


class _ShortBody(BaseHTTPRequestHandler):
    """Promises 100 bytes, sends 5, hangs up (werkzeug would correct the Content-Length)."""

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("ETag", '"cut"')
        self.send_header("Content-Length", "100")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        self.do_HEAD()
        self.wfile.write(b"12345")
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def short_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ShortBody)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_body_cut_short_is_an_error_and_nothing_is_cached(short_server: str, source: HttpSource):
    uri = parse_uri(f"{short_server}/data.bin")
    with pytest.raises(FetchError, match=r"cut short after 5 of 100 bytes"):
        source.fetch(uri)
    assert source.cache.lookup(uri) is None
    assert source.probe(uri).fingerprint is None
    assert list((source.cache.root / "tmp").iterdir()) == []  # no partial file left behind


def test_credentials_in_the_url_never_appear_in_errors(httpserver: HTTPServer, source: HttpSource):
    httpserver.expect_request("/secret.tsv").respond_with_data(b"no", status=404)
    url = httpserver.url_for("/secret.tsv").replace("://", "://alice:s3cret@")
    with pytest.raises(FetchError) as caught:
        source.fetch(parse_uri(url))
    assert "HTTP 404" in str(caught.value)
    assert "s3cret" not in str(caught.value) and "alice" not in str(caught.value)
    assert redact("https://u:p@host:8/x?q=1") == "https://host:8/x?q=1"


def test_connection_refused_names_the_host_after_retries(source: HttpSource):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(FetchError) as caught:
        source.fetch(parse_uri(f"http://bob:hunter2@127.0.0.1:{port}/x.tsv"))
    message = str(caught.value)
    assert f"cannot connect to 127.0.0.1:{port}" in message and "3 attempts" in message
    assert "hunter2" not in message


def test_progress_goes_to_stderr_only_when_enabled(
    httpserver: HTTPServer, home: Path, capsys: pytest.CaptureFixture[str]
):
    def handler(_req: Request) -> Response:
        return Response(b"p" * 3000)

    httpserver.expect_request("/data.tsv").respond_with_handler(handler)
    uri = uri_for(httpserver, "/data.tsv")
    make_source(home / "quiet").fetch(uri)
    assert capsys.readouterr() == ("", "")
    make_source(home / "loud", progress=True).fetch(uri)
    out, err = capsys.readouterr()
    assert out == "" and "100%" in err and "\r" in err
