"""Exporting job outputs to s3:// (real SeaweedFS) and local:// URIs: written once, skipped when equal."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import source_context

# Test arguments named like the imported fixtures are how pytest injects them, not redefinitions.
from s3fixture import S3Server

from mlpipe.core.errors import StoreError, UriError
from mlpipe.core.uri import parse_uri
from mlpipe.home.settings import load_settings
from mlpipe.remote import s3
from mlpipe.sources import SourceContext, Sources


@pytest.fixture
def context(tmp_path: Path, s3_server: S3Server, s3_env: dict[str, str]) -> SourceContext:
    settings = load_settings(
        env={"MLPIPE_HOME": str(tmp_path / "home"), "MLPIPE_S3_ENDPOINT_URL": s3_server.endpoint_url}
    )
    return source_context(settings)


@pytest.fixture
def local_context(tmp_path: Path) -> SourceContext:
    settings = load_settings(env={"MLPIPE_HOME": str(tmp_path / "home")})
    return source_context(settings)


def export(context: SourceContext, uri: str, path: Path) -> bool:
    """What the engine does after a job: export through `Sources` with the output's fingerprint."""
    return Sources(context).export(parse_uri(uri), path, context.digests.fingerprint(path))


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        write(root / rel, data)
    return root


def count_puts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Keys uploaded through mlpipe.remote.s3.upload_file from now on."""
    uploaded: list[str] = []
    real = s3.upload_file

    def spy(client: Any, path: Path, bucket: str, key: str, *args: Any, **kwargs: Any) -> None:
        uploaded.append(key)
        real(client, path, bucket, key, *args, **kwargs)

    monkeypatch.setattr(s3, "upload_file", spy)
    return uploaded


# --- s3:// -------------------------------------------------------------------------------------


def test_s3_export_writes_then_skips_same_content(
    context: SourceContext, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    model = write(tmp_path / "model.pkl", b"model-v1")
    uri = f"s3://{s3_bucket}/models/bow.pkl"

    assert export(context, uri, model) is True
    assert export(context, uri, model) is False

    obj = s3_server.client().get_object(Bucket=s3_bucket, Key="models/bow.pkl")
    assert obj["Body"].read() == b"model-v1"
    assert obj["Metadata"] == {s3.MD5_METADATA: context.digests.fingerprint(model)}
    write(model, b"model-v2")
    assert export(context, uri, model) is True
    assert s3_server.client().get_object(Bucket=s3_bucket, Key="models/bow.pkl")["Body"].read() == b"model-v2"


def test_s3_export_recognises_an_object_uploaded_by_another_tool(
    context: SourceContext, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    s3_server.client().put_object(Bucket=s3_bucket, Key="x.bin", Body=b"same bytes")  # no mlpipe metadata
    assert export(context, f"s3://{s3_bucket}/x.bin", write(tmp_path / "x", b"same bytes")) is False


def test_s3_export_of_a_multipart_object_compares_the_stored_md5(
    context: SourceContext,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    monkeypatch.setattr(s3, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)
    big = write(tmp_path / "big.bin", os.urandom(6 * 1024 * 1024))
    uri = f"s3://{s3_bucket}/big.bin"

    assert export(context, uri, big) is True
    etag = s3_server.client().head_object(Bucket=s3_bucket, Key="big.bin")["ETag"]
    assert "-" in etag  # multipart: the ETag is not the content md5
    assert export(context, uri, big) is False


def test_s3_export_of_a_folder_uploads_only_what_changed(
    context: SourceContext,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    folder = write_tree(tmp_path / "out", {"a.txt": b"A", "sub/b.txt": b"B"})
    uri = f"s3://{s3_bucket}/runs/latest/"
    uploaded = count_puts(monkeypatch)

    assert export(context, uri, folder) is True
    assert export(context, uri, folder) is False
    write(folder / "sub/b.txt", b"B2")
    assert export(context, uri, folder) is True

    assert uploaded == ["runs/latest/a.txt", "runs/latest/sub/b.txt", "runs/latest/sub/b.txt"]
    listing = s3.list_objects(s3_server.client(), s3_bucket, "runs/latest/")
    assert [o.key for o in listing] == ["runs/latest/a.txt", "runs/latest/sub/b.txt"]


def test_s3_export_of_a_file_to_a_prefix_is_refused(context: SourceContext, tmp_path: Path, s3_bucket: str) -> None:
    with pytest.raises(UriError, match="a file output needs an object URI"):
        export(context, f"s3://{s3_bucket}/models/", write(tmp_path / "m", b"m"))


# --- local:// ----------------------------------------------------------------------------------


def local_uri(path: Path) -> str:
    return f"local:/{path}"  # local://ABS/PATH names /ABS/PATH


def test_local_export_writes_by_rename_then_skips(local_context: SourceContext, tmp_path: Path) -> None:
    src = write(tmp_path / "cache" / "abc123", b"v1")
    dest = tmp_path / "exports" / "deep" / "model.pkl"  # parents are created

    assert export(local_context, local_uri(dest), src) is True
    inode = dest.stat().st_ino
    assert export(local_context, local_uri(dest), src) is False
    assert dest.read_bytes() == b"v1" and dest.stat().st_ino == inode  # skipped: not rewritten

    write(src, b"v2")
    assert export(local_context, local_uri(dest), src) is True
    assert dest.read_bytes() == b"v2"
    assert dest.stat().st_ino != inode  # a new file renamed over the old, not rewritten in place
    assert os.listdir(dest.parent) == ["model.pkl"]  # no staging leftovers


def test_local_export_interrupted_copy_leaves_old_content(
    local_context: SourceContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = write(tmp_path / "exports" / "model.pkl", b"old content")
    src = write(tmp_path / "new", b"new content")

    def torn_copy(source: Path, target: Path) -> None:
        Path(target).write_bytes(b"new co")  # half written, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", torn_copy)
    with pytest.raises(StoreError, match="cannot export to .*No space left"):
        export(local_context, local_uri(dest), src)

    assert dest.read_bytes() == b"old content"
    assert os.listdir(dest.parent) == ["model.pkl"]


def test_local_export_of_a_folder_replaces_the_whole_tree(local_context: SourceContext, tmp_path: Path) -> None:
    dest = tmp_path / "exports" / "dataset"
    first = write_tree(tmp_path / "v1", {"a.txt": b"A", "old/x.txt": b"X"})
    second = write_tree(tmp_path / "v2", {"a.txt": b"A", "sub/b.txt": b"B"})

    assert export(local_context, local_uri(dest), first) is True
    assert export(local_context, local_uri(dest), first) is False
    assert export(local_context, local_uri(dest), second) is True

    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == ["a.txt", "sub/b.txt"]  # nothing of the old tree survives
    assert os.listdir(dest.parent) == ["dataset"]


def test_local_export_can_turn_a_file_into_a_folder(local_context: SourceContext, tmp_path: Path) -> None:
    dest = write(tmp_path / "exports" / "out", b"was a file")
    folder = write_tree(tmp_path / "tree", {"f.txt": b"F"})

    assert export(local_context, local_uri(dest), folder) is True
    assert (dest / "f.txt").read_bytes() == b"F"


def test_export_to_an_app_file_uri_is_refused(local_context: SourceContext, tmp_path: Path) -> None:
    with pytest.raises(UriError, match="cannot be exported to 'file' URIs"):
        export(local_context, "file://someapp/data/x.tsv", write(tmp_path / "x", b"x"))
