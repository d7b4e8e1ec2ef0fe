"""Who is running a pipe: `locks/pipe-<md5>.run` beside the pipe's lock, while `ml runpipe` holds it.

    {"pid": 4242, "host": "build-1", "pipe": "app/pipe/train.yaml", "started": 1764745200.0}

`ml cancelpipe` reads it to signal that run; the lock itself says whether the run is alive.
`running_pipe` is the one way a run takes the pipe's lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlpipe.store.atomic import write_json_atomic
from mlpipe.store.lock import hold_lock, is_locked, lock_path
from mlpipe.store.records import HOST


@dataclass(frozen=True)
class PipeRun:
    pid: int
    host: str
    pipe: str
    started: float


def run_file(locks_dir: Path, pipe_id: str) -> Path:
    return lock_path(locks_dir, "pipe", pipe_id).with_suffix(".run")


@contextmanager
def running_pipe(locks_dir: Path, pipe_id: str, *, wait: bool = True) -> Iterator[None]:
    """Hold the pipe's run lock (`ml runpipe`, `ml runjob`) and record this process as its runner.

    Busy: without `wait` BusyError (exit 75), else say once that we wait, and wait.
    """

    def say_waiting() -> None:
        print(f"waiting for another run of {pipe_id} to finish ...", file=sys.stderr, flush=True)

    with (hold_lock(lock_path(locks_dir, "pipe", pipe_id), wait=wait, busy_message=f"{pipe_id} is already running",
                    on_wait=say_waiting),
          _recording_run(locks_dir, pipe_id)):
        yield


@contextmanager
def _recording_run(locks_dir: Path, pipe_id: str) -> Iterator[None]:
    """Say that this process runs `pipe_id` (for `ml cancelpipe`), while it holds the pipe's lock."""
    path = run_file(locks_dir, pipe_id)
    write_json_atomic(path, {"pid": os.getpid(), "host": HOST, "pipe": pipe_id, "started": time.time()})
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def current_run(locks_dir: Path, pipe_id: str) -> PipeRun | None:
    """The live run of `pipe_id`, or None when nobody holds its lock or it left no run file."""
    if not is_locked(lock_path(locks_dir, "pipe", pipe_id)):
        return None
    return _read(run_file(locks_dir, pipe_id))


def live_runs(locks_dir: Path) -> list[PipeRun]:
    """Every pipe run of this home whose lock is held."""
    found = []
    for path in sorted(locks_dir.glob("pipe-*.run")):
        run = _read(path)
        if run is not None and is_locked(path.with_suffix(".lock")):
            found.append(run)
    return found


def _read(path: Path) -> PipeRun | None:
    try:
        data = json.loads(path.read_text())
        return PipeRun(int(data["pid"]), str(data["host"]), str(data["pipe"]), float(data["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
