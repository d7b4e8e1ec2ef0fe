"""Decide and do one job: resolve its hashes, then reuse, pull or run it.

    resolve.py  identity: job_hash and data hashes from inputs, source, parameters
    build.py    decide:   in the cache? (`missing`, the one place) ─yes─> cached
                                         in the mirror?           ─yes─> pulled
                                         otherwise                ─────> run.py: execute, publish
    status.py   explain:  the dry run's status, action and reasons

The Builder knows nothing of doit: `doit_runner.py` calls `check` (is the job up to date?) and
`run` (make it so) from doit tasks.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Protocol

from mlpipe.core.errors import FetchError, JobFailed, MlpipeError, Problem
from mlpipe.core.plan import Plan, PlannedJob
from mlpipe.core.spec import ModuleSpec, Ref
from mlpipe.core.uri import Uri
from mlpipe.engine.executor import Executor, LocalExecutor
from mlpipe.engine.resolve import Identity, Resolver, Unresolved
from mlpipe.home.apps import AppIndex
from mlpipe.home.settings import Settings
from mlpipe.sources import Fetched, SourceContext, Sources
from mlpipe.store import records
from mlpipe.store.atomic import make_dir
from mlpipe.store.cache import DAMAGED, MISSING, CacheEntry, LocalCache
from mlpipe.store.digests import DigestCache
from mlpipe.store.lock import hold_lock

if TYPE_CHECKING:
    from mlpipe.engine.run import JobRunner

RAN, CACHED, PULLED, FAILED, SKIPPED = "ran", "cached", "pulled", "failed", "skipped"
__all__ = ["Builder", "Identity", "JobResult", "Unresolved", "RAN", "CACHED", "PULLED", "FAILED", "SKIPPED"]


class Mirror(Protocol):
    """A remote copy of the cache (the S3 mirror): see `mirror.py`. It pulls into `cache`, which
    is then the run's one local cache."""

    cache: LocalCache

    def pull(self, data_hashes: list[str]) -> bool:
        """Bring every one of `data_hashes` into the local cache; False if any is missing."""
        ...

    def has(self, data_hashes: list[str]) -> bool: ...

    def push(self, entries: list[CacheEntry], record: records.JobRecord) -> None: ...


@dataclass
class JobResult:
    name: str
    job_id: str | None
    result: str
    duration_s: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    stderr_tail: list[str] = field(default_factory=list)  # a failed job's last stderr lines


class Builder:
    """Everything one `ml runpipe` needs to check and run the jobs of one plan."""

    def __init__(
        self,
        settings: Settings,
        plan: Plan,
        apps: AppIndex,
        *,
        force: bool = False,
        mirror: Mirror | None = None,
        echo: IO[str] | None = None,
        progress: bool = False,
        executor: Executor | None = None,
    ):
        self.settings = settings
        self.plan = plan
        self.apps = apps
        self.force = force
        self.mirror = mirror
        self.cache = mirror.cache if mirror is not None else LocalCache(settings.data_dir, settings.scratch_dir)
        self.digests = DigestCache(settings.state_dir / "md5.sqlite")
        self.sources = Sources(SourceContext(settings, apps, self.digests, self.cache, mirror, progress))
        self.resolver = Resolver(settings, plan, apps, self.cache, self.digests, self.sources)
        self._echo = echo
        self.executor: Executor = executor or LocalExecutor()
        self.resolver.remote_md5 = self.executor.content_md5
        self.results: dict[str, JobResult] = {}
        self.errors: list[str] = []  # failures outside jobs (a download, a transfer)
        self.on_event: Callable[[str, str], None] = lambda name, event: None
        self.on_message: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
        self._active = 0
        self._idle = threading.Condition()

    @functools.cached_property
    def runner(self) -> JobRunner:
        """Built when a job must run (a no-op run never imports what running takes)."""
        from mlpipe.engine import run

        return run.JobRunner(self.settings, self.apps, self.cache, self.resolver, force=self.force, echo=self._echo)

    def close(self) -> None:
        """The run ended: remove spare scratch folders, save new md5s."""
        if "runner" in self.__dict__:
            self.runner.scratch.close()
        self.digests.save()

    def wait_idle(self, timeout_s: float) -> None:
        """Wait for running jobs to finish their bookkeeping (after an interrupt)."""
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout=timeout_s)

    # -- identity (resolve.py) ---------------------------------------------------------------
    def identity(self, name: str, *, fetch: bool = True) -> Identity:
        """The job's hashes from the current inputs; Unresolved while an upstream must run first."""
        return self.resolver.identity(name, fetch=fetch)

    def fetch(self, uri: Uri, ref: Ref | None = None) -> Fetched:
        return self.resolver.fetch(uri, ref)

    def source_md5(self, module: ModuleSpec) -> str:
        return self.resolver.source_md5(module)

    def check_local_inputs(self, found: list[Problem] | None = None) -> None:
        self.resolver.check_local_inputs(found)

    def missing(self, name: str, identity: Identity) -> list[str]:
        """Why the job's result is not in the local cache; [] when it is (the one place that decides).

        A stat per output (sidecar size or folder file list), no re-read. A job without outputs
        is done when a stamp says its job hash succeeded; `always: true` is never done.
        """
        if self.plan.jobs[name].always:
            return ["always: true"]
        if not identity.outputs:
            return [] if self.cache.has_stamp(identity.job_hash) else ["no successful run at this job hash"]
        found = []
        job = self.plan.jobs[name]
        for output, data_hash in identity.outputs.items():
            state = self.cache.state(data_hash)
            if state == MISSING and not self.executor.is_local(job, output) and self.executor.in_remote(data_hash):
                continue  # where the executor's workers read it (the mirror), and not to be fetched
            if state == MISSING:
                found.append(f"output {output} missing from the cache")
            elif state == DAMAGED:
                found.append(f"output {output} damaged in the cache")
        return found

    # -- check and run (called from doit tasks) -------------------------------------------
    def check(self, name: str, saved: Mapping[str, Any]) -> bool:
        """Up to date: the pipe last built this very job hash and its outputs are in the cache."""
        if self.force:
            return False
        try:
            identity = self.identity(name)
        except Exception:  # noqa: BLE001 - whatever it is, `run` meets it again and reports it as the job's failure
            return False
        if saved.get("job_hash") != identity.job_hash or self.missing(name, identity):
            return False
        if saved.get("exports", {}) != self.plan.jobs[name].exports():
            return False  # an export target was added or changed: `run` exports the cached outputs
        self._finish(name, identity, CACHED, 0.0)
        return True

    def run(self, name: str) -> dict[str, Any]:
        """Reuse, pull or execute the job; return its manifest. Raises MlpipeError on failure:
        any other exception (a full disk, a permission error) becomes the job's JobFailed."""
        with self._idle:
            self._active += 1
        started = time.time()
        try:
            return self._run(name, started)
        except Exception as exc:
            known = self.resolver.known(name)
            job_id = known.job_hash if known is not None else None
            failure = exc if isinstance(exc, MlpipeError) else JobFailed(f"job '{name}': {_describe(exc)}")
            tail = getattr(exc, "stderr_tail", [])
            self.results[name] = JobResult(name, job_id, FAILED, round(time.time() - started, 3), error=str(failure),
                                           stderr_tail=tail)
            if os.environ.get("MLPIPE_DEBUG") and not isinstance(exc, JobFailed):  # not the job's own failure
                import traceback

                traceback.print_exception(exc, file=sys.stderr)
            if failure is exc:
                raise
            raise failure from exc
        finally:
            self.resolver.changed()
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _run(self, name: str, started: float) -> dict[str, Any]:
        job = self.plan.jobs[name]
        try:
            identity = self.identity(name)
        except Unresolved as exc:
            raise FetchError(f"job '{name}': {exc}") from None
        hashes = list(identity.outputs.values())
        if not self.force and not self.missing(name, identity):
            result = CACHED
        elif not self.force and hashes and self.mirror is not None and self.mirror.pull(hashes):
            result = PULLED  # two runs pulling one entry at once is harmless: the first complete one wins
        else:
            result, identity = self._make(name, job, identity, started)
        self._export(job, identity)
        self._finish(name, identity, result, time.time() - started)
        return {**identity.manifest(), "exports": job.exports()}

    def _make(self, name: str, job: PlannedJob, identity: Identity, started: float) -> tuple[str, Identity]:
        """Execute the job, holding its lock: its record folder, which the job process inherits
        (so a job outliving a killed `ml` still holds it). Under the lock the cache is asked
        again: another run may have just made the job."""
        folder = os.path.join(self.settings.jobs_dir, identity.job_hash)
        make_dir(folder)
        with hold_lock(folder, on_wait=lambda: self._wait_for_holder(name, identity.job_hash)) as lock_fd:
            if not self.force and not self.missing(name, identity):
                return CACHED, identity
            self.on_event(name, "start")
            if job.select is not None:
                from mlpipe.engine.select_step import run_select

                run_select(self, job, identity, started)
                return RAN, identity
            identity, result = self.executor.execute(self, job, identity, started, lock_fd)
            return result, identity

    def _wait_for_holder(self, name: str, job_hash: str) -> None:
        """The job lock is taken: by a live job whose `ml` was killed (stop it: its result has
        nowhere to go), or by another run of the same job (say once that we wait for it)."""
        from mlpipe.engine.execute import stop_process_group

        record = records.read_record(self.settings.jobs_dir, job_hash)
        if record is None or record.status != records.RUNNING or record.host != records.HOST:
            self.on_message(f"{name}: waiting for another run of this job (job {job_hash[:12]}) to finish ...")
            return
        runner_alive = record.runner_pid is not None and records.pid_alive(record.runner_pid)
        if not runner_alive and record.pid is not None:
            self.on_message(f"{name}: stopping job {job_hash[:12]} (pid {record.pid}), left running by an `ml`"
                            " that was killed; it runs again now")
            stop_process_group(record.pid)
            return
        self.on_message(f"{name}: waiting for job {job_hash[:12]} (pid {record.pid}), which {record.pipe} is running"
                        f" (started by pid {record.runner_pid}) ...")

    def _finish(self, name: str, identity: Identity, result: str, duration: float) -> None:
        outputs = {out: self.cache.path_str(h) for out, h in identity.outputs.items()}
        self.results[name] = JobResult(name, identity.job_hash, result, round(duration, 3), outputs)

    def _export(self, job: PlannedJob, identity: Identity) -> None:
        from mlpipe.core.uri import parse_uri

        for output, target in job.exports().items():
            entry = self.cache.get(identity.outputs[output]) if output in identity.outputs else None
            if entry is not None:
                self.sources.export(parse_uri(target), entry.path, entry.md5)


def _describe(exc: BaseException) -> str:
    """One line for an unexpected error: its cause and the file it concerns."""
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return f"{type(exc).__name__}: {exc}"
