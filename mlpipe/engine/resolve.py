"""Resolve a job's identity: its hashes from its inputs' content, its module's source and its
parameters (DESIGN's formulas, in `core/hashing.py`).

    inputs' content md5 ──┐
    module source md5  ───┼─> job_hash, data_hash per output
    parameters         ───┘

An input read from another job is known once that job's outputs are in the cache; until then
`identity` raises Unresolved with the reasons (the dry run shows them).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpipe.core.errors import FetchError, Problem, RunError, SpecError, UserError
from mlpipe.core.hashing import compute_hashes, md5_manifest, md5_text, module_key
from mlpipe.core.plan import Plan, PlannedJob
from mlpipe.core.spec import ModuleSpec, Ref
from mlpipe.core.uri import Uri, redact
from mlpipe.home.apps import AppIndex
from mlpipe.home.settings import Settings
from mlpipe.sources import Fetched, Sources
from mlpipe.store import records
from mlpipe.store.cache import LocalCache
from mlpipe.store.digests import DigestCache


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


class Unresolved(Exception):
    """A job's hash cannot be known yet; `reasons` say why (upstream stale, input changed)."""

    def __init__(self, reasons: list[str]):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class Resolver:
    """Identities of a plan's jobs, remembered for the run (and "not yet" until the cache changes)."""

    def __init__(self, settings: Settings, plan: Plan, apps: AppIndex, cache: LocalCache, digests: DigestCache,
                 sources: Sources):
        self.settings = settings
        self.plan = plan
        self.apps = apps
        self.cache = cache
        self.digests = digests
        self.sources = sources
        self._identities: dict[str, Identity] = {}
        # (job, fetch) -> (generation, reasons): not resolvable until some job or fetch finishes
        self._unresolved: dict[tuple[str, bool], tuple[int, list[str]]] = {}
        self._generation = 0  # bumped whenever a job or a fetch finishes (the cache may have changed)
        self._source_md5: dict[str, str] = {}
        # the content md5 of an entry held elsewhere (a Dask run's mirror), when not in the cache
        self.remote_md5: Callable[[str], str | None] = lambda data_hash: None
        self._lock = threading.Lock()

    def changed(self) -> None:
        """The cache or a download may have changed: what was unresolved may resolve now."""
        with self._lock:
            self._generation += 1

    def known(self, name: str) -> Identity | None:
        """The identity already resolved for `name` in this run, if any."""
        return self._identities.get(name)

    def remember(self, name: str, identity: Identity) -> None:
        """Replace a job's identity (after it ran without writing an optional output)."""
        self._identities[name] = identity

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
        self.changed()
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
        md5 = self.cache.content_md5(upstream.outputs[output]) or self.remote_md5(upstream.outputs[output])
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

    def ref_origin(self, ref: Ref) -> str:
        """Where an input came from, for the record: a URI (no password) or `data:<data_hash>`."""
        if ref.is_uri:  # records are listed, shown and pushed to the mirror: no `user:password@`
            return redact(ref.value)
        producer, output = self.plan.producers[ref.value]
        return "data:" + self.identity(producer).outputs[output]

    def input_arg(self, job: PlannedJob, input_name: str, ref: Ref) -> str:
        """The command-line value of one input: a path (fetched, or in the cache) or the literal."""
        if not job.module.inputs[input_name].datafile:
            return ref.value
        if ref.is_uri:
            return str(self.fetch(self.plan.uris[ref.value], ref).path)
        producer, output = self.plan.producers[ref.value]
        return str(self.cache.path(self.identity(producer).outputs[output]))


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
