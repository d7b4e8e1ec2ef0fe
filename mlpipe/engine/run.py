"""Run one job: a fresh scratch directory, its command (argv or a quoted shell template), its
logs and record, and the atomic publish of its outputs into the cache.

    scratch/ ── command ──> scratch/outputs/NAME ── links inlined, hashed ──> cache/data/XX/<hash>
                  │
                  └─ jobs/<job_hash>/{job.json, stdout.log, stderr.log}   (record: at start, at end)

The same code runs a job wherever it runs (this machine, or a worker of a cluster).
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import IO

from mlpipe.core.command import module_argv, render_param
from mlpipe.core.errors import JobFailed, TreeError
from mlpipe.core.hashing import fingerprint, md5_file
from mlpipe.core.plan import PlannedJob
from mlpipe.engine.job_config import adopt_named_outputs, write_job_config
from mlpipe.engine.job_metrics import read_metrics
from mlpipe.engine.resolve import Identity, Resolver
from mlpipe.home.apps import AppIndex
from mlpipe.home.settings import Settings
from mlpipe.store import records
from mlpipe.store.atomic import make_dir
from mlpipe.store.cache import CacheEntry, LocalCache, ScratchPool
from mlpipe.store.cancel import mark_if_canceled
from mlpipe.store.links import inline_links


class JobRunner:
    """Executes jobs of one run: scratch dirs, processes, records, publishing."""

    def __init__(self, settings: Settings, apps: AppIndex, cache: LocalCache, resolver: Resolver, *,
                 force: bool = False, echo: IO[str] | None = None):
        self.settings = settings
        self.apps = apps
        self.cache = cache
        self.resolver = resolver
        self.force = force
        self.echo = echo
        self.scratch = ScratchPool(cache)  # `close()` it when the run ends
        self.plan_id = resolver.plan.pipe_id
        # NOTE: string paths and one environment per app: a job's bookkeeping is a few dozen file
        # operations, and building `Path`s and copying os.environ cost as much as the syscalls.
        self._jobs = os.fspath(settings.jobs_dir)
        self._envs: dict[str, dict[bytes, bytes]] = {}

    def execute(self, job: PlannedJob, identity: Identity, started: float,
                lock_fd: int) -> tuple[Identity, list[CacheEntry], records.JobRecord]:
        """Run the job's command in a fresh scratch dir and publish its outputs into the cache.

        Returns the identity with the outputs it wrote, the cache entries and the final record.
        The record is written twice: when the process starts (with its pid) and when the job
        ends. Raises JobFailed (the record says why) when the job fails.
        """
        scratch = os.fspath(self.scratch.take(f"job-{identity.job_hash}-"))
        folder = os.path.join(self._jobs, identity.job_hash)
        record = records.JobRecord(
            identity.job_hash, self.plan_id, job.name, job.module.module_id, dict(job.params),
            dict(identity.inputs), dict(identity.outputs), started=started, runner_pid=os.getpid(),
            input_refs={name: [self.resolver.ref_origin(ref) for ref in b.refs] for name, b in job.inputs.items()},
            sweep=job.sweep.as_json() if job.sweep is not None else None,
        )
        stderr_log = os.path.join(folder, records.STDERR_NAME)
        try:
            argv, produced = self._argv(job, scratch)
            record.argv = argv
            code = self._spawn(job, identity, scratch, folder, argv, record, lock_fd)
            record.exit_code, record.ended = code, time.time()
            if code == 0:
                adopt_named_outputs(scratch, produced)
            missing = [out for out, path in produced.items()
                       if not os.path.lexists(path) and not job.module.outputs[out].optional]
            bad_metrics = None
            if code == 0 and not missing:
                record.metrics, bad_metrics = read_metrics(job, produced)
            if code != 0 or missing or bad_metrics:
                from mlpipe.engine.execute import describe_exit

                record.stderr_tail = _tail(stderr_log)
                raise JobFailed(f"job '{job.name}' failed: "
                                + (describe_exit(code) if code != 0 else bad_metrics if bad_metrics
                                   else f"exited 0 but did not write output(s): {', '.join(missing)}")
                                + f" (log: {stderr_log})")
            entries = [self._publish(job, identity, scratch, out, path)
                       for out, path in produced.items() if os.path.lexists(path) and out in identity.outputs]
            published = {entry.data_hash for entry in entries}  # an optional output may be unwritten
            record.outputs = {out: h for out, h in identity.outputs.items() if h in published}
            if not record.outputs:  # nothing in the cache says it succeeded: a stamp does
                self.cache.stamp(identity.job_hash)
            record.status = records.SUCCEEDED
            records.write_record(self._jobs, record)
        except BaseException as exc:
            record.status, record.ended = records.FAILED, record.ended or time.time()
            record.error = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
            if isinstance(exc, JobFailed):
                exc.stderr_tail = record.stderr_tail  # type: ignore[attr-defined]
            mark_if_canceled(self.settings.jobs_dir, record)
            _write_final(self._jobs, record)
            raise
        finally:
            self.scratch.give_back(Path(scratch))  # removed unless left exactly as it was given
        if record.outputs != identity.outputs:
            identity = replace(identity, outputs=dict(record.outputs))
            self.resolver.remember(job.name, identity)
        return identity, entries, record

    def _spawn(self, job: PlannedJob, identity: Identity, scratch: str, folder: str, argv: list[str],
               record: records.JobRecord, lock_fd: int) -> int:
        from mlpipe.engine.execute import run_process

        env = {**self._app_env(job.module.app), b"MLPIPE_JOB_ID": identity.job_hash.encode()}
        make_dir(folder)  # the record folder: the job lock made it here, not on a cluster's worker

        def started(pid: int) -> None:
            record.pid = pid
            records.write_record(self._jobs, record)

        echo = (self.echo, f"[{job.name}] ") if self.echo is not None else None
        return run_process(argv, cwd=scratch, env=env, stdout_path=os.path.join(folder, records.STDOUT_NAME),
                           stderr_path=os.path.join(folder, records.STDERR_NAME), on_start=started, echo=echo,
                           pass_fds=(lock_fd,))

    def _app_env(self, app: str) -> dict[bytes, bytes]:
        """The environment of the app's jobs: ours, with the app's parent folder on PYTHONPATH
        (encoded once: Popen encodes every variable of a str environment, for every job)."""
        env = self._envs.get(app)
        if env is None:
            ours = dict(os.environ)
            app_parent = str(self.apps.app_dir(app).parent)
            ours["PYTHONPATH"] = os.pathsep.join(p for p in (app_parent, ours.get("PYTHONPATH", "")) if p)
            env = self._envs[app] = {os.fsencode(k): os.fsencode(v) for k, v in ours.items()}
        return env

    def _argv(self, job: PlannedJob, scratch: str) -> tuple[list[str], dict[str, str]]:
        """The job's command line, and where each output is expected in scratch (whose `outputs/`
        ScratchPool.take made)."""
        values: dict[str, list[str]] = {}
        for name, binding in job.inputs.items():
            values[name] = [self.resolver.input_arg(job, name, ref) for ref in binding.refs]
        out_dir = os.path.join(scratch, "outputs")
        produced = {name: os.path.join(out_dir, name) for name in job.outputs}
        if job.module.writes_config:  # before outputs join `values`: an input and an output may share a name
            write_job_config(scratch, job, values, produced)
        values.update({name: [path] for name, path in produced.items()})
        for name, spec in job.module.params.items():
            values[name] = render_param(spec, job.params.get(name))
        given = {*job.inputs, *job.outputs}
        left_out = {n for n in [*job.module.inputs, *job.module.outputs] if n not in given}
        left_out |= {n for n in job.module.params if job.params.get(n) is None}
        return module_argv(job.module, values, optional=left_out, python=sys.executable), produced

    def _publish(self, job: PlannedJob, identity: Identity, scratch: str, output: str, path: str) -> CacheEntry:
        try:
            if stat.S_ISREG(os.lstat(path).st_mode):  # the common case: one stat says there is no link
                md5 = md5_file(path)
            else:
                inline_links(Path(path), Path(scratch))
                if not (os.path.isfile(path) or os.path.isdir(path)):  # a fifo would block the hashing forever
                    raise TreeError(f"{path} is not a regular file or folder")
                md5 = fingerprint(Path(path))
        except TreeError as exc:
            raise JobFailed(f"job '{job.name}' failed: output {output}: {exc}") from None
        return self.cache.put(identity.outputs[output], Path(path), md5=md5, job_hash=identity.job_hash,
                              replace=self.force)


def _tail(log: str, lines: int = 20) -> list[str]:
    """The last `lines` lines of a log (read from its end: a job may write gigabytes)."""
    try:
        with open(log, "rb") as handle:
            handle.seek(max(0, os.fstat(handle.fileno()).st_size - 16384))
            text = handle.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def _write_final(jobs_dir: str, record: records.JobRecord) -> None:
    """Write a failed job's record; when even that fails (a full disk), the record stays
    `running` with a dead pid, which every listing shows as failed."""
    with contextlib.suppress(OSError):
        records.write_record(jobs_dir, record)
