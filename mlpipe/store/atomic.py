"""Files replaced atomically: written beside their final name, then renamed over it, so a
reader (or a crash) sees the old content or the new, never half of it (and, for the one case
where that costs more than it protects, a plain write). Their reader treats a torn or empty
file as absent."""

from __future__ import annotations

import json
import os
from pathlib import Path

# NOTE: compact JSON: json's C encoder is used only without `indent` (3x faster for job records).
_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temp file beside `path` and rename it in."""
    import tempfile  # (and its `random`) only when something is written: a no-op run writes nothing
    try:
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except FileNotFoundError:  # the folder's first file: one mkdir, only then
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
    write_bytes_atomic(path, _JSON.encode(data).encode())


def write_json(path: Path, data: object) -> None:
    """Write JSON in place (not atomic): for a file whose torn state reads as absent anyway."""
    with open(path, "wb") as out:
        out.write(_JSON.encode(data).encode())


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
