"""Run, dry-run, cancel and rerun from the web UI: each is what the command line does, nothing else.

    POST .../run     ─ check the pipe and the --set values here (422 with every problem)
                     ─ pipe lock free? ─ `ml runpipe PIPE --no-wait [-j N] [--set J.P=V]...` as a process
    POST .../dryrun  ─ `ml runpipe -n --json`'s answer (with the --set values), in-process, writes nothing
    POST .../cancel  ─ ops.cancel.cancel_pipe, as `ml cancelpipe` (its jobs are recorded `canceled`)
    POST /api/jobs/<id>/rerun ─ `ml runjob ID [--force]` as a process

A run started here is an ordinary `ml runpipe`: it takes the pipe's lock (a second one is refused,
here or in a terminal), records its jobs as usual (`ml listjob` shows them) and outlives the page
and the server (its own session). Its output goes to a log the page shows (`GET .../action`).
Arguments are an argv list, never a shell line: a parameter value is one argument, whatever it holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpipe.core.errors import SpecError, UsageError
from mlpipe.core.hashing import md5_text
from mlpipe.home.settings import Settings
from mlpipe.store import records
from mlpipe.store.lock import is_locked, lock_path
from mlpipe.store.runs import current_run
from mlpipe.ui.http import HttpError, invalid

LOG_TAIL = 16 * 1024  # of a started command's output, shown under the pipe's buttons


@dataclass(frozen=True)
class Started:
    """A command the page started, for one pipe (run and rerun both hold the pipe's lock)."""

    kind: str  # run | rerun | force
    command: tuple[str, ...]  # as a user would type it: ("ml", "runpipe", ...)
    process: subprocess.Popen
    log: Path
    started: float


def overrides_of(body: dict[str, Any]) -> dict[str, dict[str, str]]:
    """`{"set": {"JOB.PARAM": VALUE}}` -> `--set`'s `{JOB: {PARAM: "VALUE"}}` (typed by the module later)."""
    given = body.get("set") or {}
    if not isinstance(given, dict):
        raise HttpError(400, "set must be {\"JOB.PARAM\": VALUE, ...}")
    found: dict[str, dict[str, str]] = {}
    for key, value in given.items():
        job, dot, param = str(key).rpartition(".")
        if not dot or not job or not param or "=" in key or "\0" in key:
            raise HttpError(400, f"set {key!r}: expected JOB.PARAM")
        text = _as_text(value)
        if "\0" in text:
            raise HttpError(400, f"set {key}: a command-line value cannot hold a NUL byte")
        found.setdefault(job, {})[param] = text
    return found


def _as_text(value: Any) -> str:
    """A typed field's value as `--set` would be typed (bools and lists the way YAML reads them)."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return "" if value is None else str(value)


class Actions:
    """The commands one UI server started, by pipe id."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.started: dict[str, Started] = {}
        self._lock = threading.Lock()

    def dry_run(self, pipe_id: str, body: dict[str, Any]) -> dict[str, Any]:
        from mlpipe.ops.pipe_status import dry_run

        try:
            return dry_run(self.settings, pipe_id, overrides_of(body)).as_json()
        except SpecError as exc:
            raise invalid(exc.problems) from None

    def run(self, pipe_id: str, body: dict[str, Any]) -> dict[str, Any]:
        from mlpipe.ops.pipe_status import checked_builder

        jobs, force, keep_going = body.get("jobs"), body.get("force", False), body.get("keep_going", False)
        if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
            raise HttpError(400, "jobs (-j) must be a whole number of at least 1")
        if not isinstance(force, bool) or not isinstance(keep_going, bool):
            raise HttpError(400, "force and keep_going are true or false")
        overrides = overrides_of(body)
        try:  # refuse here, with every problem, what `ml runpipe` would refuse (exit 2)
            checked_builder(self.settings, pipe_id, overrides)
        except SpecError as exc:
            raise invalid(exc.problems) from None
        sets = [f"{job}.{param}={value}" for job, params in overrides.items() for param, value in params.items()]
        args = ["runpipe", pipe_id, "--no-wait", *(["-j", str(jobs)] if jobs else []),
                *[arg for item in sets for arg in ("--set", item)],
                *(["--force"] if force else []), *(["--keep-going"] if keep_going else [])]
        return self._start("run", pipe_id, args)

    def rerun(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        force = body.get("force", False)
        if not isinstance(force, bool):
            raise HttpError(400, "force is true or false")
        record = records.read_record(self.settings.jobs_dir, job_id)
        if record is None:
            raise HttpError(404, f"job {job_id} has no readable record")
        return self._start("force" if force else "rerun", record.pipe,
                           ["runjob", job_id, *(["--force"] if force else [])])

    def cancel(self, pipe_id: str) -> dict[str, Any]:
        from mlpipe.ops.cancel import cancel_pipe

        try:
            run, stopped = cancel_pipe(self.settings, pipe_id)
        except UsageError as exc:
            raise HttpError(409, str(exc)) from None
        return {"pipe": pipe_id, "run_pid": run.pid if run else None,
                "jobs": [{"job_id": r.job_id, "job": r.job, "status": r.status} for r in stopped]}

    def status(self, pipe_id: str) -> dict[str, Any]:
        """The command this server started last for the pipe: running or its exit code, its output."""
        with self._lock:
            started = self.started.get(pipe_id)
        if started is None:
            return {"pipe": pipe_id, "kind": None}
        code = started.process.poll()
        try:
            with open(started.log, "rb") as handle:
                handle.seek(max(0, handle.seek(0, os.SEEK_END) - LOG_TAIL))
                output = handle.read().decode("utf-8", errors="replace")
        except OSError:
            output = ""
        return {"pipe": pipe_id, "kind": started.kind, "command": list(started.command), "pid": started.process.pid,
                "running": code is None, "exit_code": code, "started": started.started, "output": output}

    def _start(self, kind: str, pipe_id: str, args: list[str]) -> dict[str, Any]:
        with self._lock:
            before = self.started.get(pipe_id)
            if before is not None and before.process.poll() is None:
                raise HttpError(409, f"{pipe_id} is already running: `ml {' '.join(before.command[1:3])}` "
                                f"started from this page (pid {before.process.pid})")
            if is_locked(lock_path(self.settings.locks_dir, "pipe", pipe_id)):
                run = current_run(self.settings.locks_dir, pipe_id)
                who = f" (pid {run.pid} on {run.host})" if run else ""
                raise HttpError(409, f"{pipe_id} is already running{who}: wait for it or cancel it")
            log = self.settings.state_dir / "ui" / f"{kind}-{md5_text(pipe_id)}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "wb") as out:
                # NOTE: `ml` itself, as an argv list (no shell), in its own session so that it
                # outlives the server like a run started from a terminal; the job processes are
                # still started by the one Popen site of the engine.
                process = subprocess.Popen(
                    [sys.executable, "-m", "mlpipe", *args], stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, cwd=self.settings.home, start_new_session=True,
                    env={**os.environ, "MLPIPE_HOME": str(self.settings.home)})
            self.started[pipe_id] = Started(kind, ("ml", *args), process, log, time.time())
        return {"pipe": pipe_id, "kind": kind, "command": ["ml", *args], "pid": process.pid}
