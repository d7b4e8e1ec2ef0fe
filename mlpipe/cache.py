"""The local content-addressed cache: `data/XX/<data_hash>` plus a JSON sidecar.

    cache/data/ab/ab12…        the output (a file or a folder), read-only once published
    cache/data/ab/ab12….json   {"md5", "size", "job_hash", "created"}: written last, so it marks
                               a complete entry
    cache/tmp/                 scratch space on the same filesystem, so publishing is a rename
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from mlpipe.errors import StoreError


@dataclass(frozen=True)
class CacheEntry:
    data_hash: str
    path: Path
    md5: str
    size: int
    job_hash: str
    created: float

    def sidecar(self) -> dict:
        record = asdict(self)
        record.pop("path")
        return record


def tree_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def write_json_atomic(path: Path, data: object) -> None:
    """Write JSON to a temp file beside `path` and rename it in: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(data, out, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _make_read_only(path: Path) -> None:
    """Protect published bytes from jobs that would edit their inputs in place."""
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    for file in files:
        mode = file.stat().st_mode
        file.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def remove_tree(path: Path) -> None:
    """Delete a file or folder, read-only files included."""
    if path.is_dir() and not path.is_symlink():
        for dirpath, _dirs, _files in os.walk(path):
            os.chmod(dirpath, 0o755)
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class LocalCache:
    """exists / get / put / list over hash-named entries."""

    def __init__(self, data_dir: Path, scratch_dir: Path):
        self.data_dir = data_dir
        self.scratch_dir = scratch_dir
        self._data = os.fspath(data_dir)  # string paths: a run looks up thousands of entries

    def path(self, data_hash: str) -> Path:
        return Path(self.path_str(data_hash))

    def path_str(self, data_hash: str) -> str:
        return f"{self._data}{os.sep}{data_hash[:2]}{os.sep}{data_hash}"

    def _sidecar_path(self, data_hash: str) -> Path:
        return Path(self.path_str(data_hash) + ".json")

    def exists(self, data_hash: str) -> bool:
        return os.path.exists(self.path_str(data_hash) + ".json")

    def _sidecar(self, data_hash: str) -> dict | None:
        try:
            with open(self.path_str(data_hash) + ".json", "rb") as handle:
                return json.loads(handle.read())
        except (OSError, ValueError):
            return None

    def get(self, data_hash: str) -> CacheEntry | None:
        meta = self._sidecar(data_hash)
        if meta is None:
            return None
        return CacheEntry(data_hash, self.path(data_hash), meta["md5"], meta["size"], meta["job_hash"],
                          meta["created"])

    def content_md5(self, data_hash: str) -> str | None:
        """The complete entry's content md5 (what downstream jobs hash), or None."""
        meta = self._sidecar(data_hash)
        return None if meta is None else meta["md5"]

    def new_scratch(self, prefix: str) -> Path:
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.scratch_dir))

    def put(self, data_hash: str, src: Path, *, md5: str, job_hash: str, replace: bool = False) -> CacheEntry:
        """Move `src` (same filesystem) into the cache by atomic rename; then write the sidecar.

        An existing complete entry wins unless `replace` (a forced rerun) is set.
        """
        existing = None if replace else self.get(data_hash)
        if existing is not None:
            remove_tree(src)
            return existing
        target = self.path(data_hash)
        entry = CacheEntry(data_hash, target, md5, tree_size(src), job_hash, time.time())
        try:
            _make_read_only(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists() or target.is_symlink():
                trash = self.new_scratch("trash-")
                os.rename(target, trash / "old")
                remove_tree(trash)
            os.rename(src, target)
            write_json_atomic(self._sidecar_path(data_hash), entry.sidecar())
        except OSError as exc:
            raise StoreError(f"cannot publish {data_hash} into the cache at {target}: {exc.strerror or exc}") from exc
        return entry

    def remove(self, data_hash: str) -> None:
        self._sidecar_path(data_hash).unlink(missing_ok=True)
        remove_tree(self.path(data_hash))

    def list(self) -> Iterator[str]:
        """Every complete entry's data hash."""
        if not self.data_dir.is_dir():
            return
        for shard in self.data_dir.iterdir():
            if shard.is_dir():
                for sidecar in shard.glob("*.json"):
                    yield sidecar.stem
