"""External data: one Source per URI scheme, behind a two-method protocol.

    probe(uri) -> Probe     cheap (stat, HEAD, ls-remote): the version, and the content md5
                            when it is already known without downloading
    fetch(uri) -> Fetched   a local path to hand to the job, and its content md5

`Sources` picks the implementation by scheme (imported lazily, so `ml --help` never loads boto3,
requests or git) and memoises results for one run, so each URI is checked once.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from mlpipe.core.errors import MlpipeError, UriError
from mlpipe.core.uri import Uri

if TYPE_CHECKING:
    from mlpipe.home.apps import AppIndex
    from mlpipe.home.settings import Settings
    from mlpipe.remote.mirror import RunMirror
    from mlpipe.store.cache import LocalCache
    from mlpipe.store.digests import DigestCache

T = TypeVar("T")


@dataclass(frozen=True)
class Probe:
    """What a cheap check learned: a version string and, when that version is already on this
    machine, its content md5 and local path (so `fetch` needs no second check)."""

    version: str
    fingerprint: str | None
    path: Path | None = None


@dataclass(frozen=True)
class Fetched:
    """External data available locally: the path given to a job and its content md5."""

    path: Path
    fingerprint: str
    version: str = ""


@dataclass(frozen=True)
class SourceContext:
    """What every source may use: settings, the app index, the md5 memo, the run's local cache and
    mirror (None: no mirror), terminal progress."""

    settings: Settings
    apps: AppIndex
    digests: DigestCache
    cache: LocalCache
    mirror: RunMirror | None = None
    progress: bool = False


class Source(Protocol):
    def __init__(self, context: SourceContext) -> None: ...

    def probe(self, uri: Uri) -> Probe: ...

    def fetch(self, uri: Uri) -> Fetched: ...


_IMPLEMENTATIONS = {
    "file": "mlpipe.sources.local:AppFileSource",
    "local": "mlpipe.sources.local:LocalSource",
    "http": "mlpipe.sources.http:HttpSource",
    "https": "mlpipe.sources.http:HttpSource",
    "s3": "mlpipe.sources.s3:S3Source",
    "git": "mlpipe.sources.git:GitSource",
    "cache": "mlpipe.sources.cache:CacheSource",
}


class Sources:
    """Dispatch by scheme and memoise probe/fetch results for one run (thread-safe)."""

    def __init__(self, context: SourceContext):
        self.context = context
        self._instances: dict[str, Source] = {}
        self._probes: dict[str, Probe] = {}
        self._fetched: dict[str, Fetched] = {}
        self._failures: dict[str, MlpipeError] = {}
        self._lock = threading.Lock()

    def _source(self, uri: Uri) -> Source:
        target = _IMPLEMENTATIONS.get(uri.scheme)
        if target is None:
            raise UriError(f"{uri}: no source handles scheme '{uri.scheme}'")
        with self._lock:
            if target not in self._instances:
                module_name, _, class_name = target.partition(":")
                try:
                    module = importlib.import_module(module_name)
                except ImportError as exc:
                    raise UriError(f"{uri}: scheme '{uri.scheme}' is not supported by this install ({exc})") from exc
                self._instances[target] = getattr(module, class_name)(self.context)
            return self._instances[target]

    def probe(self, uri: Uri) -> Probe:
        if uri.raw not in self._probes:
            self._raise_failure(uri)
            if uri.raw in self._fetched:
                got = self._fetched[uri.raw]
                self._probes[uri.raw] = Probe(got.version, got.fingerprint, got.path)
            else:
                self._probes[uri.raw] = self._remembering(uri, lambda: self._source(uri).probe(uri))
        return self._probes[uri.raw]

    def fetch(self, uri: Uri) -> Fetched:
        if uri.raw not in self._fetched:
            self._raise_failure(uri)
            probe = self._probes.get(uri.raw)
            if probe is not None and probe.fingerprint is not None and probe.path is not None:
                self._fetched[uri.raw] = Fetched(probe.path, probe.fingerprint, probe.version)
            else:
                self._fetched[uri.raw] = self._remembering(uri, lambda: self._source(uri).fetch(uri))
        return self._fetched[uri.raw]

    def _remembering(self, uri: Uri, call: Callable[[], T]) -> T:
        """`call()`; a failure is remembered, so the run asks a failing server once, not per check."""
        try:
            return call()
        except MlpipeError as exc:
            self._failures[uri.raw] = exc
            raise

    def _raise_failure(self, uri: Uri) -> None:
        failure = self._failures.get(uri.raw)
        if failure is not None:
            raise failure

    def export(self, uri: Uri, path: Path, fingerprint: str) -> bool:
        source = self._source(uri)
        if not hasattr(source, "export"):
            raise UriError(f"{uri}: outputs cannot be exported to '{uri.scheme}' URIs")
        return source.export(uri, path, fingerprint)  # type: ignore[attr-defined]
