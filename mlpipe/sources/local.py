"""`file://APP/PATH` and `local://ABS/PATH`: data already on this machine, hashed in place."""

from __future__ import annotations

from pathlib import Path

from mlpipe.errors import UriError
from mlpipe.sources import Fetched, Probe, SourceContext
from mlpipe.uri import Uri


class LocalSource:
    """A local file or folder; its version is its content md5 (stat-cached)."""

    def __init__(self, context: SourceContext):
        self.context = context

    def locate(self, uri: Uri) -> Path:
        path = Path(uri.path)
        if not path.exists():
            raise UriError(f"{uri}: no such file or folder: {path}")
        return path

    def probe(self, uri: Uri) -> Probe:
        fetched = self.fetch(uri)
        return Probe(fetched.version, fetched.fingerprint)

    def fetch(self, uri: Uri) -> Fetched:
        path = self.locate(uri)
        digest = self.context.digests.fingerprint(path)
        return Fetched(path, digest, version=digest)


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
