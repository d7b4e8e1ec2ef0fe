"""Shared S3 access: the client from settings, error translation, and the few calls MLPipe makes.

    endpoint   setting S3_ENDPOINT_URL, else ~/.s3cfg `host_base`, else AWS itself
    keys       the standard AWS chain (env, ~/.aws, SSO, instance role), else ~/.s3cfg

botocore's exceptions never leave this module: `translated()` turns them into FetchError (or
the StoreError the mirror asks for) with a message that names the URI or the endpoint and never
a credential. boto3 is imported inside functions so that `import mlpipe.remote.s3` stays cheap.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mlpipe.core.errors import FetchError, RunError

if TYPE_CHECKING:
    from mlpipe.home.settings import Settings

S3Client = Any  # botocore's generated client class; typed stubs are not a runtime dependency
MULTIPART_THRESHOLD = 64 * 1024 * 1024
MD5_METADATA = "mlpipe-md5"
_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
_DENIED_CODES = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"}


@dataclass(frozen=True)
class ObjectInfo:
    """One object as HEAD or a listing reports it; `etag` without quotes."""

    key: str
    etag: str
    size: int
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def is_multipart(self) -> bool:
        """A multipart ETag ("md5-of-md5s-N") is not the content md5."""
        return "-" in self.etag


def s3cfg_path() -> Path:
    return Path.home() / ".s3cfg"


def read_s3cfg(path: Path | None = None) -> dict[str, str]:
    """The `[default]` section of an s3cmd config, or {} when there is none."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(path or s3cfg_path(), encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return {}
    return dict(parser["default"]) if parser.has_section("default") else {}


def endpoint_url(settings: Settings, s3cfg: dict[str, str]) -> str | None:
    """S3_ENDPOINT_URL, else s3cmd's `host_base` (http:// unless `use_https = True`), else None (AWS)."""
    if settings["S3_ENDPOINT_URL"]:
        return str(settings["S3_ENDPOINT_URL"]).rstrip("/")
    host = s3cfg.get("host_base", "").strip()
    if not host or host.endswith("amazonaws.com"):
        return None
    if "://" in host:
        return host.rstrip("/")
    scheme = "https" if s3cfg.get("use_https", "").strip().lower() == "true" else "http"
    return f"{scheme}://{host.rstrip('/')}"


def make_client(
    settings: Settings, kind: type[RunError] = FetchError, *, max_pool_connections: int = 10,
    raw_timestamps: bool = False, transfers: bool = True,
) -> S3Client:
    """A boto3 S3 client: endpoint and credentials as above, path-style for custom endpoints.

    `max_pool_connections` should cover the threads that share the client (boto3 clients are
    thread-safe; a pool smaller than the threads makes urllib3 discard connections).
    `raw_timestamps` leaves timestamps (a listing's LastModified) as strings.
    `transfers=False` gives a plain botocore client, without boto3's `upload_file` and
    `download_file`: importing boto3 (and s3transfer) takes longer than everything a
    nothing-to-do sync does with it.
    """
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    s3cfg = read_s3cfg()
    endpoint = endpoint_url(settings, s3cfg)
    config = Config(
        connect_timeout=5,
        read_timeout=60,
        retries={"mode": "standard", "max_attempts": 3},
        s3={"addressing_style": "path"} if endpoint else {},
        max_pool_connections=max_pool_connections,
    )
    try:
        core = botocore.session.get_session()
        if raw_timestamps:
            # NOTE: dateutil parses each listed object's LastModified, ~0.5 ms a key: most of the
            # time of a 1,000-key listing for a caller that never looks at it.
            core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
        keys: dict[str, str] = {}
        if core.get_credentials() is None and s3cfg.get("access_key") and s3cfg.get("secret_key"):
            keys = {"aws_access_key_id": s3cfg["access_key"], "aws_secret_access_key": s3cfg["secret_key"]}
        region = core.get_config_variable("region") or "us-east-1"
        if not transfers:
            return core.create_client("s3", endpoint_url=endpoint, region_name=region, config=config, **keys)
        import boto3

        session = boto3.session.Session(botocore_session=core)
        return session.client("s3", endpoint_url=endpoint, region_name=region, config=config, **keys)
    except BotoCoreError as exc:  # a broken AWS profile or config file; messages carry no secrets
        raise kind(f"cannot set up the S3 client for {endpoint or 'AWS'}: {exc}") from exc


def describe_endpoint(client: S3Client) -> str:
    """scheme://host:port of the client's endpoint (no path, never credentials)."""
    parts = urlsplit(client.meta.endpoint_url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def translate(exc: Exception, what: str, endpoint: str, kind: type[RunError] = FetchError) -> RunError:
    """Map a boto3/botocore exception about `what` (an s3:// URI) to `kind` with a safe message."""
    from boto3.exceptions import RetriesExceededError, S3UploadFailedError
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, NoCredentialsError

    if isinstance(exc, S3UploadFailedError) and isinstance(exc.__context__, Exception):
        return translate(exc.__context__, what, endpoint, kind)
    if isinstance(exc, RetriesExceededError) and isinstance(exc.last_exception, Exception):
        return translate(exc.last_exception, what, endpoint, kind)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return kind(f"{what}: no such bucket at {endpoint}")
        if code in _MISSING_CODES:
            return kind(f"{what}: no such key")
        if code in _DENIED_CODES or status == 403:
            return kind(f"{what}: access denied by {endpoint} (check the credentials for this endpoint)")
        return kind(f"{what}: S3 error {code or status} from {endpoint}")
    if isinstance(exc, NoCredentialsError):
        return kind(f"{what}: no S3 credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.s3cfg)")
    if isinstance(exc, ConnectionError | HTTPClientError):
        return kind(f"{what}: cannot reach S3 endpoint {endpoint} ({type(exc).__name__})")
    return kind(f"{what}: S3 transfer failed: {type(exc).__name__}")


@contextmanager
def translated(client: S3Client, what: str, kind: type[RunError] = FetchError) -> Iterator[None]:
    """Re-raise any boto3/botocore exception inside the block as `kind` (`raise ... from exc`)."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError, Boto3Error) as exc:
        raise translate(exc, what, describe_endpoint(client), kind) from exc


def _strip_etag(etag: str) -> str:
    return etag.strip('"')


def head(client: S3Client, bucket: str, key: str, kind: type[RunError] = FetchError) -> ObjectInfo | None:
    """One HEAD request; None when the key does not exist."""
    from botocore.exceptions import ClientError

    with translated(client, f"s3://{bucket}/{key}", kind):
        try:
            reply = client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING_CODES:
                return None
            raise
    return ObjectInfo(key, _strip_etag(reply["ETag"]), int(reply["ContentLength"]), dict(reply.get("Metadata", {})))


def list_objects(client: S3Client, bucket: str, prefix: str, kind: type[RunError] = FetchError) -> list[ObjectInfo]:
    """Every object under `prefix`, from one paginated listing (1,000 keys per request)."""
    found = []
    with translated(client, f"s3://{bucket}/{prefix}", kind):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                found.append(ObjectInfo(item["Key"], _strip_etag(item["ETag"]), int(item["Size"])))
    return found


def _transfer_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD)


def download_file(client: S3Client, bucket: str, key: str, dest: Path, kind: type[RunError] = FetchError) -> None:
    """Download one object to `dest` (managed transfer: ranged GETs for large objects)."""
    with translated(client, f"s3://{bucket}/{key}", kind):
        client.download_file(bucket, key, os.fspath(dest), Config=_transfer_config())


def upload_file(
    client: S3Client,
    path: Path,
    bucket: str,
    key: str,
    metadata: dict[str, str] | None = None,
    kind: type[RunError] = FetchError,
) -> None:
    """Upload `path` to `key`; S3 publishes an object only once it is complete (PUT is atomic)."""
    extra = {"Metadata": metadata} if metadata else None
    with translated(client, f"s3://{bucket}/{key}", kind):
        client.upload_file(os.fspath(path), bucket, key, ExtraArgs=extra, Config=_transfer_config())
