"""`file://APP/PATH` and `local://ABS/PATH`: data already on this machine, hashed in place."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mlpipe.core.errors import FetchError, StoreError, UriError
from mlpipe.core.hashing import walk_files
from mlpipe.core.uri import Uri
from mlpipe.sources import Fetched, Probe, SourceContext


class LocalSource:
    """A local file or folder; its version is its content md5 (stat-cached)."""

    def __init__(self, context: SourceContext):
        self.context = context

    def locate(self, uri: Uri) -> Path:
        path = Path(uri.path)
        if not path.exists():
            raise UriError(f"{uri}: no such file or folder: {path}")
        return path

    def boundary(self, uri: Uri, path: Path) -> Path:
        """How far links inside a folder input may reach: the folder itself."""
        return path

    def probe(self, uri: Uri) -> Probe:
        """Checked before anything runs: an unreadable file or folder is invalid input (exit 2)."""
        fetched = self._read(uri, UriError)
        return Probe(fetched.version, fetched.fingerprint, fetched.path)

    def fetch(self, uri: Uri) -> Fetched:
        return self._read(uri, FetchError)

    def _read(self, uri: Uri, error: type[UriError] | type[FetchError]) -> Fetched:
        path = self.locate(uri)
        # NOTE: the md5 memo answers from a stat, which a chmod does not change: ask explicitly
        # (one call for the file or the top folder; files inside a folder are found when hashed).
        if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
            raise error(f"{uri}: cannot read {path}: Permission denied")
        try:
            digest = self.context.digests.fingerprint(path, within=self.boundary(uri, path))
        except OSError as exc:
            raise error(f"{uri}: cannot read {exc.filename or path}: {exc.strerror or exc}") from exc
        return Fetched(path, digest, version=digest)

    def export(self, uri: Uri, path: Path, fingerprint: str) -> bool:
        """Copy `path` to a `local://` URI by renaming a full copy into place; False when already there."""
        if uri.scheme != "local":
            raise UriError(f"{uri}: outputs cannot be exported to '{uri.scheme}' URIs (use local://)")
        dest = Path(uri.path)
        if dest.exists() and dest.is_dir() == path.is_dir() and self.context.digests.fingerprint(dest) == fingerprint:
            return False
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            _publish(path, dest)
        except OSError as exc:
            raise StoreError(f"{uri}: cannot export to {dest}: {exc}") from exc
        return True


class AppFileSource(LocalSource):
    """A file or folder inside an app; the resolved path must stay inside the app."""

    def locate(self, uri: Uri) -> Path:
        app_dir = self.context.apps.app_dir(uri.root).resolve()
        path = (app_dir / uri.path).resolve()
        if not path.is_relative_to(app_dir):
            raise UriError(f"{uri}: resolves outside app '{uri.root}' (symlink escape)")
        if not path.exists():
            raise UriError(f"{uri}: no such file or folder in app '{uri.root}': {uri.path}")
        return path

    def boundary(self, uri: Uri, path: Path) -> Path:
        """Links inside an app's folder may reach anywhere in the app, never out of it."""
        return self.context.apps.app_dir(uri.root).resolve()


def _publish(src: Path, dest: Path) -> None:
    """Copy into a hidden sibling, then rename over `dest`: a reader sees the old or the new, never half."""
    import tempfile  # only when exporting: reading local inputs must stay light

    staging = Path(tempfile.mkdtemp(prefix=".mlpipe-export-", dir=dest.parent))
    try:
        new = staging / "data"
        if src.is_dir():
            new.mkdir()
            for rel, file in walk_files(src):  # plain copies: no read-only modes carried over from the cache
                (new / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, new / rel)
        else:
            shutil.copyfile(src, new)
        if os.path.lexists(dest) and (new.is_dir() or dest.is_dir()):
            # NOTE: rename cannot replace a folder (or swap file and folder) in one step, so the old
            # one is moved aside first; for that instant `dest` is absent, never half-written.
            os.rename(dest, staging / "old")
        os.replace(new, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
