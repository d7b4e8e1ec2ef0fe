"""Forget a pipe (`ml deletepipe`): its doit DB and its job records. Cache entries stay until
`ml gc` finds that no pipe reaches them, since another pipe may share them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlpipe.core.errors import UsageError
from mlpipe.home.settings import Settings
from mlpipe.store import records
from mlpipe.store.cache import remove_tree
from mlpipe.store.lock import is_locked, lock_path


@dataclass(frozen=True)
class Forgotten:
    databases: list[Path]
    records: list[records.JobSummary]


def pipe_state(settings: Settings, pipe_id: str) -> Forgotten:
    """What MLPipe keeps about `pipe_id`."""
    from mlpipe.engine.doit_tasks import db_path

    db = db_path(settings, pipe_id)
    databases = [p for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")) if p.exists()]
    mine = [s for s in records.list_summaries(settings.jobs_dir) if s.pipe == pipe_id]
    return Forgotten(databases, mine)


def forget_pipe(settings: Settings, pipe_id: str, *, dry_run: bool) -> Forgotten:
    """Remove (or with `dry_run` only list) the pipe's doit DB and job records."""
    if is_locked(lock_path(settings.locks_dir, "pipe", pipe_id)):
        raise UsageError(f"{pipe_id} is running: stop it first (ml cancelpipe {pipe_id})")
    state = pipe_state(settings, pipe_id)
    running = [s for s in state.records if records.effective_status(s) == records.RUNNING]
    if running:
        raise UsageError(f"{pipe_id}: job {running[0].job_id[:12]} ({running[0].job}) is running: "
                         f"ml canceljob {running[0].job_id[:12]} first")
    if not dry_run:
        for path in state.databases:
            path.unlink(missing_ok=True)
        for summary in state.records:
            remove_tree(records.job_dir(settings.jobs_dir, summary.job_id))
    return state
