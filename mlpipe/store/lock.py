"""Advisory file locks (flock): one per pipe for a run, one per job (its record folder) while it executes.

The kernel drops a lock when the last process holding it dies, so a killed run never leaves a
stale lock. A job's process inherits its job lock: the lock lives exactly as long as the job,
even when the `ml runpipe` that started it was killed.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mlpipe.core.errors import BusyError
from mlpipe.core.hashing import md5_text


def lock_path(locks_dir: Path, kind: str, key: str) -> Path:
    return locks_dir / f"{kind}-{md5_text(key)}.lock"


@contextmanager
def hold_lock(
    path: str | Path, *, wait: bool = True, busy_message: str = "", on_wait: Callable[[], None] | None = None
) -> Iterator[int]:
    """Hold an exclusive lock on `path`; yields its file descriptor (to hand to a child process).
    If someone else has it: without `wait` raise BusyError, else call `on_wait` (to tell the user
    or to stop an orphan) and block until it is free."""
    if os.path.isdir(path):  # a folder is its own lock (a job's record folder): no file to create
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise BusyError(busy_message or f"{path} is locked by another run") from None
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def is_locked(path: Path) -> bool:
    """True when some process holds the lock on `path` (`ml gc`: is a pipe running, a scratch folder's job alive?)."""
    try:
        fd = os.open(path, os.O_RDONLY)  # flock needs no write access: this works on a read-only home
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
