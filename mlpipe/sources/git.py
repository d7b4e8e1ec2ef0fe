"""`git+URL@REV#PATH` inputs: ls-remote for the version, a bare mirror per repository, PATH copied into the cache.

    probe   REV a full sha -> that sha, no network; else `git ls-remote URL REV` -> commit sha.
            The md5 is known when the download cache holds that sha.
    fetch   the cached copy of that sha, else: fetch the commit into the mirror unless it is
            there already (shallow first, everything when the server refuses), then copy PATH
            at that commit into the download cache (a file -> a file, a folder -> a folder).

    DOWNLOAD_DIR/git/mirrors/<md5(url)>.git    bare mirror, reused between runs, flock-ed while used

Symlinks are followed inside the repository (a folder gets copies, never links); one that leaves
the repository, or the folder being copied, is refused. Every git failure becomes a `FetchError`.
"""

from __future__ import annotations

import fcntl
import os
import posixpath
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import git
from git.exc import CommandError, GitError, ODBError

from mlpipe.core.errors import FetchError, UriError
from mlpipe.core.hashing import md5_text
from mlpipe.core.uri import Uri, redact
from mlpipe.sources import Fetched, Probe, SourceContext
from mlpipe.sources.download_cache import DownloadCache

ENV = {"GIT_TERMINAL_PROMPT": "0"}  # a password prompt must never hang a cron run
FULL_SHA = re.compile(r"[0-9a-fA-F]{40}")
SHORT_SHA = re.compile(r"[0-9a-fA-F]{7,39}")
LINK_MODE = 0o120000
MAX_LINK_HOPS = 8
CHUNK = 1 << 20
FULL_REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")

GitObject = git.Blob | git.Tree | git.Submodule


@dataclass(frozen=True)
class Rev:
    """A resolved revision: the commit sha and the remote ref that named it (None for a sha)."""

    sha: str
    ref: str | None = None


def _ref_candidates(rev: str) -> list[str]:
    """Exact ref names REV may mean, best first: a branch wins over a tag of the same name."""
    names = [rev] if rev == "HEAD" or rev.startswith("refs/") else [f"refs/heads/{rev}", f"refs/tags/{rev}"]
    return [key for name in names for key in (f"{name}^{{}}", name)]  # an annotated tag's commit first


def _reason(exc: Exception, url: str) -> str:
    """git's own explanation (its first "fatal:" line), with any credentials of `url` removed."""
    if not isinstance(exc, CommandError):
        return f"{type(exc).__name__}: {exc}".replace(url, redact(url))
    text = str(exc.stderr).strip().removeprefix("stderr: '").removesuffix("'")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    fatal = [line.removeprefix("fatal: ") for line in lines if line.startswith("fatal:")]
    reason = (fatal or lines or [f"git exited with {exc.status}"])[0]
    return reason.replace(url, redact(url))


class GitSource:
    """A file or folder of a git repository at a branch, tag or commit."""

    def __init__(self, context: SourceContext):
        self.context = context
        self.cache = DownloadCache(context.settings.download_dir, context.digests)
        self.mirrors = context.settings.download_dir / "git" / "mirrors"

    def probe(self, uri: Uri) -> Probe:
        sha = self.resolve(uri).sha
        cached = self.cache.lookup(uri, sha)
        return Probe(sha, cached.fingerprint if cached else None, cached.path if cached else None)

    def fetch(self, uri: Uri) -> Fetched:
        rev = self.resolve(uri)
        cached = self.cache.lookup(uri, rev.sha)
        if cached is not None:
            return cached
        with self._mirror(uri) as repo:
            if _commit_sha(repo, rev.sha) is None:
                self._fetch_commit(repo, uri, rev)
            commit = repo.commit(rev.sha)
            return self.cache.store(uri, rev.sha, lambda target: _extract(uri, commit, target))

    def resolve(self, uri: Uri) -> Rev:
        """REV -> commit sha: a full sha as is, else one ls-remote (a short sha: the mirror)."""
        if FULL_SHA.fullmatch(uri.rev):
            return Rev(uri.rev.lower())
        refs = self._ls_remote(uri)
        for name in _ref_candidates(uri.rev):
            if name in refs:
                return Rev(refs[name], name.removesuffix("^{}"))
        if SHORT_SHA.fullmatch(uri.rev):
            return Rev(self._expand_short_sha(uri))
        raise self._not_found(uri)

    def _ls_remote(self, uri: Uri) -> dict[str, str]:
        """{ref name: sha} of the refs whose name ends with REV (or REV^{})."""
        cmd = git.cmd.Git()
        cmd.update_environment(**ENV)
        try:
            out = cmd.ls_remote("--", _url(uri), uri.rev, f"{uri.rev}^{{}}")
        except CommandError as exc:
            raise self._unreachable(uri, exc) from exc
        pairs = (line.split("\t", 1) for line in out.splitlines() if "\t" in line)
        return {ref: sha for sha, ref in pairs}

    def _expand_short_sha(self, uri: Uri) -> str:
        """A short sha is looked up in the mirror, after fetching everything when it is not there."""
        with self._mirror(uri) as repo:
            sha = _commit_sha(repo, uri.rev)
            if sha is None:
                self._fetch_all(repo, uri)
                sha = _commit_sha(repo, uri.rev)
        if sha is None:
            raise self._not_found(uri)
        return sha

    @contextmanager
    def _mirror(self, uri: Uri) -> Iterator[git.Repo]:
        """The repository's bare mirror, created on first use, locked against other runs and threads."""
        path = self.mirrors / f"{md5_text(uri.root)}.git"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            try:
                repo = git.Repo(path) if (path / "HEAD").is_file() else git.Repo.init(path, bare=True)
                repo.git.update_environment(**ENV)
                try:
                    yield repo
                finally:
                    repo.close()
            except (GitError, ODBError) as exc:  # a damaged mirror: say where it is
                message = f"git mirror {path} failed ({_reason(exc, uri.root)}); delete it to rebuild"
                raise FetchError(f"{redact(uri.raw)}: {message}") from exc

    def _fetch_commit(self, repo: git.Repo, uri: Uri, rev: Rev) -> None:
        """Fetch just the commit (depth 1); everything when the server refuses that or lacks it."""
        # NOTE: dumb-HTTP and old servers refuse shallow or by-sha fetches; the full fetch then decides.
        with suppress(CommandError):
            repo.git.fetch("--depth", "1", "--no-tags", "--", _url(uri), rev.ref or rev.sha)
        if _commit_sha(repo, rev.sha) is None:
            self._fetch_all(repo, uri)
        if _commit_sha(repo, rev.sha) is None:
            raise self._not_found(uri)

    def _fetch_all(self, repo: git.Repo, uri: Uri) -> None:
        shallow = repo.git.rev_parse("--is-shallow-repository") == "true"
        try:
            repo.git.fetch(*(["--unshallow"] if shallow else []), "--", _url(uri), *FULL_REFSPECS)
        except CommandError as exc:
            raise self._unreachable(uri, exc) from exc

    @staticmethod
    def _not_found(uri: Uri) -> FetchError:
        return FetchError(f"{redact(uri.raw)}: revision '{uri.rev}' not found in {redact(uri.root)}")

    @staticmethod
    def _unreachable(uri: Uri, exc: Exception) -> FetchError:
        return FetchError(f"{redact(uri.raw)}: cannot read repository {redact(uri.root)}: {_reason(exc, uri.root)}")


def _url(uri: Uri) -> str:
    """The repository URL, refused when git would read it as an option (`--upload-pack=...`)."""
    if uri.root.startswith("-"):
        raise UriError(f"{redact(uri.raw)}: a repository URL cannot start with '-'")
    return uri.root


def _commit_sha(repo: git.Repo, rev: str) -> str | None:
    """The full sha of commit `rev` when the mirror has it, else None."""
    try:
        return repo.git.rev_parse("--verify", "--quiet", f"{rev}^{{commit}}")
    except CommandError:
        return None


def _is_within(path: str, scope: str) -> bool:
    """True when normalised repo path `path` ("." = the root) is `scope` or inside it ("" = the repo)."""
    if path == ".." or path.startswith("../"):
        return False
    return scope == "" or path == scope or path.startswith(scope + "/")


def _follow(uri: Uri, commit: git.Commit, path: str, scope: str) -> GitObject:
    """The object at repo path `path`, following symlinks that stay inside folder `scope` ("" = repo)."""
    for _ in range(MAX_LINK_HOPS):
        try:
            obj = commit.tree / path if path else commit.tree
        except KeyError:
            raise FetchError(
                f"{redact(uri.raw)}: path '{path}' not found at revision '{uri.rev}' ({commit.hexsha[:12]})"
            ) from None
        if obj.mode != LINK_MODE:
            return obj
        target = os.fsdecode(obj.data_stream.read())
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if posixpath.isabs(target) or not _is_within(resolved, scope):
            where = f"folder '{scope}'" if scope else "the repository"
            raise FetchError(f"{redact(uri.raw)}: symlink '{obj.path}' -> '{target}' points outside {where}")
        path = "" if resolved == "." else resolved
    raise FetchError(f"{redact(uri.raw)}: more than {MAX_LINK_HOPS} symlinks in a row at '{path}'")


def _extract(uri: Uri, commit: git.Commit, target: Path) -> None:
    """Copy PATH at `commit` to `target`: a blob as a file, a tree as a folder."""
    obj = _follow(uri, commit, uri.path, "")
    if obj.type == "tree":
        _write_tree(uri, commit, obj, target, scope=obj.path)
    elif obj.type == "blob":
        _write_blob(obj, target)
    else:
        raise FetchError(f"{redact(uri.raw)}: '{uri.path}' is a submodule; name a path inside that repository")


def _write_tree(uri: Uri, commit: git.Commit, tree: git.Tree, target: Path, scope: str) -> None:
    target.mkdir()
    for item in tree:
        if item.name in ("", ".", "..") or "/" in item.name:
            raise FetchError(f"{redact(uri.raw)}: refusing unsafe entry name {item.name!r} in '{tree.path}'")
        obj = _follow(uri, commit, item.path, scope) if item.mode == LINK_MODE else item
        if obj.type == "tree" and item.mode == LINK_MODE:
            raise FetchError(f"{redact(uri.raw)}: symlink '{item.path}' points to a folder (not supported)")
        if obj.type == "tree":
            _write_tree(uri, commit, obj, target / item.name, scope)
        elif obj.type == "blob":
            _write_blob(obj, target / item.name)
        # a submodule (a commit of another repository) has no content here: skipped, like `git archive`


def _write_blob(blob: git.Blob, target: Path) -> None:
    with open(target, "wb") as out:
        shutil.copyfileobj(blob.data_stream, out, CHUNK)
    if blob.mode & 0o111:
        target.chmod(0o755)
