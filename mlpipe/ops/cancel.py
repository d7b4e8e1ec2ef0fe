"""Stop running jobs and pipe runs of this home (`ml canceljob`, `cancelpipe`, `cleanjob`).

    canceljob  ─ marker jobs/<id>/cancel ─ SIGTERM the job's process group (SIGKILL after a grace)
               └ its run records `canceled`; with no run left, the record is set here
    cancelpipe ─ marker jobs/.cancel-run-<pid> ─ SIGTERM the `ml runpipe` (it stops its jobs,
               records them `canceled`, publishes nothing) ─ then any job of the pipe still running

Only processes this home's records or run files name, on this host, are signalled; a job's pid is
checked against the process's `MLPIPE_JOB_ID` (Linux), so a reused pid is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from mlpipe.core.errors import UsageError
from mlpipe.home.settings import Settings
from mlpipe.store import records
from mlpipe.store.cancel import request_job_cancel, run_marker
from mlpipe.store.runs import PipeRun, current_run, live_runs

GRACE_S = 5.0  # between SIGTERM and SIGKILL, as when `ml runpipe` itself is interrupted
RECORD_WAIT_S = 10.0  # for the run to record the end of a job it started


def running_jobs(settings: Settings, pipe_id: str | None = None) -> list[records.JobSummary]:
    """Records of this home still running on this host (of one pipe, or all)."""
    return [s for s in records.list_summaries(settings.jobs_dir)
            if s.status == records.RUNNING and s.host == records.HOST and (pipe_id in (None, s.pipe))
            and records.is_alive(s)]


def cancel_job(settings: Settings, job_id: str) -> records.JobRecord:
    """Stop the running job `job_id` and its children; return its record, now `canceled`."""
    jobs_dir = settings.jobs_dir
    record = records.read_record(jobs_dir, job_id)
    if record is None:
        raise UsageError(f"job {job_id}: cannot read its record")
    status = records.effective_status(record)
    if status != records.RUNNING:
        raise UsageError(f"job {job_id[:12]} ({record.pipe}, job '{record.job}') is not running (status: {status})")
    if record.pid is None:
        raise UsageError(f"job {job_id[:12]} is starting and has no process yet: try again in a moment")
    if record.host != records.HOST:
        raise UsageError(f"job {job_id[:12]} runs on host {record.host}: cancel it there")
    if not _is_job_process(record.pid, job_id):
        raise UsageError(f"job {job_id[:12]}: process {record.pid} is no longer this job")
    runner = _parent_pid(record.pid)  # the run waiting for the job (1, init, once that run was killed)
    request_job_cancel(jobs_dir, job_id, record.pid)
    _stop_group(record.pid, lambda: records.is_alive(record))
    _wait(lambda: _read_status(jobs_dir, job_id) != records.RUNNING or not _may_record(runner), RECORD_WAIT_S)
    final = records.read_record(jobs_dir, job_id) or record
    if final.status == records.RUNNING:  # no run is left to record it (it was killed)
        final.status, final.ended, final.error = records.CANCELED, time.time(), "canceled"
        records.write_record(jobs_dir, final)
    return final


def cancel_pipe(settings: Settings, pipe_id: str) -> tuple[PipeRun | None, list[records.JobRecord]]:
    """Stop the running `ml runpipe` of `pipe_id` and every job of the pipe; return the run and
    the records of the jobs that were running."""
    run = current_run(settings.locks_dir, pipe_id)
    if run is None and not running_jobs(settings, pipe_id):
        raise UsageError(f"{pipe_id} is not running")
    return run, _stop(settings, [run] if run is not None else [], pipe_id)


def cancel_everything(settings: Settings) -> tuple[list[PipeRun], list[records.JobRecord]]:
    """`ml cleanjob`: stop every pipe run of this home on this host and every job still running."""
    runs = [run for run in live_runs(settings.locks_dir) if run.host == records.HOST]
    return runs, _stop(settings, runs, None)


def _stop(settings: Settings, runs: list[PipeRun], pipe_id: str | None) -> list[records.JobRecord]:
    """Stop `runs` (they stop their jobs), then any job (of `pipe_id`) still running."""
    before = running_jobs(settings, pipe_id)
    for run in runs:
        _stop_run(settings, run)
    for summary in running_jobs(settings, pipe_id):  # orphans, or jobs of a run that left no run file
        cancel_job(settings, summary.job_id)
    found = (records.read_record(settings.jobs_dir, s.job_id) for s in before)
    return [record for record in found if record is not None]


def _stop_run(settings: Settings, run: PipeRun) -> None:
    if run.host != records.HOST:
        raise UsageError(f"{run.pipe} runs on host {run.host} (pid {run.pid}): cancel it there")
    marker = run_marker(settings.jobs_dir, run.pid)
    marker.write_text(run.pipe)
    try:
        with contextlib.suppress(ProcessLookupError):
            os.kill(run.pid, signal.SIGTERM)  # `ml runpipe` stops its jobs and records them
        if not _wait(lambda: not records.pid_alive(run.pid), GRACE_S + RECORD_WAIT_S):
            with contextlib.suppress(ProcessLookupError):
                os.kill(run.pid, signal.SIGKILL)
    finally:
        marker.unlink(missing_ok=True)


def _stop_group(pgid: int, alive: Callable[[], bool]) -> None:
    """SIGTERM the process group, SIGKILL it if it is still there after GRACE_S."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        if _wait(lambda: not alive(), GRACE_S):
            return


def _is_job_process(pid: int, job_id: str) -> bool:
    """The process runs this job (its environment says so); True where /proc cannot tell."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    return f"MLPIPE_JOB_ID={job_id}".encode() in environ.split(b"\0")


def _parent_pid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _may_record(runner: int | None) -> bool:
    """Whether the process that started a job may still record its end (unknown: assume it may)."""
    return runner is None or (runner != 1 and records.pid_alive(runner))


def _read_status(jobs_dir: Path, job_id: str) -> str | None:
    record = records.read_record(jobs_dir, job_id)
    return None if record is None else record.status


def _wait(done: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
