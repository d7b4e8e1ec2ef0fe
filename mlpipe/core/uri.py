"""Parse external-data URIs (pure: no I/O).

    file://APP/PATH            a file or folder inside an app
    local://ABS/PATH           a local file or folder, local://home/u/x = /home/u/x
    http://HOST/PATH, https:// a download
    s3://BUCKET/KEY            an S3 object; a KEY ending in "/" is a prefix (a folder)
    git+URL@REV#PATH           a file or folder of a git repository at a branch, tag or commit
    cache://DATA_HASH          an entry of the local cache (how `ml runjob` names another job's output)

>>> parse_uri("git+file:///srv/repo.git@main#data/x.tsv").rev
'main'
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from mlpipe.core.errors import UriError

SCHEMES = ("file", "local", "http", "https", "s3", "git", "cache")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_DATA_HASH = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Uri:
    """A parsed URI. `root` is the app, host, bucket or repository; `path` is inside it."""

    raw: str
    scheme: str
    root: str
    path: str
    rev: str = ""

    @property
    def is_folder(self) -> bool:
        """True when the URI names a prefix ("s3://b/dir/") rather than one object."""
        return self.raw.endswith("/")

    def __str__(self) -> str:
        return self.raw


def redact(url: str) -> str:
    """`url` without `user:pass@`, for messages and logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def is_uri(value: str) -> bool:
    """True for a URI, False for a data name (an intermediate output of another job)."""
    return "://" in value or value.startswith("git+")


def _clean_path(path: str, raw: str, *, allow_empty: bool = False) -> str:
    """Reject traversal: no "..", no NUL; the result never leaves its root."""
    if "\0" in path:
        raise UriError(f"{raw}: NUL byte in path")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UriError(f"{raw}: '..' is not allowed in a URI path (it would escape its root)")
    if not parts and not allow_empty:
        raise UriError(f"{raw}: the URI names no path")
    return posixpath.join(*parts) if parts else ""


def parse_uri(raw: str) -> Uri:
    """Parse and validate `raw`; raise UriError with the reason (credentials redacted) otherwise."""
    try:
        return _parse(raw)
    except UriError as exc:
        shown = redact(raw) if isinstance(raw, str) else raw
        if shown == raw:
            raise
        raise UriError(str(exc).replace(raw, shown)) from None


def _parse(raw: str) -> Uri:
    if not isinstance(raw, str) or not is_uri(raw):
        raise UriError(f"{raw!r} is not a URI")
    if raw.startswith("git+"):
        return _parse_git(raw)
    scheme, _, rest = raw.partition("://")
    if scheme not in SCHEMES:
        raise UriError(f"{raw}: unknown scheme '{scheme}' (known: {', '.join(SCHEMES)}, git+URL@REV#PATH)")
    if scheme == "file":
        app, _, path = rest.partition("/")
        if not app or app in (".", ".."):
            raise UriError(f"{raw}: expected file://APP/PATH")
        return Uri(raw, scheme, app, _clean_path(path, raw))
    if scheme == "local":
        return Uri(raw, scheme, "/", "/" + _clean_path(rest, raw))
    if scheme == "cache":
        if not _DATA_HASH.match(rest):
            raise UriError(f"{raw}: expected cache://DATA_HASH (32 lowercase hex digits)")
        return Uri(raw, scheme, rest, "")
    if scheme == "s3":
        bucket, _, key = rest.partition("/")
        if not _BUCKET.match(bucket):
            raise UriError(f"{raw}: '{bucket}' is not a valid S3 bucket name")
        path = _clean_path(key, raw, allow_empty=True)
        return Uri(raw, scheme, bucket, path + "/" if raw.endswith("/") and path else path)
    parts = urlsplit(raw)
    if not parts.hostname:
        raise UriError(f"{raw}: no host")
    _clean_path(parts.path, raw, allow_empty=True)
    return Uri(raw, scheme, parts.netloc, parts.path)


def _parse_git(raw: str) -> Uri:
    body, sep, path = raw[len("git+"):].partition("#")
    url, at, rev = body.rpartition("@")
    if not sep or not at or not url or not rev or "/" not in url.partition("://")[2]:
        raise UriError(f"{raw}: expected git+URL@REV#PATH (e.g. git+https://host/repo.git@main#data/x.tsv)")
    if url.startswith("-"):
        raise UriError(f"{raw}: a repository URL cannot start with '-'")
    if rev.startswith("-") or any(c.isspace() for c in rev):
        raise UriError(f"{raw}: '{rev}' is not a valid git revision")
    return Uri(raw, "git", url, _clean_path(path, raw, allow_empty=True), rev)
