"""`ml verify`: re-hash cache entries against their sidecars; `--repair` removes the damaged ones.

The run-time check is a stat (size, file list); this is the slow, thorough one: every byte is
read again and its md5 compared with the sidecar's, so silent corruption (same size, other
bytes) is found too. A removed entry is pulled from the mirror or rebuilt by the next run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mlpipe.core.errors import TreeError
from mlpipe.core.hashing import fingerprint
from mlpipe.home.settings import Settings
from mlpipe.store.cache import MISSING, PRESENT, LocalCache


@dataclass(frozen=True)
class Damage:
    data_hash: str
    path: Path
    problem: str


@dataclass(frozen=True)
class Verification:
    checked: int
    damaged: list[Damage]
    repaired: bool


def verify_cache(settings: Settings, data_hashes: Iterable[str] | None = None, *, repair: bool = False) -> Verification:
    """Check every entry (or those of `data_hashes` that have a sidecar) byte for byte."""
    cache = LocalCache(settings.data_dir, settings.scratch_dir)
    present = set(cache.list())
    wanted = sorted(present if data_hashes is None else present & set(data_hashes))
    damaged = [d for d in map(lambda h: _check(cache, h), wanted) if d is not None]
    if repair:
        for damage in damaged:
            cache.remove(damage.data_hash)
    return Verification(len(wanted), damaged, repair)


def _check(cache: LocalCache, data_hash: str) -> Damage | None:
    path = cache.path(data_hash)
    state = cache.state(data_hash)
    if state == MISSING:
        return Damage(data_hash, path, "its data is missing (the sidecar remains)")
    if state != PRESENT:
        return Damage(data_hash, path, "its data has another size or file list than its sidecar says")
    entry = cache.get(data_hash)
    assert entry is not None
    try:
        got = fingerprint(path)
    except (OSError, TreeError) as exc:
        return Damage(data_hash, path, f"cannot be read: {exc}")
    if got != entry.md5:
        return Damage(data_hash, path, f"its content md5 is {got}, the sidecar says {entry.md5}")
    return None
