"""Where a job's command runs: here (`local`), or on a Dask cluster (`dask_executor.py`).

    Builder._run ── must run ──> executor.execute(builder, job, identity, ...) ──> (identity, ran|cached)
    Builder.missing ── output not in the local cache ──> executor.is_local / in_remote: present elsewhere?

The Builder decides cached / pulled / run; an executor only does the running, and says which
outputs must be in the local cache (all of them, locally) for a job to be up to date.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from mlpipe.core.errors import UsageError
from mlpipe.core.plan import Plan, PlannedJob
from mlpipe.engine.resolve import Identity
from mlpipe.home.settings import Settings

if TYPE_CHECKING:
    from mlpipe.engine.build import Builder
    from mlpipe.remote.mirror import RunMirror

RAN, CACHED = "ran", "cached"
FETCH_CHOICES = ("none", "final", "all")


class Executor(Protocol):
    name: str
    workers: int  # how many jobs it runs at once: the default -j once started

    def execute(self, builder: Builder, job: PlannedJob, identity: Identity, started: float,
                lock_fd: int) -> tuple[Identity, str]:
        """Run the job (it must run); its identity with the outputs it wrote, and `ran` or `cached`."""
        ...

    def is_local(self, job: PlannedJob, output: str) -> bool:
        """Must this output be in the local cache for the job to be up to date?"""
        ...

    def in_remote(self, data_hash: str) -> bool:
        """Is this entry where the executor's workers find it (the mirror)?"""
        ...

    def content_md5(self, data_hash: str) -> str | None:
        """The content md5 of an entry that is not in the local cache, if known."""
        ...

    def start(self, builder: Builder) -> None:
        """Connect to where jobs run (before the first job); `workers` is then the default -j."""
        ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Jobs run on this machine, as child processes; finished outputs are pushed to the mirror."""

    name = "local"
    workers = 1

    def start(self, builder: Builder) -> None: ...

    def execute(self, builder: Builder, job: PlannedJob, identity: Identity, started: float,
                lock_fd: int) -> tuple[Identity, str]:
        identity, entries, record = builder.runner.execute(job, identity, started, lock_fd)
        if builder.mirror is not None:
            builder.mirror.push(entries, record)
        return identity, RAN

    def is_local(self, job: PlannedJob, output: str) -> bool:
        return True

    def in_remote(self, data_hash: str) -> bool:
        return False

    def content_md5(self, data_hash: str) -> str | None:
        return None

    def cancel(self) -> None:
        """Local jobs are stopped by `execute.terminate_all` (the process group of each)."""

    def close(self) -> None: ...


def open_executor(settings: Settings, plan: Plan, mirror: RunMirror | None, fetch: str, *,
                  dry_run: bool = False) -> Executor:
    """The executor setting EXECUTOR names (UsageError for a bad value or a missing mirror)."""
    kind = settings["EXECUTOR"]
    if kind == "local":
        return LocalExecutor()
    if kind != "dask":
        raise UsageError(f"setting EXECUTOR: {kind!r} is not local or dask")
    if fetch not in FETCH_CHOICES:
        raise UsageError(f"--fetch {fetch!r}: expected one of {', '.join(FETCH_CHOICES)}")
    from mlpipe.engine.dask_executor import DaskExecutor, parse_scheduler
    from mlpipe.remote.mirror import S3Mirror

    scheduler = settings["DASK_SCHEDULER"]
    needs_mirror = parse_scheduler(scheduler) is None
    s3 = mirror.mirror if mirror is not None else S3Mirror(settings) if needs_mirror and settings["S3_MIRROR"] else None
    return DaskExecutor(settings, plan, scheduler, fetch, s3, dry_run=dry_run)


def wanted(job: PlannedJob, output: str, fetch: str, consumed: set[str]) -> bool:
    """Whether `--fetch` brings this output into the driver's cache: `all`; `final` = exported or
    read by no job of the pipe (a leaf); `none` = only exported ones (an export needs the bytes)."""
    value = job.outputs.get(output, "")
    exported = output in job.exports()
    if fetch == "all" or exported:
        return True
    return fetch == "final" and value not in consumed
