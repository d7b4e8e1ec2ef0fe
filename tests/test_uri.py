"""Tests for mlpipe.core.uri: every scheme of DESIGN.md parses; traversal and bad syntax are UriErrors."""

from __future__ import annotations

import pytest

from mlpipe.core.errors import UriError, UserError
from mlpipe.core.uri import Uri, is_uri, parse_uri, redact


@pytest.mark.parametrize(
    ("raw", "scheme", "root", "path", "rev"),
    [
        ("file://text_classification/data/train.tsv", "file", "text_classification", "data/train.tsv", ""),
        ("file://toy/data/sub/dir/", "file", "toy", "data/sub/dir", ""),
        ("file://toy/./data//seed.txt", "file", "toy", "data/seed.txt", ""),
        ("local://home/users/data/train_data.tsv", "local", "/", "/home/users/data/train_data.tsv", ""),
        ("local:///home/u/x", "local", "/", "/home/u/x", ""),
        ("http://www.example.com/train.data.tar.gz", "http", "www.example.com", "/train.data.tar.gz", ""),
        ("https://example.com:8443/a/b.csv?x=1", "https", "example.com:8443", "/a/b.csv", ""),
        ("s3://my-bucket/models/bow.pkl", "s3", "my-bucket", "models/bow.pkl", ""),
        ("s3://my-bucket/path/to/your/s3/file/test_room_nostopwords", "s3", "my-bucket",
         "path/to/your/s3/file/test_room_nostopwords", ""),
        ("s3://my.bucket-2/k", "s3", "my.bucket-2", "k", ""),
        ("git+https://github.com/org/repo.git@main#data/x.tsv", "git", "https://github.com/org/repo.git",
         "data/x.tsv", "main"),
        ("git+ssh://git@host/x.git@v1#data", "git", "ssh://git@host/x.git", "data", "v1"),
        ("git+file:///srv/repo.git@main#data/x.tsv", "git", "file:///srv/repo.git", "data/x.tsv", "main"),
        ("git+https://h/r.git@feature/new-data#d", "git", "https://h/r.git", "d", "feature/new-data"),
        ("git+https://h/r.git@0123abcd#", "git", "https://h/r.git", "", "0123abcd"),
    ],
)
def test_parse_uri_every_scheme(raw: str, scheme: str, root: str, path: str, rev: str) -> None:
    assert parse_uri(raw) == Uri(raw, scheme, root, path, rev)
    assert str(parse_uri(raw)) == raw


@pytest.mark.parametrize(
    ("raw", "path", "is_folder"),
    [
        ("s3://my-bucket/models/", "models/", True),
        ("s3://my-bucket/a/b/", "a/b/", True),
        ("s3://my-bucket/", "", True),
        ("s3://my-bucket/models", "models", False),
        ("s3://my-bucket/models/bow.pkl", "models/bow.pkl", False),
    ],
)
def test_s3_prefix_is_a_folder(raw: str, path: str, is_folder: bool) -> None:
    uri = parse_uri(raw)
    assert (uri.root, uri.path, uri.is_folder) == ("my-bucket", path, is_folder)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("clean_train", False),
        ("bow_model.v2", False),
        ("s3://b/k", True),
        ("file://app/data/x", True),
        ("git+https://h/r.git@main#x", True),
        ("ftp://host/x", True),  # a URI (with an unknown scheme, refused by parse_uri), not a data name
    ],
)
def test_is_uri_tells_uris_from_data_names(value: str, expected: bool) -> None:
    assert is_uri(value) is expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        # unknown scheme
        ("ftp://host/x", "unknown scheme 'ftp'"),
        ("gs://bucket/x", "unknown scheme 'gs'"),
        ("clean_train", "is not a URI"),
        # '..' traversal
        ("file://app/../../etc/passwd", "'..' is not allowed"),
        ("file://app/data/../../x", "'..' is not allowed"),
        ("file://app/..", "'..' is not allowed"),
        ("file://../etc/passwd", "expected file://APP/PATH"),
        ("file://./data/x", "expected file://APP/PATH"),
        ("local://home/u/../../etc/passwd", "'..' is not allowed"),
        ("local:///../etc", "'..' is not allowed"),
        ("s3://my-bucket/a/../../other", "'..' is not allowed"),
        ("s3://my-bucket/../x", "'..' is not allowed"),
        ("git+https://h/r.git@main#../secret", "'..' is not allowed"),
        ("git+https://h/r.git@main#data/../../x", "'..' is not allowed"),
        # missing paths
        ("file://app", "names no path"),
        ("file://app/", "names no path"),
        ("file:///data/x", "expected file://APP/PATH"),
        ("local://", "names no path"),
        # bad bucket names
        ("s3://My-Bucket/k", "not a valid S3 bucket name"),
        ("s3://ab/k", "not a valid S3 bucket name"),
        ("s3://-bucket/k", "not a valid S3 bucket name"),
        ("s3://bucket_name/k", "not a valid S3 bucket name"),
        ("s3:///k", "not a valid S3 bucket name"),
        ("s3://" + "b" * 64 + "/k", "not a valid S3 bucket name"),
        # git without a rev (or a path separator)
        ("git+https://h/r.git#data", "expected git+URL@REV#PATH"),
        ("git+ssh://git@host/x.git#data", "expected git+URL@REV#PATH"),
        ("git+https://user@h/r.git#data", "expected git+URL@REV#PATH"),
        ("git+https://h/r.git@#data", "expected git+URL@REV#PATH"),
        ("git+https://h/r.git@main", "expected git+URL@REV#PATH"),
        ("git+h/r.git@main#x", "expected git+URL@REV#PATH"),
        ("git+https://h/r.git@-x#d", "not a valid git revision"),
        ("git+https://h/r.git@ma in#d", "not a valid git revision"),
        # http without a host
        ("http:///x", "no host"),
    ],
)
def test_bad_uris_are_user_errors(raw: str, fragment: str) -> None:
    with pytest.raises(UriError) as info:
        parse_uri(raw)
    assert fragment in str(info.value)
    assert isinstance(info.value, UserError) and info.value.exit_code == 2
    if raw != "clean_train":
        assert redact(raw) in str(info.value)  # the message names the URI, without credentials


def test_credentials_never_appear_in_uri_errors() -> None:
    with pytest.raises(UriError) as info:
        parse_uri("https://alice:s3cret@/no-host")
    assert "s3cret" not in str(info.value) and "alice" not in str(info.value)
