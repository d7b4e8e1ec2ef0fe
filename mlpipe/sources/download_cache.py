"""The download cache: each remote input fetched once, reused while its version is unchanged.

    DOWNLOAD_DIR/<scheme>/<md5(uri)>/data        the file or folder
    DOWNLOAD_DIR/<scheme>/<md5(uri)>/meta.json   {"uri", "version", "md5", "fetched"}

An entry is built completely in DOWNLOAD_DIR/tmp and renamed into place, so an interrupted
download never leaves anything that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mlpipe.core.hashing import md5_text
from mlpipe.core.uri import Uri
from mlpipe.sources import Fetched
from mlpipe.store.digests import DigestCache


class DownloadCache:
    def __init__(self, root: Path, digests: DigestCache):
        self.root = root
        self.digests = digests

    def entry_dir(self, uri: Uri) -> Path:
        return self.root / uri.scheme / md5_text(uri.raw)

    def lookup(self, uri: Uri, version: str | None = None) -> Fetched | None:
        """The cached copy of `uri` (of `version`, when given), or None."""
        entry = self.entry_dir(uri)
        try:
            meta = json.loads((entry / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        if version is not None and meta.get("version") != version:
            return None
        return Fetched(entry / "data", meta["md5"], meta["version"])

    def store(self, uri: Uri, version: str, write: Callable[[Path], None]) -> Fetched:
        """Call `write(path)` to create the data at a temporary path, then publish it atomically."""
        tmp_root = self.root / "tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="dl-", dir=tmp_root))
        try:
            write(staging / "data")
            digest = self.digests.fingerprint(staging / "data")
            meta = {"uri": uri.raw, "version": version, "md5": digest, "fetched": time.time()}
            (staging / "meta.json").write_text(json.dumps(meta, indent=1))
            entry = self.entry_dir(uri)
            entry.parent.mkdir(parents=True, exist_ok=True)
            if entry.exists():
                trash = Path(tempfile.mkdtemp(prefix="old-", dir=tmp_root))
                os.rename(entry, trash / "entry")
                shutil.rmtree(trash, ignore_errors=True)
            os.rename(staging, entry)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Fetched(entry / "data", digest, version)
