"""Garbage collection (`ml gc`): delete cached data and job records no pipe reaches any more.

    every pipe on the apps path ──(its lock free?)──yes──> Builder.identity(job, fetch=False)
                                │                          ├─ resolved:   its job hash + data hashes
                                │                          └─ unresolved: the newest record of that job
                                └──no (running now)──────> everything recorded for that pipe
    + every record still running (any pipe): its outputs and its inputs
    = reachable.   Removed: the rest, when older than `keep_days` (created / ended time),
    and every scratch folder whose owner is dead: its `ml` process, and the job working in it.

The locks of all idle pipes are held while gc decides and deletes, so no pipe starts meanwhile.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from mlpipe.core.errors import BusyError, MlpipeError
from mlpipe.home.apps import AppIndex
from mlpipe.home.settings import Settings
from mlpipe.ops.rerun import data_hash_of
from mlpipe.store import records
from mlpipe.store.cache import LocalCache, remove_tree, tree_files
from mlpipe.store.lock import hold_lock, is_locked, lock_path

DAY_S = 86400.0
DATA, JOB, SCRATCH = "data", "job", "scratch"
# cache/tmp/PREFIX<pid>-…, and job-<job_hash>-<pid>-… for a job's working directory
_SCRATCH_NAME = re.compile(r"^[a-z]+-(?:(?P<job>[0-9a-f]{32})-)?(?P<pid>\d+)-")


@dataclass(frozen=True)
class Item:
    """One thing gc removes (or would remove)."""

    kind: str  # DATA or JOB
    key: str  # data hash or job id
    size: int
    when: float  # a cache entry's creation, a record's end (or start): epoch seconds
    what: str


@dataclass
class Reachable:
    """What pipes still need: data hashes and job ids, and why some were kept wholesale."""

    data: set[str] = field(default_factory=set)
    jobs: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def keep(self, summary: records.JobSummary) -> None:
        self.jobs.add(summary.job_id)
        self.data.update(summary.outputs.values())


@dataclass
class Collection:
    """The outcome: what was removed (or would be), and how much was kept and why."""

    removed: list[Item]
    kept_reachable: int  # cache entries and job records that pipes reach
    kept_young: int  # unreachable, but younger than keep_days
    notes: list[str]


def collect_garbage(settings: Settings, keep_days: float, dry_run: bool) -> Collection:
    """Find unreachable data and records older than `keep_days`; delete them unless `dry_run`.

    Ages count back from when gc started, so nothing written while it runs is ever a candidate.
    """
    cutoff = time.time() - keep_days * DAY_S
    apps = AppIndex.discover(settings)
    cache = LocalCache(settings.data_dir, settings.scratch_dir)
    with ExitStack() as stack:
        # a dry run deletes nothing, so it takes no lock (and works on a read-only home)
        busy = [pipe_id for pipe_id, _ in apps.pipe_paths()
                if (_is_running(settings, pipe_id) if dry_run else not _try_lock(stack, settings, pipe_id))]
        summaries = records.list_summaries(settings.jobs_dir)
        reachable = find_reachable(settings, apps, summaries, busy)
        entries, job_ids = list(cache.list()), records.job_ids(settings.jobs_dir)
        unreachable_data = [h for h in entries if h not in reachable.data]
        unreachable_jobs = sorted(job_ids - reachable.jobs)
        candidates = [*_data_items(cache, unreachable_data, summaries),
                      *_job_items(settings.jobs_dir, unreachable_jobs, summaries)]
        removed = [item for item in candidates if item.when < cutoff] + list(_dead_scratch(settings))
        if not dry_run:
            _remove(settings, cache, removed)
    kept_reachable = len(entries) - len(unreachable_data) + len(job_ids) - len(unreachable_jobs)
    return Collection(removed, kept_reachable, len(candidates) - len(removed), reachable.notes)


def _is_running(settings: Settings, pipe_id: str) -> bool:
    return is_locked(lock_path(settings.locks_dir, "pipe", pipe_id))


def _try_lock(stack: ExitStack, settings: Settings, pipe_id: str) -> bool:
    try:
        stack.enter_context(hold_lock(lock_path(settings.locks_dir, "pipe", pipe_id), wait=False))
    except BusyError:
        return False
    return True


def find_reachable(
    settings: Settings, apps: AppIndex, summaries: list[records.JobSummary], busy: list[str]
) -> Reachable:
    """Every data hash and job id a pipe on the apps path (or a running job) still needs."""
    reachable = Reachable()
    for pipe_id, _path in apps.pipe_paths():
        if pipe_id in busy:
            reachable.notes.append(f"{pipe_id} is running: kept everything recorded for it")
            _keep_pipe(reachable, summaries, pipe_id)
        else:
            _add_pipe(settings, reachable, summaries, pipe_id)
    for summary in summaries:
        if records.effective_status(summary) == records.RUNNING:
            reachable.keep(summary)
            record = records.read_record(settings.jobs_dir, summary.job_id)
            origins = [o for refs in (record.input_refs.values() if record else []) for o in refs]
            reachable.data.update(h for h in map(data_hash_of, origins) if h)
    return reachable


def _add_pipe(settings: Settings, reachable: Reachable, summaries: list[records.JobSummary], pipe_id: str) -> None:
    """The pipe's jobs at their current hashes; a job whose hash is unknown keeps its newest record."""
    from mlpipe.engine.build import Builder, Unresolved
    from mlpipe.home.loader import load_plan

    try:
        plan, apps = load_plan(settings, pipe_id)
    except MlpipeError as exc:
        reachable.notes.append(f"{pipe_id} does not load ({str(exc).splitlines()[0]}): kept everything recorded for it")
        _keep_pipe(reachable, summaries, pipe_id)
        return
    builder = Builder(settings, plan, apps)
    for name in plan.jobs:
        try:
            identity = builder.identity(name, fetch=False)
        except (Unresolved, MlpipeError):
            newest = next((s for s in summaries if s.pipe == pipe_id and s.job == name
                           and s.status == records.SUCCEEDED), None)
            if newest is not None:
                reachable.keep(newest)
            continue
        reachable.jobs.add(identity.job_hash)
        reachable.data.update(identity.outputs.values())
    builder.digests.save()


def _keep_pipe(reachable: Reachable, summaries: list[records.JobSummary], pipe_id: str) -> None:
    for summary in summaries:
        if summary.pipe == pipe_id:
            reachable.keep(summary)


def _data_items(cache: LocalCache, hashes: list[str], summaries: list[records.JobSummary]) -> Iterator[Item]:
    """Each cache entry, described by the record that produced it."""
    producers = {h: (s, out) for s in reversed(summaries) for out, h in s.outputs.items()}  # newest wins
    for data_hash in hashes:
        entry = cache.get(data_hash)
        if entry is None:
            continue
        what = "no job record produced it here"
        if data_hash in producers:
            summary, output = producers[data_hash]
            what = f"output '{output}' of job '{summary.job}' in {summary.pipe}"
        yield Item(DATA, data_hash, entry.size, entry.created, what)


def _job_items(jobs_dir: Path, job_ids: list[str], summaries: list[records.JobSummary]) -> Iterator[Item]:
    """Each job record folder, dated by its end (or start; the folder's mtime when unreadable)."""
    by_id = {s.job_id: s for s in summaries}
    for job_id in job_ids:
        folder = records.job_dir(jobs_dir, job_id)
        summary = by_id.get(job_id) or _summary_of(jobs_dir, job_id)  # not indexed yet: a new record
        if summary is not None and records.effective_status(summary) == records.RUNNING:
            continue
        when = (summary.ended or summary.started) if summary else None
        what = f"job '{summary.job}' in {summary.pipe} ({summary.status})" if summary else "unreadable record"
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
        yield Item(JOB, job_id, size, when or folder.stat().st_mtime, what)


def _dead_scratch(settings: Settings) -> Iterator[Item]:
    """Scratch folders left by a killed `ml`, once no job is working in them any more."""
    try:
        names = os.listdir(settings.scratch_dir)
    except FileNotFoundError:
        return
    for name in names:
        found = _SCRATCH_NAME.match(name)
        if found is None or records.pid_alive(int(found["pid"])):
            continue
        job = found["job"]
        if job and is_locked(records.job_dir(settings.jobs_dir, job)):  # its orphaned job still runs
            continue
        path = settings.scratch_dir / name
        files = tree_files(path)
        yield Item(SCRATCH, name, sum(files.values()) if files else 0, os.lstat(path).st_mtime,
                   f"scratch folder of dead process {found['pid']}")


def _summary_of(jobs_dir: Path, job_id: str) -> records.JobSummary | None:
    record = records.read_record(jobs_dir, job_id)
    return records.JobSummary.of(record) if record else None


def _remove(settings: Settings, cache: LocalCache, items: list[Item]) -> None:
    for item in items:
        if item.kind == DATA:
            cache.remove(item.key)
        elif item.kind == SCRATCH:
            remove_tree(settings.scratch_dir / item.key)
        else:
            remove_tree(records.job_dir(settings.jobs_dir, item.key))
    if any(item.kind == JOB for item in items):
        records.rebuild_index(settings.jobs_dir)


def human_size(size: int) -> str:
    """1536 -> '1.5 kB' (powers of 1024, as `du -h` counts)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"
