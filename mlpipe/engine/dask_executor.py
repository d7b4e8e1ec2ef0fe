"""The driver side of the Dask executor: each job that must run becomes one Dask task.

    doit thread ─ Builder._run ─ execute ─> inputs and code bundle into the mirror (by md5)
                                         ─> client.submit(worker.run_job, spec, key="mlpipe-<job_hash>")
                                         ─> wait: a lost worker is resubmitted (DASK_RETRIES),
                                            a job's own failure is not
                                         ─> record into this home; `--fetch` outputs pulled

    tcp://HOST:PORT  the S3 mirror is the only channel: workers have homes of their own
    local:N          an in-process LocalCluster of N worker processes sharing this home's cache

With a mirror, an output the driver does not fetch stays there: it counts as present (so a rerun
transfers nothing but a listing), and its content md5, which downstream job hashes need, is kept
in `cache/remote/XX/<data_hash>` (else read from the mirror).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlpipe
from mlpipe.core.errors import FetchError, JobFailed, RunError, StoreError, UsageError
from mlpipe.core.plan import Plan, PlannedJob
from mlpipe.core.spec import Ref
from mlpipe.engine.executor import CACHED, RAN, wanted
from mlpipe.engine.resolve import Identity
from mlpipe.home.settings import Settings
from mlpipe.remote.mirror import S3Mirror
from mlpipe.store import records
from mlpipe.store.atomic import write_bytes_atomic
from mlpipe.store.cache import CacheEntry, tree_files

if TYPE_CHECKING:
    from mlpipe.engine.build import Builder

LOCAL_PREFIX = "local:"
EXTERNAL = "external"  # the "job hash" of an external input's entry in the mirror (keyed by its content md5)


def parse_scheduler(value: str) -> int | None:
    """`local:N` -> N; a scheduler address (`tcp://HOST:PORT`, any `SCHEME://`) -> None."""
    if value.startswith(LOCAL_PREFIX):
        count = value[len(LOCAL_PREFIX):]
        if not count.isdigit() or int(count) < 1:
            raise UsageError(f"setting DASK_SCHEDULER: {value!r}: expected local:N with N at least 1")
        return int(count)
    if "://" not in value:
        raise UsageError(f"setting DASK_SCHEDULER: {value!r} is not tcp://HOST:PORT or local:N"
                         if value else "--executor dask needs a scheduler: --scheduler tcp://HOST:8786 or "
                         "local:N (setting DASK_SCHEDULER, MLPIPE_DASK_SCHEDULER)")
    return None


class DaskExecutor:
    """Runs jobs as Dask tasks; see the module docstring."""

    name = "dask"

    def __init__(self, settings: Settings, plan: Plan, scheduler: str, fetch: str, mirror: S3Mirror | None, *,
                 dry_run: bool = False):
        self.settings = settings
        self.plan = plan
        self.scheduler = scheduler
        self.local_workers = parse_scheduler(scheduler)
        self.shared = self.local_workers is not None  # local:N: the workers use this home's cache
        if not self.shared and mirror is None:
            raise UsageError(f"--executor dask with scheduler {scheduler} needs the S3 mirror, its only channel to"
                             " the workers: setting S3_MIRROR is not set (MLPIPE_S3_MIRROR=s3://bucket/prefix)")
        self.fetch = fetch
        self.mirror = mirror
        self.dry_run = dry_run  # writes nothing, not even what it learns of the mirror
        self.retries = settings["DASK_RETRIES"]
        self.consumed = {ref.value for job in plan.jobs.values() for b in job.inputs.values() for ref in b.refs}
        # a sweep's select step runs here and reads its members' outputs from this cache
        self.read_here = {ref.value for job in plan.jobs.values() if job.select is not None
                          for b in job.inputs.values() for ref in b.refs}
        self.index_dir = settings.cache_dir / "remote"
        self.workers = self.local_workers or 1
        self.client: Any = None
        self.cluster: Any = None
        self._known: dict[str, str] = {}  # data hash -> content md5, of entries workers made this run
        self._bundles: dict[str, str] = {}  # app -> code bundle md5 (pushed once per run)
        self._futures: set[Any] = set()
        self._lock = threading.Lock()

    # -- connection -----------------------------------------------------------------------
    def start(self, builder: Builder) -> None:
        """Connect to the scheduler (RunError when it cannot be reached), for its worker count;
        meanwhile the apps' code bundles go to the mirror.

        A local cluster starts with the first job instead: a run with nothing to do costs nothing.
        """
        if not self.shared:
            apps = sorted({job.module.app for job in self.plan.jobs.values() if job.select is None})
            threading.Thread(target=self._push_bundles, args=(builder, apps), name="mlpipe-bundles",
                             daemon=True).start()
            self.workers = max(1, len(self._connect().nthreads()))

    def _connect(self) -> Any:
        with self._lock:
            if self.client is not None:
                return self.client
            try:
                from distributed import Client, LocalCluster
            except ImportError:
                raise UsageError("--executor dask needs Dask: pip install 'mlpipe[dask]'") from None
            try:
                if self.shared:
                    self.cluster = LocalCluster(n_workers=self.local_workers, threads_per_worker=1, processes=True,
                                                dashboard_address=None)
                    self.client = Client(self.cluster, set_as_default=False)
                else:
                    self.client = Client(self.scheduler, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise RunError(f"cannot reach the Dask scheduler {self.scheduler}: {_first_line(exc)}") from None
            threading.Thread(target=self._warm_up, args=(self.client,), name="mlpipe-warm-up", daemon=True).start()
            return self.client

    def _warm_up(self, client: Any) -> None:
        """Have every worker import MLPipe and open its S3 connections while the first job is prepared."""
        from mlpipe.engine.worker import warm_up

        with contextlib.suppress(Exception):  # an optimisation only: a job meets any real problem again
            client.run(warm_up, self.mirror.url if self.mirror is not None else "")

    def cancel(self) -> None:
        """Cancel every job in flight: each worker then stops its job's process group."""
        with self._lock:
            futures = list(self._futures)
        if futures and self.client is not None:
            self.client.cancel(futures, force=True)

    def close(self) -> None:
        for part in (self.client, self.cluster):
            if part is not None:
                part.close()
        self.client = self.cluster = None

    # -- what counts as present -----------------------------------------------------------
    def is_local(self, job: PlannedJob, output: str) -> bool:
        return (self.shared or job.outputs.get(output) in self.read_here
                or wanted(job, output, self.fetch, self.consumed))

    def in_remote(self, data_hash: str) -> bool:
        """In the mirror: seen there by this home before (entries are never rewritten or removed
        by MLPipe, so a no-op rerun needs no request at all), else in its one listing."""
        if self.mirror is None:
            return False
        if data_hash in self._known or self._index_path(data_hash).exists():
            return True
        try:
            return self.mirror.has([data_hash])
        except StoreError:  # the run meets the mirror again, and fails the job with the cause
            return False

    def content_md5(self, data_hash: str) -> str | None:
        if self.shared or self.mirror is None:
            return None
        if data_hash in self._known:
            return self._known[data_hash]
        path = self._index_path(data_hash)
        try:
            return path.read_text().strip() or None
        except OSError:
            pass
        try:
            md5 = self.mirror.entry_md5(data_hash)
        except StoreError:
            return None
        if md5 is not None:
            self._learn({data_hash: md5})
        return md5

    def _index_path(self, data_hash: str) -> Path:
        return self.index_dir / data_hash[:2] / data_hash

    def _learn(self, md5s: dict[str, str]) -> None:
        """Remember entries now in the mirror, with their content md5 (kept in this home)."""
        for data_hash, md5 in md5s.items():
            self._known[data_hash] = md5
            if not self.shared and not self.dry_run:
                write_bytes_atomic(self._index_path(data_hash), md5.encode())

    def _unlearn(self, data_hashes: list[str]) -> None:
        """Entries a worker did not find in the mirror after all (removed by hand): the next run
        sees them missing and runs their jobs again."""
        for data_hash in data_hashes:
            self._known.pop(data_hash, None)
            self._index_path(data_hash).unlink(missing_ok=True)

    # -- running --------------------------------------------------------------------------
    def execute(self, builder: Builder, job: PlannedJob, identity: Identity, started: float,
                lock_fd: int) -> tuple[Identity, str]:
        spec = self.spec(builder, job, identity)
        outcome = self._submit(job, identity, spec)
        return self._finish(builder, job, identity, outcome)

    def spec(self, builder: Builder, job: PlannedJob, identity: Identity) -> dict[str, Any]:
        """What a worker needs to run the job, as plain data (inputs by data hash and md5)."""
        inputs = {}
        for name, binding in job.inputs.items():
            datafile = job.module.inputs[name].datafile
            md5s = identity.inputs[name] if isinstance(identity.inputs[name], list) else [identity.inputs[name]]
            refs = [self._input(builder, ref, str(md5)) if datafile else {"value": ref.value}
                    for ref, md5 in zip(binding.refs, md5s, strict=True)]
            inputs[name] = {"list": binding.is_list, "refs": refs}
        app = job.module.app
        where = ({"dir": str(builder.apps.app_dir(app))} if self.shared
                 else {"bundle": self._bundle(builder, app)})
        return {"mlpipe": mlpipe.__version__, "python": f"{sys.version_info.major}.{sys.version_info.minor}",
                "pipe": self.plan.pipe_id, "job": job.name, "module": job.module.module_id,
                "job_hash": identity.job_hash, "params": {k: v for k, v in job.params.items() if v is not None},
                "inputs": inputs, "outputs": dict(identity.outputs), "force": builder.force,
                "mirror": self.mirror.url if self.mirror is not None else "", "app": {"name": app, **where}}

    def _input(self, builder: Builder, ref: Ref, md5: str) -> dict[str, str]:
        """One input for the worker, made sure to be where it reads it."""
        if ref.is_uri:
            fetched = builder.fetch(self.plan.uris[ref.value], ref)
            if self.shared:
                return {"path": str(fetched.path), "md5": md5}
            self._ensure_pushed(CacheEntry(md5, fetched.path, md5, _size(fetched.path), EXTERNAL, time.time(),
                                           tree_files(fetched.path)), f"input {ref.value}")
            return {"data": md5, "md5": md5}
        producer, output = self.plan.producers[ref.value]
        data_hash = builder.identity(producer).outputs[output]
        if not self.shared and not self.in_remote(data_hash):  # made here before: the workers need it too
            entry = builder.cache.get(data_hash)
            if entry is None:
                raise FetchError(f"data {ref.value} ({data_hash}) is neither in the cache nor in the mirror")
            self._ensure_pushed(entry, f"data {ref.value}")
        return {"data": data_hash, "md5": md5}

    def _ensure_pushed(self, entry: CacheEntry, what: str) -> None:
        assert self.mirror is not None
        jobs_dir = self.settings.jobs_dir
        problems = self.mirror.push_entries([entry], lambda job_hash: records.read_record(jobs_dir, job_hash)).problems
        if problems:
            raise StoreError(f"{what} not pushed to the mirror: {'; '.join(problems)}")
        self._learn({entry.data_hash: entry.md5})

    def _push_bundles(self, builder: Builder, apps: list[str]) -> None:
        with contextlib.suppress(Exception):  # an optimisation only: the first job of the app meets it again
            for app in apps:
                self._bundle(builder, app)

    def _bundle(self, builder: Builder, app: str) -> str:
        from mlpipe.remote.bundle import ensure_bundle

        assert self.mirror is not None
        with self._lock:
            if app not in self._bundles:
                self._bundles[app] = ensure_bundle(self.mirror, builder.apps.app_dir(app), builder.digests)
            return self._bundles[app]

    def _submit(self, job: PlannedJob, identity: Identity, spec: dict[str, Any]) -> dict[str, Any]:
        """Submit the task and wait for it; resubmit it when its worker was lost."""
        from mlpipe.engine.worker import run_job

        resources = dict(job.module.resources) or None
        # NOTE: retries=0: Dask's retries would rerun a job's own failure too. The worker returns
        # that failure instead of raising it; only a lost worker (KilledWorker) is resubmitted.
        future = self._connect().submit(run_job, spec, key=f"mlpipe-{identity.job_hash}", resources=resources,
                                        retries=0, pure=False)
        with self._lock:
            self._futures.add(future)
        try:
            return self._wait(job, future)
        finally:
            with self._lock:
                self._futures.discard(future)
            future.release()

    def _wait(self, job: PlannedJob, future: Any) -> dict[str, Any]:
        from concurrent.futures import CancelledError

        from distributed import KilledWorker

        lost = 0
        while True:
            try:
                return future.result()
            except KilledWorker as exc:
                lost += 1
                if lost > self.retries:
                    times = "once" if lost == 1 else f"{lost} times"
                    raise JobFailed(f"job '{job.name}': lost its Dask worker {times}"
                                    f" (DASK_RETRIES={self.retries}): {_first_line(exc)}") from None
                print(f"{job.name}: its Dask worker was lost; resubmitted ({lost}/{self.retries})",
                      file=sys.stderr, flush=True)
                future.retry()
            except CancelledError:
                raise JobFailed(f"job '{job.name}': canceled") from None
            except Exception as exc:  # noqa: BLE001 - a bug or a broken environment on the worker: one line
                raise JobFailed(f"job '{job.name}': its Dask task failed: {type(exc).__name__}: {_first_line(exc)}"
                                ) from None

    def _finish(self, builder: Builder, job: PlannedJob, identity: Identity,
                outcome: dict[str, Any]) -> tuple[Identity, str]:
        """Keep the worker's record here, fetch what `--fetch` wants; raise the job's failure."""
        if outcome.get("record"):
            record = self._keep_record(builder, job, outcome["record"])
            if outcome["result"] == "ran" and record.outputs != identity.outputs:  # an optional output left out
                identity = replace(identity, outputs=dict(record.outputs))
                builder.resolver.remember(job.name, identity)
        if outcome["result"] == "failed":
            self._unlearn(outcome.get("lost") or [])
            failure = JobFailed(outcome["error"])
            failure.stderr_tail = outcome.get("stderr_tail") or []  # type: ignore[attr-defined]
            raise failure
        self._learn(outcome.get("entries") or {})
        local = [h for out, h in identity.outputs.items() if self.is_local(job, out) and not builder.cache.exists(h)]
        if local and self.mirror is not None:
            self.mirror.refresh(local)
            self.mirror.pull(local)
        missing = [h for h in local if not builder.cache.exists(h)]
        if missing:
            raise FetchError(f"job '{job.name}': output(s) {', '.join(missing)} could not be fetched from the mirror")
        if not identity.outputs:
            builder.cache.stamp(identity.job_hash)
        return identity, RAN if outcome["result"] == "ran" else CACHED

    def _keep_record(self, builder: Builder, job: PlannedJob, data: dict[str, Any]) -> records.JobRecord:
        """The worker's record, in this home, with the pipe's view of where inputs came from."""
        known = {f.name for f in fields(records.JobRecord)}
        record = records.JobRecord(**{k: v for k, v in data.items() if k in known})
        origin = builder.resolver.ref_origin
        record.input_refs = {name: [origin(ref) for ref in b.refs] for name, b in job.inputs.items()}
        record.sweep = job.sweep.as_json() if job.sweep is not None else None
        records.write_record(self.settings.jobs_dir, record)
        return record


def _size(path: Path) -> int:
    files = tree_files(path)
    return sum(files.values()) if files is not None else path.stat().st_size


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
