"""The local content-addressed cache: `data/XX/<data_hash>` plus a JSON sidecar.

    cache/data/ab/ab12…        the output (a file or a folder), read-only once published
    cache/data/ab/ab12….json   {"md5", "size", "job_hash", "created"} (+ "files": {relpath: size}
                               for a folder): written last, so it marks a complete entry
    cache/stamps/<job_hash>    a job without outputs succeeded at this hash
    cache/tmp/PREFIX<pid>-…    scratch space on the same filesystem, so publishing is a rename;
                               named after the process that owns it, so `ml gc` knows when it is dead

An entry counts only when its sidecar parses and its data is there with the sidecar's size (a
file) or file list (a folder): one stat per file, no re-read. Anything else reads as absent
(`missing`) or `damaged`, so a deleted or truncated entry is rebuilt, never trusted.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlpipe.core.errors import StoreError
from mlpipe.store.atomic import make_dir, read_json, write_json

PRESENT, MISSING, DAMAGED = "present", "missing", "damaged"


@dataclass(frozen=True)
class CacheEntry:
    data_hash: str
    path: Path
    md5: str
    size: int
    job_hash: str
    created: float
    files: dict[str, int] | None = None  # a folder's files and their sizes; None for a file

    def sidecar(self) -> dict:
        record = {"data_hash": self.data_hash, "md5": self.md5, "size": self.size, "job_hash": self.job_hash,
                  "created": self.created}
        if self.files is not None:
            record["files"] = self.files
        return record


def tree_files(path: Path) -> dict[str, int] | None:
    """A folder's regular files and sizes (links not followed); None for a file."""
    if not path.is_dir() or path.is_symlink():
        return None
    files = {}
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            full = os.path.join(dirpath, name)
            files[os.path.relpath(full, path).replace(os.sep, "/")] = os.lstat(full).st_size
    return files


def _state(path: str, meta: dict) -> str:
    """PRESENT when the data at `path` matches the sidecar's size or file list (stats only);
    MISSING when nothing is at `path`; DAMAGED otherwise (a folder that lost a file included)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return MISSING
    except OSError:
        return DAMAGED
    try:
        files = meta.get("files")
        if files is None:
            return PRESENT if stat.S_ISREG(st.st_mode) and st.st_size == meta["size"] else DAMAGED
        if not stat.S_ISDIR(st.st_mode):
            return DAMAGED
        for rel, size in files.items():
            st = os.lstat(os.path.join(path, rel))
            if not stat.S_ISREG(st.st_mode) or st.st_size != size:
                return DAMAGED
        return PRESENT
    except (OSError, KeyError, TypeError, AttributeError):
        return DAMAGED


def _make_read_only(path: Path, st: os.stat_result) -> None:
    """Protect published bytes from jobs that would edit their inputs in place.

    Called on the entry inside the cache (`st`: its lstat), and links are never followed: no
    file outside the cache ever changes mode.
    """
    if not stat.S_ISDIR(st.st_mode):
        if stat.S_ISREG(st.st_mode):
            os.chmod(path, st.st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        return
    files = [
        os.path.join(dirpath, name) for dirpath, _dirs, names in os.walk(path) for name in names]
    for file in files:
        st = os.lstat(file)
        if stat.S_ISREG(st.st_mode):
            os.chmod(file, st.st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


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
            fresh = spare.with_name(f"{prefix}{os.getpid()}-{os.urandom(6).hex()}")  # never a name mkdtemp makes
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
    """exists / get / put / list over hash-named entries, plus stamps for jobs without outputs."""

    def __init__(self, data_dir: Path, scratch_dir: Path, stamps_dir: Path | None = None):
        self.data_dir = data_dir
        self.scratch_dir = scratch_dir
        self.stamps_dir = stamps_dir or data_dir.parent / "stamps"
        self._data = os.fspath(data_dir)  # string paths: a run looks up thousands of entries
        # NOTE: only complete entries are remembered (a run asks for each one several times); an
        # absent one is looked up again, since another process may publish it meanwhile. They are
        # kept as their sidecar's fields: a no-op run asks thousands of them only for their md5.
        self._present: dict[str, tuple[str, int, str, float, dict[str, int] | None]] = {}

    def path(self, data_hash: str) -> Path:
        return Path(self.path_str(data_hash))

    def path_str(self, data_hash: str) -> str:
        return f"{self._data}{os.sep}{data_hash[:2]}{os.sep}{data_hash}"

    def _sidecar_path(self, data_hash: str) -> Path:
        return Path(self.path_str(data_hash) + ".json")

    def _sidecar(self, data_hash: str) -> dict | None:
        """The parsed sidecar; None when missing, torn or empty (a crash mid-write reads as absent)."""
        return read_json(self.path_str(data_hash) + ".json")

    def state(self, data_hash: str) -> str:
        """PRESENT, MISSING (no sidecar, or no data) or DAMAGED (data of another size or shape)."""
        if data_hash in self._present:
            return PRESENT
        meta = self._sidecar(data_hash)
        if meta is None:
            return MISSING
        state = _state(self.path_str(data_hash), meta)
        if state == PRESENT:
            try:
                self._present[data_hash] = (str(meta["md5"]), int(meta["size"]), str(meta["job_hash"]),
                                            float(meta["created"]), meta.get("files"))
            except (KeyError, TypeError, ValueError):
                return DAMAGED
        return state

    def exists(self, data_hash: str) -> bool:
        return self.state(data_hash) == PRESENT

    def get(self, data_hash: str) -> CacheEntry | None:
        """The complete entry, or None (missing or damaged)."""
        if not self.exists(data_hash):
            return None
        return CacheEntry(data_hash, self.path(data_hash), *self._present[data_hash])

    def content_md5(self, data_hash: str) -> str | None:
        """The complete entry's content md5 (what downstream jobs hash), or None."""
        return self._present[data_hash][0] if self.exists(data_hash) else None

    def new_scratch(self, prefix: str) -> Path:
        """A fresh folder `PREFIX<pid>-…` under the scratch dir (the pid says who owns it)."""
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        import tempfile  # only when a job runs or data is pulled

        return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=self.scratch_dir))

    def put(self, data_hash: str, src: Path, *, md5: str, job_hash: str, replace: bool = False) -> CacheEntry:
        """Move `src` (same filesystem, no symbolic links) into the cache by atomic rename; then
        make it read-only and write the sidecar, which marks the entry complete.

        An existing complete entry wins unless `replace` (a forced rerun) is set.
        """
        existing = None if replace else self.get(data_hash)
        if existing is not None:
            remove_tree(src)
            return existing
        where = self.path_str(data_hash)
        target, sidecar = Path(where), where + ".json"
        self._present.pop(data_hash, None)
        try:
            st = os.lstat(src)
            files = tree_files(src) if stat.S_ISDIR(st.st_mode) else None
            size = sum(files.values()) if files is not None else st.st_size
            entry = CacheEntry(data_hash, target, md5, size, job_hash, time.time(), files)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(sidecar)  # a damaged entry being replaced
            if os.path.lexists(where):
                trash = self.new_scratch("trash-")
                os.rename(where, trash / "old")
                remove_tree(trash)
            else:
                make_dir(os.path.dirname(where))
            os.rename(src, where)
            _make_read_only(target, st)
            # in place, no temp file: a torn sidecar does not parse, which reads as missing
            write_json(sidecar, entry.sidecar())
        except OSError as exc:
            with contextlib.suppress(OSError):  # a sidecar cut short (a full disk) is not left behind
                os.unlink(sidecar)
            raise StoreError(f"cannot publish {data_hash} into the cache at {target}: {exc.strerror or exc}") from exc
        self._present[data_hash] = (md5, size, job_hash, entry.created, files)
        return entry

    def remove(self, data_hash: str) -> None:
        self._present.pop(data_hash, None)
        self._sidecar_path(data_hash).unlink(missing_ok=True)
        remove_tree(self.path(data_hash))

    def list(self) -> Iterator[str]:
        """Every data hash with a sidecar (complete or not: `state` tells)."""
        if not self.data_dir.is_dir():
            return
        for shard in self.data_dir.iterdir():
            if shard.is_dir():
                for sidecar in shard.glob("*.json"):
                    yield sidecar.stem

    # -- stamps: the cache entry of a job without outputs ------------------------------------
    def has_stamp(self, job_hash: str) -> bool:
        return os.path.exists(os.path.join(self.stamps_dir, job_hash))

    def stamp(self, job_hash: str) -> None:
        try:
            self.stamps_dir.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.stamps_dir / job_hash, os.O_WRONLY | os.O_CREAT, 0o644))
        except OSError as exc:
            raise StoreError(f"cannot stamp job {job_hash} in {self.stamps_dir}: {exc.strerror or exc}") from exc
