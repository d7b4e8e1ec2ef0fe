"""Decide and do one job: resolve its hashes from its inputs, then reuse, pull or run it.

    inputs' content md5 ──┐
    module source md5  ───┼─> job_hash, data_hash per output ─> cache hit?  ─yes─> cached
    parameters         ───┘                                     mirror hit? ─yes─> pulled
                                                                otherwise        ─> run, publish

The Builder knows nothing of doit: `engine.py` calls `check` (is the job up to date?) and
`run` (make it so) from doit tasks, and `explain` for `--dry-run`.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol

from mlpipe.core.command import module_argv, render_param
from mlpipe.core.errors import FetchError, JobFailed, MlpipeError, Problem, RunError, SpecError, UserError
from mlpipe.core.hashing import compute_hashes, fingerprint, md5_manifest, md5_text, module_key
from mlpipe.core.plan import Plan, PlannedJob
from mlpipe.core.spec import ModuleSpec, Ref
from mlpipe.core.uri import Uri, redact
from mlpipe.engine.job_config import adopt_named_outputs, write_job_config
from mlpipe.home.apps import AppIndex
from mlpipe.home.settings import Settings
from mlpipe.sources import Fetched, SourceContext, Sources
from mlpipe.store import records
from mlpipe.store.cache import CacheEntry, LocalCache, ScratchPool
from mlpipe.store.cancel import mark_if_canceled
from mlpipe.store.digests import DigestCache
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
        source = self.source_md5(job.module)
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

    def check_local_inputs(self) -> None:
        """Fail before anything runs (exit 2) when a file:// or local:// input is missing."""
        problems = []
        for job in self.plan.jobs.values():
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

    def is_cached(self, identity: Identity) -> bool:
        return all(self.cache.exists(h) for h in identity.outputs.values())

    # -- check and run (called from doit tasks) -------------------------------------------
    def check(self, name: str, saved: Mapping[str, Any]) -> bool:
        """Up to date: the pipe last built this very job hash and its outputs are in the cache."""
        if self.force:
            return False
        try:
            identity = self.identity(name)
        except (MlpipeError, Unresolved):
            return False  # `run` reports the error properly
        if saved.get("job_hash") != identity.job_hash or not self.is_cached(identity):
            return False
        if saved.get("exports", {}) != self.plan.jobs[name].exports():
            return False  # an export target was added or changed: `run` exports the cached outputs
        self._finish(name, identity, CACHED, 0.0)
        return True

    def run(self, name: str) -> dict[str, Any]:
        """Reuse, pull or execute the job; return its manifest. Raises MlpipeError on failure."""
        with self._idle:
            self._active += 1
        started = time.time()
        try:
            return self._run(name, started)
        except MlpipeError as exc:
            job_id = self._identities[name].job_hash if name in self._identities else None
            self.results[name] = JobResult(name, job_id, FAILED, round(time.time() - started, 3), error=str(exc))
            raise
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
        with hold_lock(lock_path(self.settings.locks_dir, "job", identity.job_hash)):
            hashes = list(identity.outputs.values())
            if not self.force and self.is_cached(identity):
                result = CACHED
            elif not self.force and self.mirror is not None and self.mirror.pull(hashes):
                result = PULLED
            else:
                self.on_event(name, "start")
                identity = self._execute(job, identity, started)
                result = RAN
        self._export(job, identity)
        self._finish(name, identity, result, time.time() - started)
        return {**identity.manifest(), "exports": job.exports()}

    def _finish(self, name: str, identity: Identity, result: str, duration: float) -> None:
        outputs = {out: self.cache.path_str(h) for out, h in identity.outputs.items()}
        self.results[name] = JobResult(name, identity.job_hash, result, round(duration, 3), outputs)

    def _execute(self, job: PlannedJob, identity: Identity, started: float) -> Identity:
        """Run the job and publish its outputs; the identity returned lists the outputs it wrote."""
        scratch = self.scratch.take(f"job-{identity.job_hash[:12]}-")
        record = records.JobRecord(
            identity.job_hash, self.plan.pipe_id, job.name, job.module.module_id, dict(job.params),
            dict(identity.inputs), dict(identity.outputs), started=started,
            input_refs={name: [self._ref_origin(ref) for ref in b.refs] for name, b in job.inputs.items()},
        )
        try:
            argv, produced = self._argv(job, scratch)
            record.argv = argv
            records.write_record(self.settings.jobs_dir, record)
            try:
                code = self._spawn(job, identity, scratch, argv, record)
            except BaseException:
                record.status, record.ended, record.error = records.FAILED, time.time(), "interrupted"
                mark_if_canceled(self.settings.jobs_dir, record)
                records.write_record(self.settings.jobs_dir, record)
                raise
            record.exit_code, record.ended = code, time.time()
            if code == 0:
                adopt_named_outputs(scratch, produced)
            missing = [out for out, path in produced.items()
                       if not path.exists() and not job.module.outputs[out].optional]
            if code != 0 or missing:
                record.status = records.FAILED
                record.error = (f"exit code {code}" if code != 0
                                else f"exited 0 but did not write output(s): {', '.join(missing)}")
                mark_if_canceled(self.settings.jobs_dir, record)
                records.write_record(self.settings.jobs_dir, record)
                stderr_log = records.log_paths(self.settings.jobs_dir, identity.job_hash)[1]
                raise JobFailed(f"job '{job.name}' failed: {record.error} (log: {stderr_log})")
            entries = [self._publish(identity, out, path) for out, path in produced.items()
                       if path.exists() and out in identity.outputs]
            published = {entry.data_hash for entry in entries}  # an optional output may be unwritten
            record.outputs = {out: h for out, h in identity.outputs.items() if h in published}
            record.status = records.SUCCEEDED
            records.write_record(self.settings.jobs_dir, record)
            if self.mirror is not None:
                self.mirror.push(entries, record)
            if record.outputs != identity.outputs:
                identity = replace(identity, outputs=dict(record.outputs))
                self._identities[job.name] = identity
            return identity
        finally:
            self.scratch.give_back(scratch)  # removed unless left exactly as it was given

    def _spawn(self, job: PlannedJob, identity: Identity, scratch: Path, argv: list[str],
               record: records.JobRecord) -> int:
        from mlpipe.engine.execute import run_process

        app_parent = str(self.apps.app_dir(job.module.app).parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (app_parent, env.get("PYTHONPATH", "")) if p)
        env["MLPIPE_JOB_ID"] = identity.job_hash
        stdout_log, stderr_log = records.log_paths(self.settings.jobs_dir, identity.job_hash)

        def started(pid: int) -> None:
            record.pid = pid
            records.write_record(self.settings.jobs_dir, record)

        echo = (self.echo, f"[{job.name}] ") if self.echo is not None else None
        return run_process(argv, cwd=scratch, env=env, stdout_path=stdout_log, stderr_path=stderr_log,
                           on_start=started, echo=echo)

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

    def _publish(self, identity: Identity, output: str, path: Path) -> CacheEntry:
        return self.cache.put(identity.outputs[output], path, md5=fingerprint(path), job_hash=identity.job_hash,
                              replace=self.force)

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
            if self.is_cached(identity) and not self.force:
                exports = job.exports()
                new = [f"export {out} to {uri}" for out, uri in exports.items()
                       if saved(name).get("exports", {}).get(out) != uri]
                statuses[name] = JobStatus(name, identity.job_hash, "up-to-date", "none", new)
                continue
            reasons = ["forced"] if self.force else _diff(saved(name), identity)
            reasons += [f"upstream {u} stale" for u in stale_upstream]
            hashes = list(identity.outputs.values())
            action = "pull" if not self.force and self.mirror is not None and self.mirror.has(hashes) else "run"
            statuses[name] = JobStatus(name, identity.job_hash, "stale", action, reasons)
        return list(statuses.values())


def _never_run(reasons: list[str]) -> list[str]:
    """A job this pipe never ran has no past input to have changed: say so instead."""
    return list(dict.fromkeys("never run" if r.startswith("input ") else r for r in reasons))


def _diff(saved: Mapping[str, Any], identity: Identity) -> list[str]:
    """Why a job is stale, from its last manifest in this pipe's doit DB."""
    if not saved:
        return ["never run"]
    if saved.get("job_hash") == identity.job_hash:
        return ["output missing"]
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


def _relative(path: Path, app_dir: Path) -> str:
    resolved_app = app_dir.resolve()
    return path.relative_to(resolved_app).as_posix() if path.is_relative_to(resolved_app) else path.as_posix()
