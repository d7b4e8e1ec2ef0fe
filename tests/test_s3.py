"""mlpipe.remote.s3 against a real SeaweedFS server: client settings, ~/.s3cfg fallback, error translation."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Test arguments named like the imported fixtures are how pytest injects them, not redefinitions.
from s3fixture import S3Server, free_ports

from mlpipe.core.errors import FetchError, StoreError
from mlpipe.home.settings import Settings, load_settings
from mlpipe.remote import s3


def make_settings(tmp_path: Path, endpoint: str = "") -> Settings:
    env = {"MLPIPE_HOME": str(tmp_path / "home")}
    if endpoint:
        env["MLPIPE_S3_ENDPOINT_URL"] = endpoint
    return load_settings(env=env)


def clear_aws_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """No AWS_* variables and a fake HOME: boto3's chain finds nothing of this machine."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("HOME", str(home))


def test_import_is_cheap() -> None:
    code = "import sys, mlpipe.remote.s3, mlpipe.sources.s3; print('boto3' in sys.modules or 'botocore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize(
    ("setting", "s3cfg", "expected"),
    [
        ("http://setting:1/", {"host_base": "cfg:2"}, "http://setting:1"),
        ("", {"host_base": "cfg:2"}, "http://cfg:2"),
        ("", {"host_base": "cfg:2", "use_https": "True"}, "https://cfg:2"),
        ("", {"host_base": "https://cfg:3/"}, "https://cfg:3"),
        ("", {"host_base": "s3.amazonaws.com"}, None),
        ("", {}, None),
    ],
)
def test_endpoint_url_precedence(tmp_path: Path, setting: str, s3cfg: dict[str, str], expected: str | None) -> None:
    assert s3.endpoint_url(make_settings(tmp_path, setting), s3cfg) == expected


def test_client_from_settings_reaches_the_endpoint(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str, s3_env: dict[str, str]
) -> None:
    client = s3.make_client(make_settings(tmp_path, s3_server.endpoint_url))
    assert client.meta.endpoint_url == s3_server.endpoint_url
    assert client.meta.config.s3["addressing_style"] == "path"
    client.put_object(Bucket=s3_bucket, Key="a/b.txt", Body=b"hello")
    info = s3.head(client, s3_bucket, "a/b.txt")
    assert info == s3.ObjectInfo("a/b.txt", "5d41402abc4b2a76b9719d911017c592", 5, {})
    assert [o.key for o in s3.list_objects(client, s3_bucket, "a/")] == ["a/b.txt"]


def test_s3cfg_supplies_endpoint_and_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server, s3_bucket: str
) -> None:
    home = tmp_path / "userhome"
    home.mkdir()
    host = s3_server.endpoint_url.removeprefix("http://")
    (home / ".s3cfg").write_text(
        "[default]\n"
        f"access_key = {s3_server.access_key}\n"
        f"secret_key = {s3_server.secret_key}\n"
        f"host_base = {host}\n"
        f"host_bucket = {host}\n"
        "use_https = False\n"
        "website_endpoint = http://%(bucket)s.s3-website-%(location)s.amazonaws.com/\n"
    )
    clear_aws_env(monkeypatch, home)
    s3_server.client().put_object(Bucket=s3_bucket, Key="k", Body=b"x")

    client = s3.make_client(make_settings(tmp_path))

    assert client.meta.endpoint_url == s3_server.endpoint_url
    assert s3.head(client, s3_bucket, "k").size == 1


@pytest.mark.parametrize("wrong", ["secret", "access_key"])
def test_wrong_credentials_are_denied_without_leaking_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server, s3_bucket: str, wrong: str
) -> None:
    secret = "wrong-secret-value-that-must-not-leak"
    clear_aws_env(monkeypatch, tmp_path)
    key_id = "UNKNOWNKEYID" if wrong == "access_key" else s3_server.access_key
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    client = s3.make_client(make_settings(tmp_path, s3_server.endpoint_url))

    with pytest.raises(FetchError) as caught:
        s3.list_objects(client, s3_bucket, "")

    message = str(caught.value)
    assert message.startswith(f"s3://{s3_bucket}/: access denied by {s3_server.endpoint_url}")
    assert "check the credentials" in message
    assert secret not in message and s3_server.secret_key not in message
    assert isinstance(caught.value.__cause__, Exception)  # the botocore error stays chained for MLPIPE_DEBUG


def test_missing_key_and_bucket(tmp_path: Path, s3_server: S3Server, s3_bucket: str, s3_env: dict[str, str]) -> None:
    client = s3.make_client(make_settings(tmp_path, s3_server.endpoint_url))
    assert s3.head(client, s3_bucket, "nope.txt") is None
    with pytest.raises(FetchError, match=rf"^s3://{s3_bucket}/nope.txt: no such key$"):
        s3.download_file(client, s3_bucket, "nope.txt", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(FetchError, match=r"^s3://no-such-bucket-here/x/: no such bucket at http://127\.0\.0\.1:"):
        s3.list_objects(client, "no-such-bucket-here", "x/")


def test_unreachable_endpoint_fails_fast_naming_it(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str, s3_env: dict[str, str]
) -> None:
    # the baseline, measured here: one answered request (a missing key), as a loaded machine makes it
    answered = s3.make_client(make_settings(tmp_path, s3_server.endpoint_url))
    began = time.monotonic()
    assert s3.head(answered, s3_bucket, "nope.txt") is None
    one_request = time.monotonic() - began
    endpoint = f"http://127.0.0.1:{free_ports(1)[0]}"  # nothing listens there
    client = s3.make_client(make_settings(tmp_path, endpoint))
    began = time.monotonic()
    with pytest.raises(StoreError, match=rf"^s3://b-1/k: cannot reach S3 endpoint {endpoint} "):
        s3.head(client, "b-1", "k", kind=StoreError)
    elapsed = time.monotonic() - began
    attempts = client.meta.config.retries["total_max_attempts"]
    back_off = sum(2**i for i in range(attempts - 1))  # botocore's standard mode waits at most 1 s, 2 s, 4 s, ...
    assert elapsed < attempts * one_request + back_off, f"{elapsed:.2f}s; one request {one_request:.2f}s"


def test_stopped_server_is_reported_then_serves_again(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str, s3_env: dict[str, str]
) -> None:
    client = s3.make_client(make_settings(tmp_path, s3_server.endpoint_url))
    client.put_object(Bucket=s3_bucket, Key="kept", Body=b"data")
    s3_server.stop()
    try:
        with pytest.raises(FetchError, match=f"cannot reach S3 endpoint {s3_server.endpoint_url}"):
            s3.head(client, s3_bucket, "kept")
    finally:
        s3_server.start()
    assert s3.head(client, s3_bucket, "kept").size == 4
