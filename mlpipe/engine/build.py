"""Decide and do one job: resolve its hashes from its inputs, then reuse, pull or run it.

    inputs' content md5 ──┐
    module source md5  ───┼─> job_hash, data_hash per output ─> cache hit?  ─yes─> cached
    parameters         ───┘                                     mirror hit? ─yes─> pulled
                                                                otherwise        ─> run, publish

The Builder knows nothing of doit: `engine.py` calls `check` (is the job up to date?) and
`run` (make it so) from doit tasks, and `explain` for `--dry-run`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol

from mlpipe.core.command import module_argv, render_param
from mlpipe.core.errors import FetchError, JobFailed, MlpipeError, Problem, RunError, SpecError, TreeError, UserError
from mlpipe.core.hashing import compute_hashes, fingerprint, md5_manifest, md5_text, module_key
from mlpipe.core.plan import Plan, PlannedJob
from mlpipe.core.spec import ModuleSpec, Ref
from mlpipe.core.uri import Uri, redact
from mlpipe.engine.job_config import adopt_named_outputs, write_job_config
from mlpipe.engine.job_metrics import read_metrics
from mlpipe.home.apps import AppIndex
from mlpipe.home.settings import Settings
from mlpipe.sources import Fetched, SourceContext, Sources
from mlpipe.store import records
from mlpipe.store.cache import DAMAGED, MISSING, CacheEntry, LocalCache, ScratchPool
from mlpipe.store.cancel import mark_if_canceled
from mlpipe.store.digests import DigestCache
from mlpipe.store.links import inline_links
from mlpipe.store.lock import hold_lock, lock_path

RAN, CACHED, PULLED, FAILED, SKIPPED = "ran", "cached", "pulled", "failed", "skipped"


class Mirror(Protocol):
    """A remote copy of the cache (the S3 mirror): see `mirror.py`."""

    def pull(self, data_hashes: list[str]) -> bool:
        """Bring every one of `data_hashes` into the local cache; False if any is missing."""
        ...

    def has(self, data_hashes: list[str]) -> bool: ...

    def push(self, entries: list[CacheEntry], record: records.JobRecord) -> None: ...


@dataclass(frozen=True)
class Identity:
    """A job's hashes and everything that went into them (saved as its doit manifest)."""

    job_hash: str
    source_md5: str
    inputs: dict[str, str | list[str]]
    params: dict[str, Any]
    outputs: dict[str, str]  # output name -> data hash

    def manifest(self) -> dict[str, Any]:
        return {"job_hash": self.job_hash, "source_md5": self.source_md5, "inputs": self.inputs,
                "params": self.params, "outputs": self.outputs}


@dataclass
class JobResult:
    name: str
    job_id: str | None
    result: str
    duration_s: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    stderr_tail: list[str] = field(default_factory=list)  # a failed job's last stderr lines


@dataclass(frozen=True)
class JobStatus:
    """One line of `--dry-run`."""

    name: str
    job_id: str | None
    status: str  # up-to-date | stale
    action: str  # none | pull | run
    reasons: list[str]


class Unresolved(Exception):
    """A job's hash cannot be known yet; `reasons` say why (upstream stale, input changed)."""

    def __init__(self, reasons: list[str]):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


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
    ):
        self.settings = settings
        self.plan = plan
        self.apps = apps
        self.force = force
        self.mirror = mirror
        self.echo = echo
        self.cache = LocalCache(settings.data_dir, settings.scratch_dir)
        self.scratch = ScratchPool(self.cache)  # `close()` it when the run ends
        self.digests = DigestCache(settings.state_dir / "md5.sqlite")
        self.sources = Sources(SourceContext(settings, apps, self.digests, progress))
        self.results: dict[str, JobResult] = {}
        self.errors: list[str] = []  # failures outside jobs (a download, a transfer)
        self.on_event: Callable[[str, str], None] = lambda name, event: None
        self.on_message: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
        self._identities: dict[str, Identity] = {}
        # (job, fetch) -> (generation, reasons): not resolvable until some job or fetch finishes
        self._unresolved: dict[tuple[str, bool], tuple[int, list[str]]] = {}
        self._generation = 0  # bumped whenever a job or a fetch finishes (the cache may have changed)
        self._source_md5: dict[str, str] = {}
        self._active = 0
        self._idle = threading.Condition()

    def wait_idle(self, timeout_s: float) -> None:
        """Wait for running jobs to finish their bookkeeping (after an interrupt)."""
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout=timeout_s)

    # -- identity -------------------------------------------------------------------------
    def source_md5(self, module: ModuleSpec) -> str:
        """md5 over the module's YAML, `module/NAME.py` and its `source:` globs."""
        if module.module_id not in self._source_md5:
            app_dir = self.apps.app_dir(module.app)
            files = {Path(module.file).resolve()}
            script = app_dir / "module" / f"{module.name}.py"
            if script.is_file():
                files.add(script.resolve())
            for pattern in module.source:
                files.update(p.resolve() for p in app_dir.glob(pattern) if p.is_file())
            entries = [(_relative(p, app_dir), self.digests.file_md5(p)) for p in files]
            self._source_md5[module.module_id] = md5_manifest(entries)
        return self._source_md5[module.module_id]

    def fetch(self, uri: Uri, ref: Ref | None = None) -> Fetched:
        fetched = self.sources.fetch(uri)
        with self._idle:
            self._generation += 1
        if ref is not None:
            _check_pin(ref, fetched)
        return fetched

    def _fingerprint(self, job: PlannedJob, input_name: str, ref: Ref, fetch: bool) -> str:
        if not job.module.inputs[input_name].datafile:
            return md5_text(ref.value)
        if ref.is_uri:
            uri = self.plan.uris[ref.value]
            if fetch:
                return self.fetch(uri, ref).fingerprint
            try:
                probe = self.sources.probe(uri)
            except RunError as exc:  # unreachable now: the dry run says so, the real run fails
                raise Unresolved([f"cannot check input {input_name}: {exc}"]) from None
            if probe.fingerprint is None and not probe.version:  # a server that tells no version
                raise Unresolved([f"input {input_name} may have changed ({ref.value}: no version to compare,"
                                  " downloaded again by every run)"])
            if probe.fingerprint is None:
                raise Unresolved([f"input {input_name} changed ({ref.value}: new version {probe.version})"])
            return probe.fingerprint
        producer, output = self.plan.producers[ref.value]
        try:
            upstream = self.identity(producer, fetch=fetch)
        except Unresolved as exc:  # the producer's changed inputs are its reasons; ours is the producer
            reasons = [r if r.startswith("upstream ") else f"upstream {producer} stale" for r in exc.reasons]
            raise Unresolved(list(dict.fromkeys(reasons))) from None
        if output not in upstream.outputs:  # an optional output it succeeded without writing
            raise Unresolved([f"upstream {producer} did not write its output {output}"])
        md5 = self.cache.content_md5(upstream.outputs[output])
        if md5 is None:
            raise Unresolved([f"upstream {producer} stale"])
        return md5

    def identity(self, name: str, *, fetch: bool = True) -> Identity:
        """The job's hashes from the current inputs; Unresolved while an upstream must run first."""
        if name in self._identities:
            return self._identities[name]
        # NOTE: remembering "not yet" too keeps this linear and shallow: without it, every job of a
        # chain whose head must run re-resolved the whole chain above it, recursively (quadratic
        # time, and a RecursionError for chains longer than ~300 jobs).
        generation = self._generation
        known = self._unresolved.get((name, fetch))
        if known is not None and known[0] == generation:
            raise Unresolved(known[1])
        job = self.plan.jobs[name]
        fingerprints: dict[str, str | list[str]] = {}
        reasons: list[str] = []
        for input_name, binding in job.inputs.items():
            try:
                found = [self._fingerprint(job, input_name, ref, fetch) for ref in binding.refs]
            except Unresolved as exc:
                reasons += [r for r in exc.reasons if r not in reasons]
                continue
            fingerprints[input_name] = found if binding.is_list else found[0]
        if reasons:
            self._unresolved[(name, fetch)] = (generation, reasons)
            raise Unresolved(reasons)
        source = "" if job.select is not None else self.source_md5(job.module)  # a select step: no files
        key = module_key(job.module.module_id, source, job.module.version)
        job_hash, outputs = compute_hashes(key, fingerprints, job.params, job.outputs)
        outputs = self._expected_outputs(job, job_hash, outputs)
        identity = Identity(job_hash, source, fingerprints, dict(job.params), outputs)
        self._identities[name] = identity
        return identity

    def _expected_outputs(self, job: PlannedJob, job_hash: str, outputs: dict[str, str]) -> dict[str, str]:
        """Leave out optional outputs (implicit ones included) this very job succeeded without writing."""
        missing = [out for out, h in outputs.items() if job.module.outputs[out].optional and not self.cache.exists(h)]
        if not missing:
            return outputs
        written = records.written_outputs(self.settings.jobs_dir, job_hash)
        if written is None:
            return outputs
        return {out: h for out, h in outputs.items() if out not in missing or out in written}

    def check_local_inputs(self, found: list[Problem] | None = None) -> None:
        """Fail before anything runs (exit 2) when a file:// or local:// input is missing, with
        the problems `found` before (all reported at once); every job of the pipe is checked."""
        problems = list(found or [])
        for job in self.plan.pipe.jobs.values():
            for input_name, binding in job.inputs.items():
                for ref in binding.refs:
                    uri = self.plan.uris.get(ref.value)
                    if uri is None or uri.scheme not in ("file", "local"):
                        continue
                    try:
                        self.sources.probe(uri)
                    except UserError as exc:
                        problems.append(Problem(self.plan.pipe.file, str(exc), job.name, f"input.{input_name}"))
        if problems:
            raise SpecError(problems)

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
        for output, data_hash in identity.outputs.items():
            state = self.cache.state(data_hash)
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
            job_id = self._identities[name].job_hash if name in self._identities else None
            failure = exc if isinstance(exc, MlpipeError) else JobFailed(f"job '{name}': {_describe(exc)}")
            tail = getattr(exc, "stderr_tail", [])
            self.results[name] = JobResult(name, job_id, FAILED, round(time.time() - started, 3), error=str(failure),
                                           stderr_tail=tail)
            if os.environ.get("MLPIPE_DEBUG") and not isinstance(exc, JobFailed):  # not the job's own failure
                traceback.print_exception(exc, file=sys.stderr)
            if failure is exc:
                raise
            raise failure from exc
        finally:
            with self._idle:
                self._active -= 1
                self._generation += 1
                self._idle.notify_all()

    def _run(self, name: str, started: float) -> dict[str, Any]:
        job = self.plan.jobs[name]
        try:
            identity = self.identity(name)
        except Unresolved as exc:
            raise FetchError(f"job '{name}': {exc}") from None
        job_lock = lock_path(self.settings.locks_dir, "job", identity.job_hash)
        with hold_lock(job_lock, on_wait=lambda: self._wait_for_holder(name, identity.job_hash)) as lock_fd:
            hashes = list(identity.outputs.values())
            if not self.force and not self.missing(name, identity):
                result = CACHED
            elif not self.force and hashes and self.mirror is not None and self.mirror.pull(hashes):
                result = PULLED
            else:
                self.on_event(name, "start")
                if job.select is not None:
                    from mlpipe.engine.select_step import run_select

                    run_select(self, job, identity, started)
                else:
                    identity = self._execute(job, identity, started, lock_fd)
                result = RAN
        self._export(job, identity)
        self._finish(name, identity, result, time.time() - started)
        return {**identity.manifest(), "exports": job.exports()}

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

    def _execute(self, job: PlannedJob, identity: Identity, started: float, lock_fd: int) -> Identity:
        """Run the job's command in a fresh scratch dir and publish its outputs; the identity
        returned lists the outputs it wrote. Its record is written twice: when the process
        starts (with its pid) and when the job ends."""
        scratch = self.scratch.take(f"job-{identity.job_hash}-")
        record = records.JobRecord(
            identity.job_hash, self.plan.pipe_id, job.name, job.module.module_id, dict(job.params),
            dict(identity.inputs), dict(identity.outputs), started=started, runner_pid=os.getpid(),
            input_refs={name: [self._ref_origin(ref) for ref in b.refs] for name, b in job.inputs.items()},
            sweep=job.sweep.as_json() if job.sweep is not None else None,
        )
        stderr_log = records.log_paths(self.settings.jobs_dir, identity.job_hash)[1]
        try:
            argv, produced = self._argv(job, scratch)
            record.argv = argv
            code = self._spawn(job, identity, scratch, argv, record, lock_fd)
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
            records.write_record(self.settings.jobs_dir, record)
        except BaseException as exc:
            record.status, record.ended = records.FAILED, record.ended or time.time()
            record.error = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
            if isinstance(exc, JobFailed):
                exc.stderr_tail = record.stderr_tail  # type: ignore[attr-defined]
            mark_if_canceled(self.settings.jobs_dir, record)
            _write_final(self.settings.jobs_dir, record)
            raise
        finally:
            self.scratch.give_back(scratch)  # removed unless left exactly as it was given
        if self.mirror is not None:
            self.mirror.push(entries, record)
        if record.outputs != identity.outputs:
            identity = replace(identity, outputs=dict(record.outputs))
            self._identities[job.name] = identity
        return identity

    def _spawn(self, job: PlannedJob, identity: Identity, scratch: Path, argv: list[str],
               record: records.JobRecord, lock_fd: int) -> int:
        from mlpipe.engine.execute import run_process

        app_parent = str(self.apps.app_dir(job.module.app).parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (app_parent, env.get("PYTHONPATH", "")) if p)
        env["MLPIPE_JOB_ID"] = identity.job_hash
        stdout_log, stderr_log = records.log_paths(self.settings.jobs_dir, identity.job_hash)
        stdout_log.parent.mkdir(parents=True, exist_ok=True)

        def started(pid: int) -> None:
            record.pid = pid
            records.write_record(self.settings.jobs_dir, record)

        echo = (self.echo, f"[{job.name}] ") if self.echo is not None else None
        return run_process(argv, cwd=scratch, env=env, stdout_path=stdout_log, stderr_path=stderr_log,
                           on_start=started, echo=echo, pass_fds=(lock_fd,))

    def _argv(self, job: PlannedJob, scratch: Path) -> tuple[list[str], dict[str, Path]]:
        """The job's command line, and where each output is expected in scratch."""
        values: dict[str, list[str]] = {}
        for name, binding in job.inputs.items():
            values[name] = [self._input_arg(job, name, ref) for ref in binding.refs]
        out_dir = scratch / "outputs"
        out_dir.mkdir(exist_ok=True)  # ScratchPool.take makes it
        produced = {name: out_dir / name for name in job.outputs}
        if job.module.writes_config:  # before outputs join `values`: an input and an output may share a name
            write_job_config(scratch, job, values, {name: str(path) for name, path in produced.items()})
        values.update({name: [str(path)] for name, path in produced.items()})
        for name, spec in job.module.params.items():
            values[name] = render_param(spec, job.params.get(name))
        given = {*job.inputs, *job.outputs}
        left_out = {n for n in [*job.module.inputs, *job.module.outputs] if n not in given}
        left_out |= {n for n in job.module.params if job.params.get(n) is None}
        return module_argv(job.module, values, optional=left_out, python=sys.executable), produced

    def _ref_origin(self, ref: Ref) -> str:
        if ref.is_uri:  # records are listed, shown and pushed to the mirror: no `user:password@`
            return redact(ref.value)
        producer, output = self.plan.producers[ref.value]
        return "data:" + self.identity(producer).outputs[output]

    def _input_arg(self, job: PlannedJob, input_name: str, ref: Ref) -> str:
        if not job.module.inputs[input_name].datafile:
            return ref.value
        if ref.is_uri:
            return str(self.fetch(self.plan.uris[ref.value], ref).path)
        producer, output = self.plan.producers[ref.value]
        return str(self.cache.path(self.identity(producer).outputs[output]))

    def _publish(self, job: PlannedJob, identity: Identity, scratch: Path, output: str, path: Path) -> CacheEntry:
        try:
            inline_links(path, scratch)
            if not (path.is_file() or path.is_dir()):  # a fifo would block the hashing forever
                raise TreeError(f"{path} is not a regular file or folder")
            md5 = fingerprint(path)
        except TreeError as exc:
            raise JobFailed(f"job '{job.name}' failed: output {output}: {exc}") from None
        return self.cache.put(identity.outputs[output], path, md5=md5, job_hash=identity.job_hash, replace=self.force)

    def _export(self, job: PlannedJob, identity: Identity) -> None:
        from mlpipe.core.uri import parse_uri

        for output, target in job.exports().items():
            entry = self.cache.get(identity.outputs[output]) if output in identity.outputs else None
            if entry is not None:
                self.sources.export(parse_uri(target), entry.path, entry.md5)

    # -- dry run --------------------------------------------------------------------------
    def explain(self, saved: Callable[[str], Mapping[str, Any]]) -> list[JobStatus]:
        """Every job's status, action and reasons, in dependency order; writes nothing."""
        statuses: dict[str, JobStatus] = {}
        for name, job in self.plan.jobs.items():
            stale_upstream = [u for u in job.upstream if statuses[u].status == "stale"]
            try:
                identity = self.identity(name, fetch=False)
            except Unresolved as exc:
                reasons = exc.reasons if saved(name) else _never_run(exc.reasons)
                statuses[name] = JobStatus(name, None, "stale", "run", reasons)
                continue
            missing = self.missing(name, identity)
            if not missing and not self.force:
                exports = job.exports()
                new = [f"export {out} to {uri}" for out, uri in exports.items()
                       if saved(name).get("exports", {}).get(out) != uri]
                statuses[name] = JobStatus(name, identity.job_hash, "up-to-date", "none", new)
                continue
            reasons = ["forced"] if self.force else self._why_stale(saved(name), identity, missing)
            reasons += [f"upstream {u} stale" for u in stale_upstream]
            hashes = list(identity.outputs.values())
            action = ("pull" if not self.force and hashes and not job.always and self.mirror is not None
                      and self.mirror.has(hashes) else "run")
            statuses[name] = JobStatus(name, identity.job_hash, "stale", action, reasons)
        return list(statuses.values())


    def _why_stale(self, saved: Mapping[str, Any], identity: Identity, missing: list[str]) -> list[str]:
        if saved.get("job_hash") == identity.job_hash:
            return missing
        if not saved:
            record = records.read_record(self.settings.jobs_dir, identity.job_hash)
            if record is not None and records.effective_status(record) == records.FAILED:
                return [f"last run failed ({record.error or 'exit code ' + str(record.exit_code)})"]
        return _diff(saved, identity)


def _never_run(reasons: list[str]) -> list[str]:
    """A job this pipe never ran has no past input to have changed: say so instead."""
    return list(dict.fromkeys("never run" if r.startswith("input ") else r for r in reasons))


def _diff(saved: Mapping[str, Any], identity: Identity) -> list[str]:
    """Why a job is stale, from its last manifest in this pipe's doit DB."""
    if not saved:
        return ["never run"]
    reasons = []
    old_params = saved.get("params", {})
    for name in sorted(set(old_params) | set(identity.params)):
        if old_params.get(name) != identity.params.get(name):
            reasons.append(f"parameter {name} changed ({old_params.get(name)!r} -> {identity.params.get(name)!r})")
    if saved.get("source_md5") != identity.source_md5:
        reasons.append("module source changed")
    old_inputs = saved.get("inputs", {})
    for name in sorted(set(old_inputs) | set(identity.inputs)):
        if old_inputs.get(name) != identity.inputs.get(name):
            reasons.append(f"input {name} changed")
    return reasons or ["module changed"]


def _check_pin(ref: Ref, fetched: Fetched) -> None:
    if ref.md5 and ref.md5 != fetched.fingerprint:
        raise FetchError(f"{ref.value}: md5 mismatch (pinned {ref.md5}, got {fetched.fingerprint})")
    if ref.sha256:
        if fetched.path.is_dir():
            raise FetchError(f"{ref.value}: a sha256 pin needs a single file, this is a folder")
        with open(fetched.path, "rb") as handle:
            got = hashlib.file_digest(handle, "sha256").hexdigest()
        if got != ref.sha256:
            raise FetchError(f"{ref.value}: sha256 mismatch (pinned {ref.sha256}, got {got})")


def _describe(exc: BaseException) -> str:
    """One line for an unexpected error: its cause and the file it concerns."""
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return f"{type(exc).__name__}: {exc}"


def _tail(log: Path, lines: int = 20) -> list[str]:
    """The last `lines` lines of a log (read from its end: a job may write gigabytes)."""
    try:
        with open(log, "rb") as handle:
            handle.seek(max(0, os.fstat(handle.fileno()).st_size - 16384))
            text = handle.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def _write_final(jobs_dir: Path, record: records.JobRecord) -> None:
    """Write a failed job's record; when even that fails (a full disk), the record stays
    `running` with a dead pid, which every listing shows as failed."""
    with contextlib.suppress(OSError):
        records.write_record(jobs_dir, record)


def _relative(path: Path, app_dir: Path) -> str:
    resolved_app = app_dir.resolve()
    return path.relative_to(resolved_app).as_posix() if path.is_relative_to(resolved_app) else path.as_posix()
