"""`s3://BUCKET/KEY` (one object) and `s3://BUCKET/PREFIX/` (a folder): fetched and exported.

    probe   one HEAD (object) or one paginated listing (prefix) -> version "ETag:size"
            (a prefix: "prefix:" + md5 over sorted "relkey etag size" lines)
    fetch   the download cache's copy when the version matches (no GET), else a download
    export  an upload, skipped when the destination already holds the same bytes

A run checks each URI once: `fetch` reuses what `probe` learned, so an unchanged input costs
one request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mlpipe.core.errors import FetchError, UriError
from mlpipe.core.hashing import md5_text, walk_files
from mlpipe.core.uri import Uri
from mlpipe.remote import s3
from mlpipe.sources import Fetched, Probe, SourceContext
from mlpipe.sources.download_cache import DownloadCache


@dataclass(frozen=True)
class Remote:
    """What one probe saw: the version and the objects to download (relative path -> object)."""

    version: str
    objects: dict[str, s3.ObjectInfo]


def relative_path(uri: Uri, key: str) -> str | None:
    """`key` below the prefix `uri` names, as a safe relative path; None for a folder marker ("dir/")."""
    rel = key[len(uri.path) :]
    if rel == "" or rel.endswith("/"):
        return None
    parts = rel.split("/")
    if any(part in ("", ".", "..") for part in parts):  # also rejects an absolute "/x"
        raise FetchError(f"{uri}: key '{key}' cannot become a local path (empty, '.' or '..' component)")
    return str(PurePosixPath(*parts))


def prefix_version(objects: dict[str, s3.ObjectInfo]) -> str:
    return "prefix:" + md5_text("".join(f"{rel} {o.etag} {o.size}\n" for rel, o in sorted(objects.items())))


class S3Source:
    """An S3 object or prefix; its version is ETag + size, its fingerprint the content md5."""

    def __init__(self, context: SourceContext):
        self.context = context
        self.cache = DownloadCache(context.settings.download_dir, context.digests)
        self._client: s3.S3Client | None = None
        self._remotes: dict[str, Remote] = {}
        self._lock = threading.Lock()

    @property
    def client(self) -> s3.S3Client:
        """Created on first use (boto3 clients are thread-safe)."""
        with self._lock:
            if self._client is None:
                self._client = s3.make_client(self.context.settings)
            return self._client

    def _remote(self, uri: Uri) -> Remote:
        if uri.raw not in self._remotes:
            self._remotes[uri.raw] = self._list(uri) if uri.is_folder else self._head(uri)
        return self._remotes[uri.raw]

    def _head(self, uri: Uri) -> Remote:
        if not uri.path:
            raise UriError(f"{uri}: names a bucket, not an object (end it with '/' for every object in it)")
        info = s3.head(self.client, uri.root, uri.path)
        if info is None:
            raise self._missing(uri)
        return Remote(f"{info.etag}:{info.size}", {"": info})

    def _missing(self, uri: Uri) -> FetchError:
        """HEAD's 404 has no body to say whether the key or the bucket is missing; one more request does."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=uri.root)
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return FetchError(f"{uri}: no such bucket at {s3.describe_endpoint(self.client)}")
        except BotoCoreError:
            pass  # cannot tell: the key is what was asked for
        return FetchError(f"{uri}: no such key")

    def _list(self, uri: Uri) -> Remote:
        objects = {}
        for info in s3.list_objects(self.client, uri.root, uri.path):
            rel = relative_path(uri, info.key)
            if rel is not None:
                objects[rel] = info
        if not objects:
            raise FetchError(f"{uri}: no objects under this prefix")
        return Remote(prefix_version(objects), objects)

    def _cached(self, uri: Uri, version: str) -> Fetched | None:
        cached = self.cache.lookup(uri, version)
        return cached if cached is not None and cached.path.exists() else None

    def probe(self, uri: Uri) -> Probe:
        remote = self._remote(uri)
        cached = self._cached(uri, remote.version)
        return Probe(remote.version, cached.fingerprint if cached else None, cached.path if cached else None)

    def fetch(self, uri: Uri) -> Fetched:
        remote = self._remote(uri)
        cached = self._cached(uri, remote.version)
        if cached is not None:
            return cached
        return self.cache.store(uri, remote.version, lambda dest: self._download(uri, remote, dest))

    def _download(self, uri: Uri, remote: Remote, dest: Path) -> None:
        if not uri.is_folder:
            self._download_one(uri.root, remote.objects[""], dest)
            return
        for rel, info in remote.objects.items():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            self._download_one(uri.root, info, target)

    def _download_one(self, bucket: str, info: s3.ObjectInfo, dest: Path) -> None:
        s3.download_file(self.client, bucket, info.key, dest)
        size = dest.stat().st_size
        if size != info.size:
            raise FetchError(f"s3://{bucket}/{info.key}: downloaded {size} bytes, expected {info.size}")

    def export(self, uri: Uri, path: Path, fingerprint: str) -> bool:
        """Upload a file to an object, or a folder's files under a prefix; False when all were there."""
        self._remotes.pop(uri.raw, None)  # a later probe in this run must see what we wrote
        if path.is_dir():
            prefix = uri.path if uri.is_folder or not uri.path else uri.path + "/"
            return self._export_folder(uri.root, prefix, path)
        if uri.is_folder or not uri.path:
            raise UriError(f"{uri}: a file output needs an object URI (without a trailing '/')")
        existing = s3.head(self.client, uri.root, uri.path)
        return self._upload(uri.root, uri.path, path, fingerprint, existing)

    def _export_folder(self, bucket: str, prefix: str, folder: Path) -> bool:
        existing = {info.key: info for info in s3.list_objects(self.client, bucket, prefix)}
        written = False
        for rel, file in walk_files(folder):
            key = prefix + rel
            info = existing.get(key)
            if info is not None and info.is_multipart:
                info = s3.head(self.client, bucket, key)  # listings carry no metadata
            written |= self._upload(bucket, key, file, self.context.digests.file_md5(file), info)
        return written

    def _upload(self, bucket: str, key: str, file: Path, md5: str, existing: s3.ObjectInfo | None) -> bool:
        if existing is not None and holds(existing, file.stat().st_size, md5):
            return False
        s3.upload_file(self.client, file, bucket, key, metadata={s3.MD5_METADATA: md5})
        return True


def holds(info: s3.ObjectInfo, size: int, md5: str) -> bool:
    """True when the object has these bytes: same size and md5 (from the ETag or our metadata)."""
    if info.size != size:
        return False
    if s3.MD5_METADATA in info.metadata:
        return info.metadata[s3.MD5_METADATA] == md5
    return not info.is_multipart and info.etag == md5
