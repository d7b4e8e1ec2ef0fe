"""`http://` and `https://` inputs: one HEAD for the version, a streamed download into the download cache.

    probe   HEAD (GET headers only when HEAD is refused) -> version from ETag, else Last-Modified
            (with Content-Length); the md5 is known when the download cache holds that version
    fetch   probe; reuse the cached copy of that version, else stream the body into the cache

A server that sends neither ETag nor Last-Modified has version "": every fetch downloads again
and the content md5 alone tells whether anything changed (Content-Length alone is no version: a
dynamic endpoint's body changes without changing its length). The bytes are stored exactly as
served (no decompression, no unpacking). Every `requests`/`urllib3` exception becomes a `FetchError`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import requests
import urllib3

from mlpipe.core.errors import FetchError
from mlpipe.core.uri import Uri, redact
from mlpipe.sources import Fetched, Probe, SourceContext
from mlpipe.sources.download_cache import DownloadCache

T = TypeVar("T")

TIMEOUT = (10, 60)  # seconds: connect, read (between two packets, not the whole body)
CHUNK = 1 << 20
# NOTE: 403 is included because presigned S3/GCS URLs are signed for GET only and answer 403 to HEAD.
NO_HEAD = frozenset({403, 405, 501})
# identity: store the file as the server holds it (requests would otherwise ask for gzip and the
# Content-Length check and the md5 would depend on the server's transfer encoding).
HEADERS = {"Accept-Encoding": "identity", "User-Agent": "mlpipe"}
_NETWORK_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError)


class _Transient(Exception):
    """A failure worth retrying: connection error, timeout, 5xx, a body cut short."""


def version_of(headers: Mapping[str, str]) -> str:
    """A stable version string: the ETag, else Last-Modified and Content-Length; "" without either."""
    if headers.get("ETag"):
        return f"etag:{headers['ETag']}"
    if not headers.get("Last-Modified"):
        return ""
    parts = [f"{key}:{headers[name]}" for key, name in (("lm", "Last-Modified"), ("len", "Content-Length"))
             if headers.get(name)]
    return ";".join(parts)


def _reason(exc: BaseException) -> str:
    """The innermost cause of a network error, e.g. "Connection refused"."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = exc.__cause__ or getattr(exc, "reason", None) or next(
            (a for a in exc.args if isinstance(a, BaseException)), None
        )
        if not isinstance(inner, BaseException):
            break
        exc = inner
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


class _Progress:
    """A one-line percentage on stderr, redrawn with "\\r"; silent unless enabled."""

    def __init__(self, label: str, total: int | None, enabled: bool):
        self.label, self.total, self.enabled = label, total, enabled
        self.shown = ""

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        text = f"{done * 100 // self.total}%" if self.total else f"{done >> 20} MiB"
        if text != self.shown:
            self.shown = text
            sys.stderr.write(f"\r{self.label}: {text}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.shown:
            sys.stderr.write("\n")


class HttpSource:
    """A file served over HTTP(S), cached under DOWNLOAD_DIR/http(s)/ until its version changes."""

    retry_delays: tuple[float, ...] = (0.5, 1.0)  # 3 attempts

    def __init__(self, context: SourceContext):
        self.context = context
        self.cache = DownloadCache(context.settings.download_dir, context.digests)
        self._local = threading.local()

    def probe(self, uri: Uri) -> Probe:
        version = self._remote_version(uri)
        cached = self._cached(uri, version)
        return Probe(version, cached.fingerprint if cached else None, cached.path if cached else None)

    def fetch(self, uri: Uri) -> Fetched:
        version = self._remote_version(uri)
        cached = self._cached(uri, version)
        if cached is not None:
            return cached
        return self._retrying(lambda: self.cache.store(uri, version, lambda path: self._download(uri, path)))

    def _cached(self, uri: Uri, version: str) -> Fetched | None:
        """The cached copy of `version`; without a version ("") the cache is never trusted."""
        return self.cache.lookup(uri, version) if version else None

    def _session(self) -> requests.Session:
        """One session per thread (sessions are not thread-safe), reusing connections HEAD -> GET."""
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            self._local.session.headers.update(HEADERS)
        return self._local.session

    def _remote_version(self, uri: Uri) -> str:
        response = self._retrying(lambda: self._request(uri, "HEAD", allowed=NO_HEAD))
        response.close()
        if response.status_code in NO_HEAD:
            response = self._retrying(lambda: self._request(uri, "GET"))
            response.close()  # headers only: the body is never read
        return version_of(response.headers)

    def _request(self, uri: Uri, method: str, allowed: frozenset[int] = frozenset()) -> requests.Response:
        """One request, streamed; 5xx and network errors are `_Transient`, other errors `FetchError`."""
        host = urlsplit(redact(uri.raw)).netloc
        try:
            response = self._session().request(method, uri.raw, stream=True, timeout=TIMEOUT, allow_redirects=True)
        except requests.Timeout as exc:
            raise _Transient(f"{redact(uri.raw)}: timed out talking to {host}") from exc
        except _NETWORK_ERRORS as exc:
            raise _Transient(f"{redact(uri.raw)}: cannot connect to {host}: {_reason(exc)}") from exc
        if response.status_code < 400 or response.status_code in allowed:
            return response
        response.close()
        try:
            phrase = HTTPStatus(response.status_code).phrase
        except ValueError:
            phrase = response.reason
        message = f"{redact(uri.raw)}: HTTP {response.status_code} {phrase}"
        if response.status_code >= 500:
            raise _Transient(message)
        raise FetchError(message)

    def _download(self, uri: Uri, target: Path) -> None:
        """Stream the body into `target`; a body shorter than Content-Length is `_Transient`."""
        response = self._request(uri, "GET")
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        progress = _Progress(redact(uri.raw), expected, self.context.progress)
        written = 0
        with response, open(target, "wb") as out:
            try:
                for chunk in response.raw.stream(CHUNK, decode_content=False):
                    out.write(chunk)
                    written += len(chunk)
                    progress.update(written)
            except _NETWORK_ERRORS as exc:
                raise _Transient(self._short(uri, written, expected, _reason(exc))) from exc
            finally:
                progress.close()
        if expected is not None and written != expected:
            raise _Transient(self._short(uri, written, expected, "connection closed"))

    @staticmethod
    def _short(uri: Uri, written: int, expected: int | None, why: str) -> str:
        of = f" of {expected}" if expected is not None else ""
        return f"{redact(uri.raw)}: download cut short after {written}{of} bytes ({why})"

    def _retrying(self, call: Callable[[], T]) -> T:
        """`call()`, retried after each delay on `_Transient`; the last failure becomes a `FetchError`."""
        for delay in self.retry_delays:
            try:
                return call()
            except _Transient:
                time.sleep(delay)
        try:
            return call()
        except _Transient as exc:
            attempts = len(self.retry_delays) + 1
            raise FetchError(f"{exc} (gave up after {attempts} attempts)") from (exc.__cause__ or exc)
