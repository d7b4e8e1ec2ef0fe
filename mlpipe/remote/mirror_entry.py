"""What a mirror entry says about itself, and the checks a download must pass (pure: no I/O).

    file entry     data/<data_hash>: the object's metadata is its sidecar
                   (mlpipe-md5, mlpipe-size, mlpipe-job-hash, mlpipe-created)
    folder entry   data/<data_hash>.json: {format, data_hash, kind: "folder", md5, size, job_hash,
                   created, manifest: {relpath: {md5, size}}}, md5 = md5_manifest of the files

>>> parse_mirror_url("s3://team-ml/mlpipe")
('team-ml', 'mlpipe/')
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from mlpipe.core.errors import UriError, UsageError
from mlpipe.remote.s3 import MD5_METADATA

SIDECAR_FORMAT = 1
FILE, FOLDER = "file", "folder"
META = {"md5": MD5_METADATA, "size": "mlpipe-size", "job_hash": "mlpipe-job-hash", "created": "mlpipe-created"}


class Corrupt(Exception):
    """A mirror entry that cannot be used: truncated, overwritten, or half written."""


@dataclass(frozen=True)
class Sidecar:
    """A mirror entry's description; `manifest` maps a folder's relpath to (size, md5)."""

    data_hash: str
    kind: str
    md5: str
    size: int
    job_hash: str
    created: float
    manifest: dict[str, tuple[int, str]] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, str]:
        return {META[name]: str(getattr(self, name)) for name in META}

    def to_json(self) -> bytes:
        data = {"format": SIDECAR_FORMAT, "data_hash": self.data_hash, "kind": self.kind, "md5": self.md5,
                "size": self.size, "job_hash": self.job_hash, "created": self.created,
                "manifest": {rel: {"md5": md5, "size": size} for rel, (size, md5) in sorted(self.manifest.items())}}
        return json.dumps(data, indent=1, sort_keys=True).encode()


def sidecar_from_metadata(data_hash: str, metadata: dict[str, str]) -> Sidecar:
    """A file entry's sidecar from its object's metadata; Corrupt when it is not there."""
    try:
        return Sidecar(data_hash, FILE, metadata[META["md5"]], int(metadata[META["size"]]),
                       metadata[META["job_hash"]], float(metadata[META["created"]]))
    except (KeyError, ValueError):
        raise Corrupt("the object has no MLPipe metadata (overwritten by something else?)") from None


def parse_sidecar(data_hash: str, raw: bytes) -> Sidecar:
    """A folder's sidecar; Corrupt when unreadable or when a path would leave the folder."""
    try:
        data = json.loads(raw)
        manifest = {_safe_relpath(rel): (int(v["size"]), str(v["md5"])) for rel, v in data["manifest"].items()}
        sidecar = Sidecar(data_hash, str(data["kind"]), str(data["md5"]), int(data["size"]), str(data["job_hash"]),
                          float(data["created"]), manifest)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise Corrupt(f"unreadable sidecar ({type(exc).__name__}: {exc})") from None
    if sidecar.kind != FOLDER or sum(size for size, _ in manifest.values()) != sidecar.size:
        raise Corrupt("unreadable sidecar (not a folder, or sizes that do not add up)")
    return sidecar


def _safe_relpath(rel: str) -> str:
    if "\0" in rel or any(part in ("", ".", "..") for part in rel.split("/")):
        raise ValueError(f"unsafe path {rel!r} in the manifest")
    return rel


def parse_mirror_url(url: str) -> tuple[str, str]:
    """`s3://bucket/prefix` -> ("bucket", "prefix/"); UsageError for anything else."""
    from mlpipe.core.uri import parse_uri

    try:
        uri = parse_uri(url)
    except UriError as exc:
        raise UsageError(f"setting S3_MIRROR: {exc}") from None
    if uri.scheme != "s3":
        raise UsageError(f"setting S3_MIRROR: {url!r} is not an s3://bucket/prefix URI")
    prefix = uri.path.strip("/")
    return uri.root, prefix + "/" if prefix else ""


def check_size(key: str, size: int, want_size: int) -> None:
    if size != want_size:
        raise Corrupt(f"{key} has {size} bytes, expected {want_size} (truncated or overwritten)")


def check_entry(key: str, size: int, md5: str, want_size: int, want_md5: str) -> None:
    check_size(key, size, want_size)
    if md5 != want_md5:
        raise Corrupt(f"{key} has md5 {md5}, expected {want_md5} (overwritten or damaged)")
