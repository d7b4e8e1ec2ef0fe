"""Job records: `jobs/<job_hash>/job.json` plus `stdout.log` and `stderr.log` (no database).

    jobs/<job_hash>/job.json     the full record, written in place when the job starts and when it ends
    jobs/index.jsonl             one summary line per write, a JSON array in JobSummary field
                                 order (append-only; the last line of a job id wins), so
                                 `ml listjob` reads one file, not 10,000
    jobs/index.lock              writers share it; rebuilding or compacting the index takes it alone

The index is a cache of the records: when it is missing it is rebuilt from the `job.json` files.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

from mlpipe.core.errors import UsageError
from mlpipe.store.atomic import make_dir, write_bytes_atomic, write_json

RUNNING, SUCCEEDED, FAILED, CANCELED = "running", "succeeded", "failed", "canceled"
HOST = os.uname().nodename  # socket.gethostname(), without importing socket
INDEX_NAME, INDEX_LOCK_NAME = "index.jsonl", "index.lock"
RECORD_NAME, STDOUT_NAME, STDERR_NAME = "job.json", "stdout.log", "stderr.log"
MIN_PREFIX = 6
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


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
    runner_pid: int | None = None  # the `ml` process that started the job (pid is the job's own)
    stderr_tail: list[str] = field(default_factory=list)  # last lines of a failed job's stderr
    sweep: dict[str, Any] | None = None    # a sweep member: {"job": SWEEP_JOB, "point": {PARAM: VALUE}}
    metrics: dict[str, Any] | None = None  # its `type: metrics` outputs, flattened
    select: dict[str, Any] | None = None   # a select step: metric, mode, winner, every member's value
    worker: dict[str, Any] | None = None   # run by a Dask worker: {"address", "home", "pid"}

    @property
    def duration_s(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return round(self.ended - self.started, 3)


def job_dir(jobs_dir: Path, job_id: str) -> Path:
    return jobs_dir / job_id


def log_paths(jobs_dir: Path, job_id: str) -> tuple[Path, Path]:
    folder = job_dir(jobs_dir, job_id)
    return folder / STDOUT_NAME, folder / STDERR_NAME


class JobSummary(NamedTuple):
    """What listings need from a record: one line of `jobs/index.jsonl` (a tuple: 10,000 build fast)."""

    job_id: str
    pipe: str
    job: str
    module: str
    status: str
    started: float | None = None
    ended: float | None = None
    exit_code: int | None = None
    host: str = HOST
    pid: int | None = None
    outputs: dict[str, str] = {}  # output name -> data hash (a shared default: never mutate it)
    sweep: str | None = None  # a sweep member: its sweep's job name (older index lines: None)

    @property
    def duration_s(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return round(self.ended - self.started, 3)

    @classmethod
    def of(cls, record: JobRecord) -> JobSummary:
        sweep = record.sweep.get("job") if isinstance(record.sweep, dict) else None
        return cls(*(getattr(record, name) for name in cls._fields[:-1]), sweep)


_NFIELDS, _MIN_ROW = len(JobSummary._fields), 5  # rows from a newer version may carry more fields
COMPACT_SLACK = 1000


def write_record(jobs_dir: str | Path, record: JobRecord) -> None:
    """Write `job.json` (when the job starts, and when it ends), then append its summary to the index.

    In place, no temp file and rename: one file per job less to create, and no flush to disk
    (see `write_json`). A record torn by a crash reads as absent; the index still has the line
    of the record before it, which listings show as failed once its process is gone.
    """
    folder, data = os.path.join(jobs_dir, record.job_id), dict(vars(record))  # the encoder only reads it
    try:
        write_json(os.path.join(folder, RECORD_NAME), data)
    except FileNotFoundError:  # the job ran elsewhere (a cluster's worker): its first record here
        make_dir(folder)
        write_json(os.path.join(folder, RECORD_NAME), data)
    _append_index(os.fspath(jobs_dir), _index_line(JobSummary.of(record)).encode())


class _Appender:
    """The index's lock and file, opened once per process (a run appends two lines per job)."""

    def __init__(self, jobs_dir: str):
        self.jobs_dir = jobs_dir
        self.index = os.path.join(jobs_dir, INDEX_NAME)
        self.lock_fd = os.open(os.path.join(jobs_dir, INDEX_LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
        self.fd: int | None = None

    def append(self, line: bytes) -> None:
        while True:
            fcntl.flock(self.lock_fd, fcntl.LOCK_SH)
            try:
                try:
                    current = os.stat(self.index).st_ino
                    # a compaction renamed a new index in while we held the old one open: follow it
                    if self.fd is None or os.fstat(self.fd).st_ino != current:
                        self.close_index()
                        self.fd = os.open(self.index, os.O_WRONLY | os.O_APPEND)
                except FileNotFoundError:
                    pass  # rebuilt below, outside the shared lock the rebuild must wait for
                else:
                    # NOTE: one write() on an O_APPEND file: concurrent writers never interleave their lines.
                    os.write(self.fd, line)
                    return
            finally:
                fcntl.flock(self.lock_fd, fcntl.LOCK_UN)
            rebuild_index(Path(self.jobs_dir))  # a home from before the index, or it was deleted

    def close_index(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def close(self) -> None:
        self.close_index()
        os.close(self.lock_fd)


_appender: _Appender | None = None  # one home at a time: a process rarely writes to two
_appender_lock = threading.Lock()


def _append_index(jobs_dir: str, line: bytes) -> None:
    global _appender
    with _appender_lock:
        if _appender is None or _appender.jobs_dir != jobs_dir:
            if _appender is not None:
                _appender.close()
            make_dir(jobs_dir)
            _appender = _Appender(jobs_dir)
        _appender.append(line)


def read_record(jobs_dir: Path, job_id: str) -> JobRecord | None:
    try:
        data = json.loads((job_dir(jobs_dir, job_id) / "job.json").read_text())
    except (OSError, ValueError):
        return None
    known = {f.name for f in fields(JobRecord)}
    return JobRecord(**{k: v for k, v in data.items() if k in known})


def job_ids(jobs_dir: Path) -> set[str]:
    """Every job id with a record folder (one directory listing)."""
    try:
        return {name for name in os.listdir(jobs_dir) if len(name) == 32 and _JOB_ID.match(name)}
    except FileNotFoundError:
        return set()


def list_summaries(jobs_dir: Path) -> list[JobSummary]:
    """Every job record's summary, newest first; from the index, rebuilt first when missing.

    An index with many superseded lines (each run writes three per job) is compacted on the way.
    """
    if not (jobs_dir / INDEX_NAME).exists():
        rebuild_index(jobs_dir)
    rows = _read_index(jobs_dir)
    present = job_ids(jobs_dir)
    latest = {row[0]: row for row in rows if row[0] in present}
    if len(rows) > 2 * len(latest) + COMPACT_SLACK:
        _compact(jobs_dir)
    summaries = [JobSummary(*row[:_NFIELDS]) for row in latest.values()]
    summaries.sort(key=lambda s: s.started or 0.0, reverse=True)
    return summaries


def rebuild_index(jobs_dir: Path) -> None:
    """Rewrite the index with one line per record folder (read from `job.json` when not indexed)."""
    if not jobs_dir.is_dir():
        return
    with _index_lock(jobs_dir, exclusive=True):
        _rewrite_index(jobs_dir)


def _compact(jobs_dir: Path) -> None:
    """Rebuild the index unless a writer holds it right now (then the next listing does it)."""
    try:
        with _index_lock(jobs_dir, exclusive=True, wait=False):
            _rewrite_index(jobs_dir)
    except BlockingIOError:
        pass


def _rewrite_index(jobs_dir: Path) -> None:
    present = job_ids(jobs_dir)
    latest = {row[0]: row for row in _read_index(jobs_dir) if row[0] in present}
    lines = [json.dumps(row, separators=(",", ":")) + "\n" for row in latest.values()]
    for job_id in present - set(latest):
        record = read_record(jobs_dir, job_id)
        if record is not None:
            lines.append(_index_line(JobSummary.of(record)))
    write_bytes_atomic(jobs_dir / INDEX_NAME, "".join(lines).encode())


def _index_line(summary: JobSummary) -> str:
    """A JSON array in field order: half the size of an object, and twice as fast to parse."""
    return json.dumps(list(summary), separators=(",", ":")) + "\n"


def _read_index(jobs_dir: Path) -> list[list[Any]]:
    """The index's rows, oldest first; damaged lines (a crash mid-write) are skipped."""
    try:
        text = (jobs_dir / INDEX_NAME).read_text()
    except FileNotFoundError:
        return []
    lines = text.splitlines()
    try:  # one C-level parse of the whole file; line by line only when a line is damaged
        rows = json.loads("[" + ",".join(lines) + "]") if lines else []
    except ValueError:
        rows = [_parse_line(line) for line in lines]
    return [row for row in rows if isinstance(row, list) and len(row) >= _MIN_ROW and isinstance(row[0], str)]


def _parse_line(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


@contextmanager
def _index_lock(jobs_dir: Path, *, exclusive: bool, wait: bool = True) -> Iterator[None]:
    """Writers share the lock; a rewrite holds it alone. Raises BlockingIOError when not `wait`."""
    jobs_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(jobs_dir / INDEX_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if wait else fcntl.LOCK_NB))
        yield
    finally:
        os.close(fd)


def find_job_id(jobs_dir: Path, prefix: str) -> str:
    """The one job id starting with `prefix` (6+ characters); UsageError when none or several match."""
    prefix = prefix.strip().lower()
    if len(prefix) < MIN_PREFIX:
        raise UsageError(f"job id '{prefix}' is too short: give at least {MIN_PREFIX} characters (see `ml listjob`)")
    matches = sorted(j for j in job_ids(jobs_dir) if j.startswith(prefix))
    if not matches:
        raise UsageError(f"no job record has an id starting with '{prefix}' (see `ml listjob`)")
    if len(matches) > 1:
        summaries = {s.job_id: s for s in list_summaries(jobs_dir) if s.job_id in matches}
        lines = [f"  {j}  {summaries[j].pipe} {summaries[j].job}" if j in summaries else f"  {j}" for j in matches]
        raise UsageError(f"job id '{prefix}' is ambiguous; it matches:\n" + "\n".join(lines))
    return matches[0]


def is_alive(record: JobRecord | JobSummary) -> bool:
    """True while the recorded process still runs (checked only on the host that ran it)."""
    if record.host != HOST or record.pid is None:
        return record.host != HOST
    return pid_alive(record.pid)


def pid_alive(pid: int) -> bool:
    """True while process `pid` of this host runs (an exited, unreaped one does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """True for a process that has exited but was not reaped (an orphan under an init that never
    reaps, as in some containers). Linux only; elsewhere False."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def effective_status(record: JobRecord | JobSummary) -> str:
    """`running` only while the process lives; a killed run reads as `failed`."""
    if record.status == RUNNING and not is_alive(record):
        return FAILED
    return record.status


def written_outputs(jobs_dir: Path, job_id: str) -> set[str] | None:
    """The outputs the job wrote when it last succeeded (an optional one may be left unwritten);
    None when it has not succeeded."""
    record = read_record(jobs_dir, job_id)
    if record is None or record.status != SUCCEEDED:
        return None
    return set(record.outputs)
