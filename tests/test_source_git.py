"""GitSource against real repositories: a bare "server" repo and a working clone that pushes."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
from pathlib import Path

import pytest
from conftest import source_context
from gitremote import GitRemote
from pytest_httpserver import HTTPServer

from mlpipe.core.errors import FetchError, UriError
from mlpipe.core.hashing import md5_manifest, md5_text
from mlpipe.core.uri import Uri, parse_uri
from mlpipe.home.settings import load_settings
from mlpipe.sources.git import GitSource
from mlpipe.store.digests import DigestCache


class Remote(GitRemote):
    def uri(self, rev: str, path: str) -> Uri:  # type: ignore[override]
        return parse_uri(super().uri(rev, path))


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    return Remote(tmp_path)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def make_source(home: Path) -> GitSource:
    """A fresh source, as the next `ml runpipe` would build it."""
    settings = load_settings(env={"MLPIPE_HOME": str(home)})
    return GitSource(source_context(settings))


def mirror(source: GitSource, remote: Remote) -> Path:
    return source.mirrors / f"{md5_text(remote.url)}.git"


def fetch_head(source: GitSource, remote: Remote) -> Path:
    """Written by every `git fetch` into the mirror: its absence proves no fetch happened."""
    return mirror(source, remote) / "FETCH_HEAD"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_branch_input_is_fetched_then_known_without_download(remote: Remote, home: Path):
    sha = remote.commit({"data/train.tsv": "a\t1\n"})
    uri = remote.uri("main", "data/train.tsv")

    first = make_source(home)
    assert first.probe(uri).version == sha and first.probe(uri).fingerprint is None
    fetched = first.fetch(uri)
    assert fetched.path.read_text() == "a\t1\n"
    assert (fetched.version, fetched.fingerprint) == (sha, md5("a\t1\n"))

    fetch_head(first, remote).unlink()
    again = make_source(home)
    assert again.probe(uri).fingerprint == md5("a\t1\n")
    assert again.fetch(uri).path.read_text() == "a\t1\n"
    assert not fetch_head(again, remote).exists()


def test_a_moved_branch_gives_a_new_version_and_the_new_content(remote: Remote, home: Path):
    old_sha = remote.commit({"train.tsv": "old\n"})
    uri = remote.uri("main", "train.tsv")
    make_source(home).fetch(uri)
    new_sha = remote.commit({"train.tsv": "new\n"})

    source = make_source(home)
    probe = source.probe(uri)
    assert (probe.version, probe.fingerprint) == (new_sha, None) and new_sha != old_sha
    fetched = source.fetch(uri)
    assert (fetched.path.read_text(), fetched.fingerprint) == ("new\n", md5("new\n"))


def test_an_unchanged_tag_is_never_fetched_again(remote: Remote, home: Path):
    sha = remote.commit({"model.cfg": "lr=0.1\n"})
    remote.tag("v1")
    uri = remote.uri("v1", "model.cfg")
    assert make_source(home).fetch(uri).path.read_text() == "lr=0.1\n"
    fetch_head(make_source(home), remote).unlink()

    source = make_source(home)
    assert source.probe(uri).version == sha  # the annotated tag is peeled to its commit
    assert source.fetch(uri).fingerprint == md5("lr=0.1\n")
    assert not fetch_head(source, remote).exists()


def test_a_tag_on_a_commit_the_mirror_has_is_read_without_fetching(remote: Remote, home: Path):
    remote.commit({"x.txt": "x\n"})
    make_source(home).fetch(remote.uri("main", "x.txt"))
    remote.tag("release")
    fetch_head(make_source(home), remote).unlink()

    source = make_source(home)
    assert source.fetch(remote.uri("release", "x.txt")).path.read_text() == "x\n"
    assert not fetch_head(source, remote).exists()


def test_a_folder_input_is_copied_with_the_folder_fingerprint(remote: Remote, home: Path):
    remote.commit({"data/a.txt": "a\n", "data/sub/b.txt": "b\n", "data/run.sh": "echo\n", "other.txt": "o\n"})
    Path(remote.work.working_dir, "data/run.sh").chmod(0o755)
    remote.commit({})  # records the mode change

    fetched = make_source(home).fetch(remote.uri("main", "data"))
    assert sorted(p.relative_to(fetched.path).as_posix() for p in fetched.path.rglob("*") if p.is_file()) == [
        "a.txt", "run.sh", "sub/b.txt"
    ]
    expected = md5_manifest([("a.txt", md5("a\n")), ("sub/b.txt", md5("b\n")), ("run.sh", md5("echo\n"))])
    assert fetched.fingerprint == expected == DigestCache(None).fingerprint(fetched.path)
    assert os.access(fetched.path / "run.sh", os.X_OK)


def test_an_empty_path_is_the_whole_tree(remote: Remote, home: Path):
    remote.commit({"a.txt": "a\n", "d/b.txt": "b\n"})
    fetched = make_source(home).fetch(remote.uri("main", ""))
    assert (fetched.path / "a.txt").read_text() == "a\n" and (fetched.path / "d/b.txt").read_text() == "b\n"
    assert not (fetched.path / ".git").exists()


def test_a_full_sha_needs_no_network_once_cached(remote: Remote, home: Path, tmp_path: Path):
    first = remote.commit({"f.txt": "v1\n"})
    remote.commit({"f.txt": "v2\n"})
    uri = remote.uri(first, "f.txt")  # an old commit, no longer a branch tip

    assert make_source(home).probe(uri).version == first
    assert make_source(home).fetch(uri).path.read_text() == "v1\n"
    remote.bare.rename(tmp_path / "gone.git")  # the server disappears

    source = make_source(home)
    assert source.probe(uri).fingerprint == md5("v1\n")
    assert source.fetch(uri).path.read_text() == "v1\n"


def test_a_short_sha_resolves_to_the_full_commit(remote: Remote, home: Path):
    first = remote.commit({"f.txt": "v1\n"})
    remote.commit({"f.txt": "v2\n"})
    source = make_source(home)
    assert source.probe(remote.uri(first[:10], "f.txt")).version == first
    assert source.fetch(remote.uri(first[:10], "f.txt")).path.read_text() == "v1\n"


@pytest.mark.parametrize("rev", ["nope", "0123456789abcdef0123456789abcdef01234567"])
def test_an_unknown_revision_is_a_fetch_error(remote: Remote, home: Path, rev: str):
    remote.commit({"f.txt": "x\n"})
    with pytest.raises(FetchError, match=rf"revision '{rev}' not found in {remote.url}$"):
        make_source(home).fetch(remote.uri(rev, "f.txt"))


def test_an_unknown_path_is_a_fetch_error_and_caches_nothing(remote: Remote, home: Path):
    remote.commit({"f.txt": "x\n"})
    uri = remote.uri("main", "missing.txt")
    source = make_source(home)
    with pytest.raises(FetchError, match=r"path 'missing.txt' not found at revision 'main'"):
        source.fetch(uri)
    assert source.cache.lookup(uri) is None


def test_symlinks_are_followed_inside_and_refused_outside(remote: Remote, home: Path):
    remote.commit({"data/real.txt": "r\n", "secret.txt": "s\n"})
    work = Path(remote.work.working_dir)
    (work / "data/inside.txt").symlink_to("real.txt")
    (work / "latest.txt").symlink_to("data/real.txt")
    remote.commit({})
    source = make_source(home)

    folder = source.fetch(remote.uri("main", "data"))
    assert (folder.path / "inside.txt").read_text() == "r\n" and not (folder.path / "inside.txt").is_symlink()
    assert source.fetch(remote.uri("main", "latest.txt")).path.read_text() == "r\n"

    (work / "data/escape.txt").symlink_to("../secret.txt")
    remote.commit({})
    with pytest.raises(FetchError, match=r"symlink 'data/escape.txt' -> '../secret.txt' points outside folder 'data'"):
        source.fetch(remote.uri("main", "data"))


def test_a_damaged_mirror_is_named_in_the_error(remote: Remote, home: Path):
    remote.commit({"f.txt": "v1\n"})
    uri = remote.uri("main", "f.txt")
    source = make_source(home)
    source.fetch(uri)
    shutil.rmtree(mirror(source, remote) / "objects")
    remote.commit({"f.txt": "v2\n"})
    with pytest.raises(FetchError, match=r"git mirror .*\.git failed .*; delete it to rebuild"):
        source.fetch(uri)
    shutil.rmtree(mirror(source, remote))
    assert source.fetch(uri).path.read_text() == "v2\n"


def test_an_unreachable_repository_is_a_fetch_error_without_credentials(home: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    uri = parse_uri(f"git+http://bob:hunter2@127.0.0.1:{port}/repo.git@main#f.txt")
    with pytest.raises(FetchError, match=rf"cannot read repository http://127.0.0.1:{port}/repo.git: ") as caught:
        make_source(home).fetch(uri)
    assert "hunter2" not in str(caught.value)


def test_a_password_prompt_never_blocks(httpserver: HTTPServer, home: Path):
    httpserver.expect_request("/repo.git/info/refs").respond_with_data(
        b"", status=401, headers={"WWW-Authenticate": 'Basic realm="git"'}
    )
    uri = parse_uri(f"git+{httpserver.url_for('/repo.git')}@main#f.txt")
    with pytest.raises(FetchError, match="terminal prompts disabled"):
        make_source(home).probe(uri)


def test_a_url_that_git_would_read_as_an_option_is_refused(home: Path, tmp_path: Path):
    marker = tmp_path / "pwned"
    with pytest.raises(UriError, match="cannot start with '-'"):
        make_source(home).probe(parse_uri(f"git+--upload-pack=touch {marker};://host/x@main#f.txt"))
    assert not marker.exists()
