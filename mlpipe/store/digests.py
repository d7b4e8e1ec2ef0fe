"""Content md5 of files and folders, cached by (path, size, mtime_ns, inode).

An unchanged input is never re-read: one `stat` answers. A `touch` that keeps the content costs
one hash, once (the new stat key is stored). The cache is a small sqlite3 file in the home.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path

from mlpipe.core.hashing import fingerprint, md5_file

StatKey = tuple[int, int, int]


class DigestCache:
    """Stat-keyed md5 memo, loaded once and written back by `save()`."""

    def __init__(self, db_path: Path | None):
        self._db_path = db_path
        self._rows: dict[str, tuple[StatKey, str]] | None = None
        self._dirty: dict[str, tuple[StatKey, str]] = {}
        self._lock = threading.Lock()

    def _load(self) -> dict[str, tuple[StatKey, str]]:
        if self._rows is None:
            rows: dict[str, tuple[StatKey, str]] = {}
            if self._db_path is not None and self._db_path.exists():
                try:
                    with sqlite3.connect(self._db_path) as db:
                        for path, size, mtime, inode, digest in db.execute("SELECT * FROM md5"):
                            rows[path] = ((size, mtime, inode), digest)
                except sqlite3.DatabaseError:
                    rows = {}  # a damaged memo only costs re-hashing
            self._rows = rows
        return self._rows

    def file_md5(self, path: Path) -> str:
        """md5 of one file, from the memo when its stat is unchanged."""
        st = os.stat(path)
        key = str(path)
        stat_key = (st.st_size, st.st_mtime_ns, st.st_ino)
        with self._lock:
            hit = self._load().get(key)
        if hit and hit[0] == stat_key:
            return hit[1]
        digest = md5_file(path)
        with self._lock:
            self._rows[key] = self._dirty[key] = (stat_key, digest)  # type: ignore[index]
        return digest

    def fingerprint(self, path: Path, *, within: Path | None = None) -> str:
        """`hashing.fingerprint` with every file's md5 taken from the memo."""
        return fingerprint(path, self.file_md5, within=within)

    def save(self) -> None:
        """Write new entries; concurrent runs may interleave safely (last writer wins per row)."""
        if not self._dirty or self._db_path is None:
            return
        with self._lock:
            dirty, self._dirty = self._dirty, {}
        # a read-only home (`ml gc --dry-run`, `ml runpipe -n`) only costs hashing again next time
        with contextlib.suppress(OSError, sqlite3.Error):
            self._write(self._db_path, dirty)

    @staticmethod
    def _write(db_path: Path, dirty: dict[str, tuple[StatKey, str]]) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(db_path, timeout=30) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS md5"
                " (path TEXT PRIMARY KEY, size INT, mtime_ns INT, inode INT, md5 TEXT)"
            )
            db.executemany(
                "INSERT OR REPLACE INTO md5 VALUES (?, ?, ?, ?, ?)",
                [(p, *key, digest) for p, (key, digest) in dirty.items()],
            )
