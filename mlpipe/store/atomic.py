"""File helpers of the store. Files replaced atomically: written beside their final name, then
renamed over it, so a reader (or a crash) sees the old content or the new, never half of it;
and, where that costs more than it protects (a job's record, a cache sidecar), a write in place
whose torn state reads as absent: `read_json` treats a torn or empty file as absent."""

from __future__ import annotations

import json
import os
from pathlib import Path

# NOTE: compact JSON: json's C encoder is used only without `indent` (3x faster for job records).
_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def write_bytes_atomic(path: Path, data: bytes, *, durable: bool = False, mode: int | None = None) -> None:
    """Write `data` to a temp file beside `path` (hidden, named `.NAME.XXXXXXXX`: no `*.yaml`
    listing matches it) and rename it in. `durable`: on disk before the rename (a user's file,
    which a crash must leave old or new); `mode`: the new file's permissions (else 0600)."""
    import tempfile  # (and its `random`) only when something is written: a no-op run writes nothing
    try:
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except FileNotFoundError:  # the folder's first file: one mkdir, only then
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: object) -> None:
    write_bytes_atomic(path, _JSON.encode(data).encode())


def write_json(path: str | Path, data: object) -> None:
    """Write JSON in place (not atomic): for a file whose torn state reads as absent anyway.

    NOTE: over an older version, the new bytes are written over the old ones and the file is
    then cut to their length, never truncated to zero first: ext4 flushes a file truncated to
    zero and rewritten, or renamed over another, to disk at once (its `auto_da_alloc`
    safeguard), which cost a job's record ~0.2 ms per write. A reader in between sees the old
    record, or bytes that do not parse (read as absent), never a wrong record.
    """
    raw = _JSON.encode(data).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        view, done = memoryview(raw), 0
        while done < len(raw):
            done += os.pwrite(fd, view[done:], done)
        os.ftruncate(fd, len(raw))
    finally:
        os.close(fd)


def make_dir(path: str) -> None:
    """`mkdir -p` in one syscall when the parent exists (a job's record and cache folders)."""
    try:
        os.mkdir(path)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
    except FileNotFoundError:
        os.makedirs(path, exist_ok=True)


def read_json(path: str) -> dict | None:
    """A JSON object from `path`; None when it is missing, torn, empty or not an object."""
    # NOTE: a string path and os.open/os.read, not pathlib and open(): half the cost, and a run
    # reads one sidecar per job input, `ml metrics` 10,000 records.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        data = json.loads(b"".join(chunks))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    return data if isinstance(data, dict) else None
