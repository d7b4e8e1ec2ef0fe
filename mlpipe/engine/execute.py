"""The one place MLPipe starts a job's process: argv list, explicit env and cwd, logs captured."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

_running: set[subprocess.Popen] = set()
_lock = threading.Lock()
_devnull: list[int] = []  # every job's stdin, opened once (Popen's DEVNULL opens it per process)


def run_process(
    argv: list[str],
    *,
    cwd: str | Path,
    env: Mapping[str, str] | Mapping[bytes, bytes],
    stdout_path: str | Path,
    stderr_path: str | Path,
    on_start: Callable[[int], None] = lambda pid: None,
    echo: tuple[IO[str], str] | None = None,
    pass_fds: tuple[int, ...] = (),
) -> int:
    """Run `argv` to completion and return its exit code (negative: killed by that signal).

    `echo=(stream, prefix)` also copies every output line to `stream`, prefixed; `pass_fds` are
    inherited by the job (its job lock, held for as long as the job lives).
    """
    # NOTE: start_new_session puts the job in its own process group, so stopping MLPipe can
    # end the job *and* everything it spawned (killpg), while a terminal's Ctrl-C reaches
    # MLPipe first and is turned into an orderly stop.
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=_null_fd(),
                stdout=subprocess.PIPE if echo else out,
                stderr=subprocess.PIPE if echo else err,
                start_new_session=True,
                pass_fds=pass_fds,
            )
        except OSError as exc:
            err.write(f"mlpipe: cannot start {argv[0]}: {exc.strerror or exc}\n".encode())
            return 127
        with _lock:
            _running.add(proc)
        try:
            on_start(proc.pid)
            if echo:
                _tee(proc, out, err, *echo)
            return proc.wait()
        except BaseException:
            _stop(proc, 5.0)  # interrupted (Ctrl-C, SIGTERM): never leave the job running
            raise
        finally:
            with _lock:
                _running.discard(proc)


def _null_fd() -> int:
    with _lock:
        if not _devnull:
            _devnull.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
        return _devnull[0]


def _tee(proc: subprocess.Popen, out: IO[bytes], err: IO[bytes], stream: IO[str], prefix: str) -> None:
    def pump(pipe: IO[bytes], log: IO[bytes]) -> None:
        for line in iter(pipe.readline, b""):
            log.write(line)
            stream.write(f"{prefix}{line.decode(errors='replace').rstrip()}\n")
            stream.flush()

    threads = [threading.Thread(target=pump, args=pair) for pair in ((proc.stdout, out), (proc.stderr, err))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def terminate_all(grace_s: float = 5.0) -> None:
    """Stop every running job (called on Ctrl-C or SIGTERM)."""
    with _lock:
        procs = list(_running)
    for proc in procs:
        _stop(proc, grace_s)


def _stop(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM the job's process group, SIGKILL it if it is still there after `grace_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            continue


def describe_exit(code: int) -> str:
    """`2` -> "exit code 2"; `-9` -> "killed by SIGKILL"."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def stop_process_group(pid: int, grace_s: float = 5.0) -> None:
    """SIGTERM the process group led by `pid` (not our child), SIGKILL it after `grace_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
