"""Job records: `jobs/<job_hash>/job.json` plus `stdout.log` and `stderr.log` (no database)."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from mlpipe.cache import write_json_atomic

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
HOST = socket.gethostname()


@dataclass
class JobRecord:
    job_id: str
    pipe: str
    job: str
    module: str
    parameters: dict[str, Any]
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    status: str = RUNNING
    started: float | None = None
    ended: float | None = None
    exit_code: int | None = None
    host: str = HOST
    pid: int | None = None
    argv: list[str] = field(default_factory=list)
    error: str | None = None
    # where each input came from: a URI, or "data:<data_hash>" for another job's output
    input_refs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return round(self.ended - self.started, 3)


def job_dir(jobs_dir: Path, job_id: str) -> Path:
    return jobs_dir / job_id


def log_paths(jobs_dir: Path, job_id: str) -> tuple[Path, Path]:
    folder = job_dir(jobs_dir, job_id)
    return folder / "stdout.log", folder / "stderr.log"


def write_record(jobs_dir: Path, record: JobRecord) -> None:
    write_json_atomic(job_dir(jobs_dir, record.job_id) / "job.json", asdict(record))


def read_record(jobs_dir: Path, job_id: str) -> JobRecord | None:
    try:
        data = json.loads((job_dir(jobs_dir, job_id) / "job.json").read_text())
    except (OSError, ValueError):
        return None
    known = {f.name for f in fields(JobRecord)}
    return JobRecord(**{k: v for k, v in data.items() if k in known})


def is_alive(record: JobRecord) -> bool:
    """True while the recorded process still runs (checked only on the host that ran it)."""
    if record.host != HOST or record.pid is None:
        return record.host != HOST
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_status(record: JobRecord) -> str:
    """`running` only while the process lives; a killed run reads as `failed`."""
    if record.status == RUNNING and not is_alive(record):
        return FAILED
    return record.status
