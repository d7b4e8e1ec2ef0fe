"""The local content-addressed cache: `data/XX/<data_hash>` plus a JSON sidecar.

    cache/data/ab/ab12…        the output (a file or a folder), read-only once published
    cache/data/ab/ab12….json   {"md5", "size", "job_hash", "created"}: written last, so it marks
                               a complete entry
    cache/tmp/                 scratch space on the same filesystem, so publishing is a rename
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from mlpipe.core.errors import StoreError


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


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file beside `path` and rename it in: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: object) -> None:
    write_bytes_atomic(path, json.dumps(data, indent=1, sort_keys=True).encode())


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


class ScratchPool:
    """Fresh working directories for jobs (each with an empty `outputs/`), recycled within a run.

    NOTE: creating and removing a directory are the slowest file operations of a job's
    bookkeeping on some filesystems (ext4 mounted with `discard`, as on the test machine: ~1 ms
    to create one, ~2 ms to remove one; each job used two of each). A scratch directory given
    back exactly as it was taken (nothing in it but an empty `outputs/`, same modes) is renamed
    for the next job instead; anything else is removed as before. `close()` removes the spares
    (a run calls it at its end, and it is registered to run at exit).
    """

    def __init__(self, cache: LocalCache):
        self._cache = cache
        self._spares: list[Path] = []
        self._outputs_mode: int | None = None
        self._lock = threading.Lock()
        self._at_exit = False

    def take(self, prefix: str) -> Path:
        """An empty directory `prefix` + random under the scratch dir, holding an empty `outputs/`."""
        with self._lock:
            spare = self._spares.pop() if self._spares else None
        if spare is not None:
            fresh = spare.with_name(prefix + os.urandom(6).hex())  # never a name mkdtemp makes
            try:
                os.rename(spare, fresh)
                return fresh
            except OSError:
                remove_tree(spare)
        scratch = self._cache.new_scratch(prefix)
        (scratch / "outputs").mkdir()
        if self._outputs_mode is None:
            self._outputs_mode = os.lstat(scratch / "outputs").st_mode
        return scratch

    def give_back(self, scratch: Path) -> None:
        """Keep `scratch` for the next job if it is as `take` gave it; else remove it."""
        outputs = scratch / "outputs"
        try:
            pristine = (os.lstat(scratch).st_mode == stat.S_IFDIR | 0o700  # as mkdtemp makes it
                        and os.lstat(outputs).st_mode == self._outputs_mode
                        and os.listdir(scratch) == ["outputs"] and not os.listdir(outputs))
        except OSError:
            pristine = False
        if not pristine:
            remove_tree(scratch)
            return
        with self._lock:
            self._spares.append(scratch)
            if not self._at_exit:
                atexit.register(self.close)
                self._at_exit = True

    def close(self) -> None:
        with self._lock:
            spares, self._spares = self._spares, []
        for spare in spares:
            remove_tree(spare)


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
        # NOTE: os.open/os.read, not open(): half the cost, and a run reads one sidecar per job input.
        try:
            fd = os.open(self.path_str(data_hash) + ".json", os.O_RDONLY)
        except OSError:
            return None
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            return json.loads(b"".join(chunks).decode())
        except (OSError, ValueError):
            return None
        finally:
            os.close(fd)

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
