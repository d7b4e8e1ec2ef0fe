"""`cache://DATA_HASH`: another job's output, read from the local cache (pulled from the mirror if needed).

Its fingerprint is the entry's content md5, exactly what a pipe uses for a data name, so a job
rerun from its record (`ml runjob`) gets the same job hash as in its pipe.
"""

from __future__ import annotations

from mlpipe.core.errors import FetchError
from mlpipe.core.uri import Uri
from mlpipe.sources import Fetched, Probe, SourceContext
from mlpipe.store.cache import CacheEntry


class CacheSource:
    """An entry of the run's local cache, named by its data hash (pulled from the run's mirror)."""

    def __init__(self, context: SourceContext):
        self.context = context
        self.cache = context.cache

    def probe(self, uri: Uri) -> Probe:
        entry = self.cache.get(uri.root)
        return Probe(entry.md5, entry.md5, entry.path) if entry else Probe("missing", None)

    def fetch(self, uri: Uri) -> Fetched:
        entry = self.cache.get(uri.root) or self._pull(uri)
        return Fetched(entry.path, entry.md5, entry.md5)

    def _pull(self, uri: Uri) -> CacheEntry:
        mirror = self.context.mirror
        entry = self.cache.get(uri.root) if mirror is not None and mirror.pull([uri.root]) else None
        if entry is None:
            where = "the local cache or the mirror" if mirror is not None else "the local cache"
            raise FetchError(f"{uri}: data {uri.root} is not in {where}")
        return entry
