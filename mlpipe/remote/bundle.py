"""The app code bundle a Dask worker runs: the app directory without `data/`, keyed by its md5.

    driver   APP/ minus data/ and __pycache__/ ──md5──> in the mirror? ──no──> staged copy ─push─>
                                                                               data/<md5>/... + data/<md5>.json
    worker   data/<md5> ──pull (every file's md5 checked)──> cache/data/XX/<md5>
             HOME/bundles/<md5>/APP -> that entry          (so `python -m APP.module.NAME` works)

The bundle is a folder entry of the mirror like any job output, so pushing and pulling it reuse
the mirror's checks; its key is the content fingerprint of the files it holds.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from mlpipe.core.errors import FetchError, StoreError
from mlpipe.core.hashing import md5_manifest, walk_files
from mlpipe.remote.mirror import S3Mirror
from mlpipe.store.cache import CacheEntry, LocalCache, remove_tree, tree_files
from mlpipe.store.digests import DigestCache

EXCLUDED = ("data",)  # top-level folders that are inputs, not code (they reach workers by content md5)


def bundle_files(app_dir: Path) -> list[tuple[str, Path]]:
    """The files of the bundle: the app's files but `data/` and compiled Python."""
    return [(rel, path) for rel, path in walk_files(app_dir)
            if rel.split("/")[0] not in EXCLUDED and "__pycache__" not in rel.split("/") and not rel.endswith(".pyc")]


def bundle_md5(app_dir: Path, digests: DigestCache) -> str:
    """The bundle's key: md5 over its sorted "relpath\\0md5\\n" (each file's md5 stat-cached)."""
    return md5_manifest((rel, digests.file_md5(path)) for rel, path in bundle_files(app_dir))


def ensure_bundle(mirror: S3Mirror, app_dir: Path, digests: DigestCache) -> str:
    """Push the app's bundle unless the mirror has it; its md5."""
    md5 = bundle_md5(app_dir, digests)
    mirror.refresh([md5])
    if mirror.has([md5]):
        return md5
    staging = mirror.cache.new_scratch("bundle-")
    try:
        root = staging / app_dir.name
        for rel, path in bundle_files(app_dir):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, root / rel)
        files = tree_files(root) or {}
        entry = CacheEntry(md5, root, md5, sum(files.values()), "bundle", time.time(), files)
        problems = mirror.push_entries([entry], lambda job_hash: None).problems
    finally:
        remove_tree(staging)
    if problems:  # the app changed while it was copied: the next run pushes the new bundle
        raise StoreError(f"app {app_dir.name}: code bundle not pushed: {'; '.join(problems)}")
    return md5


def install_bundle(mirror: S3Mirror, cache: LocalCache, home: Path, md5: str, app: str) -> Path:
    """The app's directory on this worker, from the bundle `md5` (pulled and checked once)."""
    if not cache.exists(md5):
        mirror.refresh([md5])
        if not mirror.pull([md5]):
            raise FetchError(f"app {app}: code bundle {md5} is not in the mirror {mirror.url}")
    entry = cache.get(md5)
    if entry is None or entry.md5 != md5:
        raise FetchError(f"app {app}: code bundle {md5} has md5 {entry.md5 if entry else 'unknown'}")
    link = home / "bundles" / md5 / app
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{app}.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(entry.path, target_is_directory=True)
        os.replace(tmp, link)
    return link
