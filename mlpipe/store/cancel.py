"""Cancel requests (`ml canceljob`, `ml cancelpipe`): small marker files beside the job records.

    jobs/<job_id>/cancel        holds the pid of the job process asked to stop
    jobs/.cancel-run-<pid>      the `ml runpipe` with that pid is being stopped by `ml cancelpipe`

The run that started a job reads them when the job ends badly, so it records `canceled` rather
than `failed`; a marker naming another pid (an old request) is ignored.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from mlpipe.store import records


def _job_marker(jobs_dir: Path, job_id: str) -> Path:
    return records.job_dir(jobs_dir, job_id) / "cancel"


def run_marker(jobs_dir: Path, pid: int) -> Path:
    return jobs_dir / f".cancel-run-{pid}"


def request_job_cancel(jobs_dir: Path, job_id: str, pid: int) -> None:
    _job_marker(jobs_dir, job_id).write_text(str(pid))


def mark_if_canceled(jobs_dir: Path, record: records.JobRecord) -> None:
    """Set `record` to `canceled` when a cancel request names its process (or this run)."""
    marker = _job_marker(jobs_dir, record.job_id)
    try:
        requested = marker.read_text().strip() == str(record.pid)
    except OSError:
        requested = False
    if requested or run_marker(jobs_dir, os.getpid()).exists():
        record.status, record.error = records.CANCELED, "canceled"
    with contextlib.suppress(OSError):
        marker.unlink()
