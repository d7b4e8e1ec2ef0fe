"""S3Source against a real SeaweedFS server: fetch, fingerprint, cheap re-checks, prefixes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from conftest import source_context

# Test arguments named like the imported fixtures are how pytest injects them, not redefinitions.
from s3fixture import S3Server

from mlpipe.core.errors import FetchError
from mlpipe.core.hashing import md5_manifest
from mlpipe.core.uri import parse_uri
from mlpipe.home.settings import load_settings
from mlpipe.sources import Probe, SourceContext
from mlpipe.sources.s3 import S3Source, relative_path


@pytest.fixture
def context(tmp_path: Path, s3_server: S3Server, s3_env: dict[str, str]) -> SourceContext:
    settings = load_settings(
        env={"MLPIPE_HOME": str(tmp_path / "home"), "MLPIPE_S3_ENDPOINT_URL": s3_server.endpoint_url}
    )
    return source_context(settings)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def record_calls(source: S3Source) -> list[str]:
    """S3 operations the source's client sends from now on (HeadObject, GetObject, ...)."""
    calls: list[str] = []

    def on_call(model: Any, **_: Any) -> None:
        calls.append(model.name)

    source.client.meta.events.register("before-call.s3", on_call)
    return calls


def test_object_is_fetched_and_fingerprinted(context: SourceContext, s3_server: S3Server, s3_bucket: str) -> None:
    body = b"a\tb\n"
    s3_server.client().put_object(Bucket=s3_bucket, Key="data/train.tsv", Body=body)
    uri = parse_uri(f"s3://{s3_bucket}/data/train.tsv")
    source = S3Source(context)

    probe = source.probe(uri)
    fetched = source.fetch(uri)

    assert probe == Probe(f"{md5(body)}:4", None)  # not downloaded yet: content md5 unknown
    assert fetched.path.read_bytes() == body
    assert fetched.fingerprint == md5(body)
    assert fetched.version == probe.version
    assert fetched.path.is_relative_to(context.settings.download_dir)


def test_unchanged_object_costs_one_head_and_no_download(
    context: SourceContext, s3_server: S3Server, s3_bucket: str
) -> None:
    s3_server.client().put_object(Bucket=s3_bucket, Key="model.bin", Body=b"weights" * 1000)
    uri = parse_uri(f"s3://{s3_bucket}/model.bin")
    first_run = S3Source(context)
    first_calls = record_calls(first_run)
    first = first_run.fetch(uri)
    inode = first.path.stat().st_ino

    next_run = S3Source(context)  # a new run: nothing memoised in memory, only the download cache
    calls = record_calls(next_run)
    probe = next_run.probe(uri)
    again = next_run.fetch(uri)

    assert "GetObject" in first_calls
    assert calls == ["HeadObject"]  # the probe; fetch reuses it and the cached copy
    assert probe == Probe(first.version, first.fingerprint, first.path)
    assert again == first
    assert again.path.stat().st_ino == inode


def test_overwritten_object_gets_a_new_version_and_content(
    context: SourceContext, s3_server: S3Server, s3_bucket: str
) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="x.txt", Body=b"old!")
    uri = parse_uri(f"s3://{s3_bucket}/x.txt")
    old = S3Source(context).fetch(uri)

    client.put_object(Bucket=s3_bucket, Key="x.txt", Body=b"new!")  # same size, other ETag
    source = S3Source(context)
    probe = source.probe(uri)
    new = source.fetch(uri)

    assert probe.version != old.version and probe.fingerprint is None
    assert new.path.read_bytes() == b"new!"
    assert new.fingerprint == md5(b"new!") and new.version == probe.version


def test_prefix_becomes_a_folder(context: SourceContext, s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    for key, body in {"ds/a.txt": b"A", "ds/sub/b.txt": b"BB", "ds/empty/": b"", "dsx/c.txt": b"C"}.items():
        client.put_object(Bucket=s3_bucket, Key=key, Body=body)
    uri = parse_uri(f"s3://{s3_bucket}/ds/")

    fetched = S3Source(context).fetch(uri)

    files = sorted(p.relative_to(fetched.path).as_posix() for p in fetched.path.rglob("*") if p.is_file())
    assert files == ["a.txt", "sub/b.txt"]  # the folder marker and the sibling prefix are not included
    assert (fetched.path / "sub/b.txt").read_bytes() == b"BB"
    assert fetched.fingerprint == md5_manifest([("a.txt", md5(b"A")), ("sub/b.txt", md5(b"BB"))])
    assert fetched.version.startswith("prefix:")

    next_run = S3Source(context)
    calls = record_calls(next_run)
    assert next_run.fetch(uri) == fetched
    assert calls == ["ListObjectsV2"]


def test_changed_object_under_prefix_changes_the_version(
    context: SourceContext, s3_server: S3Server, s3_bucket: str
) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="ds/a.txt", Body=b"1")
    uri = parse_uri(f"s3://{s3_bucket}/ds/")
    before = S3Source(context).fetch(uri)
    client.put_object(Bucket=s3_bucket, Key="ds/b.txt", Body=b"2")

    after = S3Source(context).fetch(uri)

    assert after.version != before.version
    assert sorted(p.name for p in after.path.iterdir()) == ["a.txt", "b.txt"]


@pytest.mark.parametrize(
    ("path", "message"),
    [("missing.txt", "no such key"), ("missing/", "no objects under this prefix")],
)
def test_missing_data_is_a_fetch_error(context: SourceContext, s3_bucket: str, path: str, message: str) -> None:
    uri = parse_uri(f"s3://{s3_bucket}/{path}")
    with pytest.raises(FetchError, match=f"^s3://{s3_bucket}/{path}: {message}$"):
        S3Source(context).probe(uri)


@pytest.mark.parametrize(
    ("prefix", "key", "expected"),
    [("ds/", "ds/a.txt", "a.txt"), ("ds/", "ds/x/y", "x/y"), ("ds/", "ds/", None), ("ds/", "ds/dir/", None)],
)
def test_relative_path(prefix: str, key: str, expected: str | None) -> None:
    assert relative_path(parse_uri(f"s3://bkt/{prefix}"), key) == expected


@pytest.mark.parametrize("key", ["ds/../etc/passwd", "ds//etc/passwd", "ds/./x", "ds/a/.."])
def test_relative_path_rejects_keys_that_escape_or_alias(key: str) -> None:
    with pytest.raises(FetchError, match=r"^s3://bkt/ds/: key '.*' cannot become a local path"):
        relative_path(parse_uri("s3://bkt/ds/"), key)
