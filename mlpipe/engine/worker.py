"""The worker side of the Dask executor: run one job from the spec its driver sent.

    spec ─> same mlpipe and Python? ─> outputs in the mirror (or this cache)? ──yes──> cached
                                           │ no
            code bundle + inputs pulled, md5 checked ─> one-job plan (inputs as cache://<hash>)
            ─> the driver's job hash? ─> JobRunner.execute (as locally) ─> push outputs + record ─> ran

`run_job` is the Dask task. It runs in a `dask worker` process whose environment holds the
MLPIPE_* settings: its own home (cache, records, scratch), the team's S3 mirror. A job's own
failure is returned, not raised, so that Dask never retries it; a worker lost on the way is
Dask's to reschedule. While the job runs, a watcher stops its process group when the driver
cancels the task (Dask's cancel alone leaves a running subprocess alone).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import mlpipe
from mlpipe.core.errors import FetchError, JobFailed, MlpipeError, UsageError
from mlpipe.core.plan import Plan, make_plan
from mlpipe.core.spec import Binding, JobSpec, PipeSpec, Ref
from mlpipe.engine.resolve import Resolver
from mlpipe.engine.run import JobRunner
from mlpipe.home.apps import AppIndex
from mlpipe.home.loader import load_module
from mlpipe.home.settings import Settings, init_home, load_settings
from mlpipe.remote.mirror import S3Mirror
from mlpipe.sources import SourceContext, Sources
from mlpipe.store import records
from mlpipe.store.cache import LocalCache
from mlpipe.store.digests import DigestCache
from mlpipe.store.lock import hold_lock, lock_path

RAN, CACHED, FAILED = "ran", "cached", "failed"
_mirrors: dict[str, S3Mirror] = {}  # one per worker process: its connections serve every task
_mirrors_lock = threading.Lock()


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def run_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the job `spec` describes (see DaskExecutor.spec); a JSON-able result for the driver."""
    try:
        settings = load_settings()
        init_home(settings)
        _check_versions(spec)
        return _run(settings, spec)
    except MlpipeError as exc:
        return {"result": FAILED, "error": f"{exc} (on worker {_where()})", "lost": getattr(exc, "lost", []),
                "stderr_tail": getattr(exc, "stderr_tail", []), "record": getattr(exc, "record", None)}


def warm_up(mirror_url: str = "") -> None:
    """The imports and the S3 connections a first job would otherwise wait for (a second or
    two): run on every worker when a driver connects, or at start with `--preload`."""
    settings = load_settings()
    init_home(settings)
    mirror_url = mirror_url or settings["S3_MIRROR"]
    if mirror_url and settings["S3_MIRROR"].rstrip("/") == mirror_url.rstrip("/"):
        _mirror(settings, {"mirror": mirror_url, "job": "warm-up"}).client  # noqa: B018 - creates the client


def dask_setup(worker: Any) -> None:
    """`dask worker ADDRESS --preload mlpipe.engine.worker`: warm up as the worker starts."""
    warm_up()


def _check_versions(spec: dict[str, Any]) -> None:
    ours = (mlpipe.__version__, python_version())
    theirs = (spec["mlpipe"], spec["python"])
    if ours != theirs:
        raise UsageError(f"job '{spec['job']}': refused: the driver runs mlpipe {theirs[0]} on Python {theirs[1]},"
                         f" this worker mlpipe {ours[0]} on Python {ours[1]}")


def _where() -> str:
    return f"{records.HOST} pid {os.getpid()}"


def _mirror(settings: Settings, spec: dict[str, Any]) -> S3Mirror | None:
    url = spec.get("mirror") or ""
    if not url:
        return None  # a local:N cluster sharing the driver's home
    if settings["S3_MIRROR"].rstrip("/") != url.rstrip("/"):
        raise UsageError(f"job '{spec['job']}': this worker's S3_MIRROR is {settings['S3_MIRROR'] or 'unset'},"
                         f" the driver's {url}: start the worker with MLPIPE_S3_MIRROR={url}")
    with _mirrors_lock:
        if url not in _mirrors or _mirrors[url].settings.home != settings.home:
            # NOTE: no listing: a job needs a few entries, which HEADs find (`refresh`); a listing
            # of a big mirror per job would cost more than the job's transfers.
            _mirrors[url] = S3Mirror(settings, listed=False)
        mirror = _mirrors[url]
    mirror.forget()  # what another job (or `ml gc`) changed since is seen afresh
    return mirror


def _run(settings: Settings, spec: dict[str, Any]) -> dict[str, Any]:
    mirror = _mirror(settings, spec)
    cache = LocalCache(settings.data_dir, settings.scratch_dir)
    hashes = list(spec["outputs"].values())
    if not spec["force"] and hashes:
        if mirror is not None:
            mirror.refresh(hashes)
            if mirror.has(hashes):
                return _cached(cache, mirror, spec, hashes)
        if all(cache.exists(h) for h in hashes):
            if mirror is not None:  # made here before, and the mirror lost it: give it back
                mirror.push_entries([e for h in hashes if (e := cache.get(h))], lambda j: None)
            return _cached(cache, mirror, spec, hashes)
    app_dir = _app_dir(settings, mirror, cache, spec)
    _pull_inputs(mirror, cache, spec)
    plan, apps = _plan(spec, app_dir)
    digests = DigestCache(settings.state_dir / "md5.sqlite")
    resolver = Resolver(settings, plan, apps, cache, digests, Sources(SourceContext(settings, apps, digests, cache)))
    job = plan.jobs[spec["job"]]
    identity = resolver.identity(job.name)
    if identity.job_hash != spec["job_hash"]:
        raise UsageError(f"job '{job.name}': refused: it hashes to {identity.job_hash} here, "
                         f"{spec['job_hash']} on the driver (its code bundle or inputs differ)")
    runner = JobRunner(settings, apps, cache, resolver, force=spec["force"])
    # NOTE: "worker-job", not the driver's "job" lock: with local:N the driver shares this home
    # and holds that one while it waits for us.
    with hold_lock(lock_path(settings.locks_dir, "worker-job", identity.job_hash)) as lock_fd:
        stop = _watch_cancel(settings, identity.job_hash)
        try:
            identity, entries, record = runner.execute(job, identity, time.time(), lock_fd)
        except JobFailed as exc:
            exc.record = _as_json(records.read_record(settings.jobs_dir, identity.job_hash))  # type: ignore[attr-defined]
            raise
        finally:
            stop.set()
            runner.scratch.close()
            digests.save()
    record.worker = {"address": _worker_address(), "home": str(settings.home), "pid": os.getpid()}
    records.write_record(settings.jobs_dir, record)
    if mirror is not None:
        mirror.push(entries, record)
    return {"result": RAN, "record": asdict(record), "error": None,
            "entries": {e.data_hash: e.md5 for e in entries}}


def _cached(cache: LocalCache, mirror: S3Mirror | None, spec: dict[str, Any], hashes: list[str]) -> dict[str, Any]:
    md5s = {h: (entry.md5 if (entry := cache.get(h)) else mirror.entry_md5(h) if mirror else None) for h in hashes}
    return {"result": CACHED, "record": None, "error": None, "entries": {h: m for h, m in md5s.items() if m}}


def _app_dir(settings: Settings, mirror: S3Mirror | None, cache: LocalCache, spec: dict[str, Any]) -> Path:
    app = spec["app"]
    if mirror is None:
        return Path(app["dir"])
    from mlpipe.remote.bundle import install_bundle

    return install_bundle(mirror, cache, settings.home, app["bundle"], app["name"])


def _pull_inputs(mirror: S3Mirror | None, cache: LocalCache, spec: dict[str, Any]) -> None:
    """Every input entry into this cache, each with the content md5 the driver hashed."""
    wanted = {ref["data"]: (name, ref["md5"]) for name, binding in spec["inputs"].items()
              for ref in binding["refs"] if "data" in ref}
    missing = [h for h in wanted if not cache.exists(h)]
    if missing and mirror is not None:
        mirror.refresh(missing)
        mirror.pull(missing)
    for data_hash, (name, md5) in wanted.items():
        entry = cache.get(data_hash)
        if entry is None:
            lost = FetchError(f"job '{spec['job']}': input {name} (data {data_hash}) is not in the mirror"
                              f" {mirror.url if mirror else '(none: a local cluster shares the driver cache)'};"
                              " the next run makes it again")
            lost.lost = [data_hash]  # type: ignore[attr-defined]
            raise lost
        if entry.md5 != md5:
            raise FetchError(f"job '{spec['job']}': input {name} (data {data_hash}): md5 {entry.md5},"
                             f" the driver hashed {md5}")


def _plan(spec: dict[str, Any], app_dir: Path) -> tuple[Plan, AppIndex]:
    """The one-job plan of the spec: inputs are cache entries, local files (local:N) or literals."""
    apps = AppIndex({spec["app"]["name"]: app_dir})
    module = load_module(apps, spec["module"])
    inputs = {name: Binding(tuple(Ref(_ref_value(ref)) for ref in binding["refs"]), binding["list"])
              for name, binding in spec["inputs"].items()}
    job = JobSpec(spec["job"], spec["module"], inputs, {name: name for name in spec["outputs"]}, spec["params"])
    pipe = PipeSpec(spec["pipe"], f"Dask task {spec['job_hash']}", {spec["job"]: job})
    return make_plan(pipe, {spec["module"]: module}), apps


def _ref_value(ref: dict[str, str]) -> str:
    if "data" in ref:
        return "cache://" + ref["data"]
    if "path" in ref:
        return "local://" + ref["path"]
    return ref["value"]


def _worker_address() -> str | None:
    from distributed import get_worker

    try:
        return get_worker().address
    except ValueError:  # not inside a Dask task (called directly)
        return None


def _watch_cancel(settings: Settings, job_hash: str) -> threading.Event:
    """Stop the job's process group once the driver cancels its task (or the task is forgotten)."""
    from distributed import get_worker

    done = threading.Event()
    try:
        worker = get_worker()
        key = worker.get_current_task()
    except ValueError:
        return done

    def watch() -> None:
        from mlpipe.engine.execute import stop_process_group
        from mlpipe.store.cancel import request_job_cancel

        while not done.wait(0.2):
            task = worker.state.tasks.get(key)
            if task is not None and task.state not in ("cancelled", "released", "forgotten"):
                continue
            record = records.read_record(settings.jobs_dir, job_hash)
            if record is not None and record.pid is not None and record.status == records.RUNNING:
                request_job_cancel(settings.jobs_dir, job_hash, record.pid)  # recorded as `canceled`
                stop_process_group(record.pid)
            return

    threading.Thread(target=watch, name=f"mlpipe-cancel-{job_hash[:8]}", daemon=True).start()
    return done


def _as_json(record: records.JobRecord | None) -> dict[str, Any] | None:
    return asdict(record) if record is not None else None
