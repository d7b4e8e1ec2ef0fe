"""Rerun one recorded job (`ml runjob`): a one-job plan rebuilt from its record.

    job.json ─ module, parameters ──────────────────────────┐
             ─ input_refs: URI            -> the same URI   ├─> PipeSpec (pipe id = the record's)
                           data:<hash>    -> cache://<hash> ┘      ─> make_plan ─> Builder + engine

A `cache://` input's fingerprint is the cache entry's md5, as for a data name in the pipe, so
an unchanged job gets the same job hash it had in its pipe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlpipe.core.errors import SpecError, UsageError, UserError
from mlpipe.core.plan import Plan, make_plan
from mlpipe.core.spec import Binding, JobSpec, PipeSpec, Ref
from mlpipe.core.sweep import SELECT_MODULE
from mlpipe.home.apps import AppIndex
from mlpipe.home.loader import load_module
from mlpipe.home.settings import Settings
from mlpipe.store import records

if TYPE_CHECKING:
    from mlpipe.engine.build import Builder, Identity

DATA_PREFIX, CACHE_PREFIX = "data:", "cache://"


def data_hash_of(origin: str) -> str | None:
    """The data hash an input origin names (`data:<hash>` or `cache://<hash>`); None for other URIs."""
    for prefix in (DATA_PREFIX, CACHE_PREFIX):
        if origin.startswith(prefix):
            return origin[len(prefix):]
    return None


def record_plan(settings: Settings, record: records.JobRecord) -> tuple[Plan, AppIndex]:
    """The one-job plan that runs `record` again with its module, parameters and inputs."""
    where = f"job {record.job_id[:12]} ({record.pipe}, job '{record.job}')"
    unknown = sorted(set(record.inputs) - set(record.input_refs))
    if unknown:
        raise UsageError(f"{where}: its record does not say where input(s) {', '.join(unknown)} came from "
                         f"(written by an older MLPipe); run the pipe instead: ml runpipe {record.pipe}")
    if record.module == SELECT_MODULE:
        raise UsageError(f"{where}: a sweep's select step runs again with its pipe: ml runpipe {record.pipe}")
    apps = AppIndex.discover(settings)
    try:
        module = load_module(apps, record.module)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    inputs = {
        name: Binding(tuple(Ref(_as_uri(o)) for o in origins), isinstance(record.inputs.get(name), list))
        for name, origins in record.input_refs.items()
    }
    params = {name: value for name, value in record.parameters.items() if value is not None}
    job = JobSpec(record.job, record.module, inputs, {name: name for name in record.outputs}, params)
    pipe = PipeSpec(record.pipe, f"job record {record.job_id}", {record.job: job})
    try:
        return make_plan(pipe, {record.module: module}), apps
    except SpecError as exc:  # the module changed so much that the record no longer fits it
        raise UsageError(f"{where}: module {record.module} no longer accepts this job:\n{exc}") from None


def _as_uri(origin: str) -> str:
    data_hash = data_hash_of(origin)
    return origin if data_hash is None else CACHE_PREFIX + data_hash


def require_cached_inputs(builder: Builder, record: records.JobRecord) -> None:
    """Every input that is another job's output must be in the cache (or pulled from the mirror)."""
    for name, origins in record.input_refs.items():
        for origin in origins:
            data_hash = data_hash_of(origin)
            if data_hash is None or builder.cache.exists(data_hash):
                continue
            if builder.mirror is not None and builder.mirror.pull([data_hash]):
                continue
            raise UserError(_missing_input(builder.settings, record, name, data_hash))


def _missing_input(settings: Settings, record: records.JobRecord, name: str, data_hash: str) -> str:
    head = (f"job {record.job_id[:12]} ({record.pipe}, job '{record.job}'): input '{name}' "
            f"(data {data_hash[:12]}) is no longer in the cache")
    producer = find_producer(settings, data_hash)
    if producer is None:
        return f"{head}, and no job record here produced it; run the pipe: ml runpipe {record.pipe}"
    output = next(out for out, h in producer.outputs.items() if h == data_hash)
    return (f"{head}; it is output '{output}' of job '{producer.job}' in pipe {producer.pipe} "
            f"(job id {producer.job_id[:12]}): run `ml runpipe {producer.pipe}` "
            f"or `ml runjob --job_id {producer.job_id[:12]}` first")


def find_producer(settings: Settings, data_hash: str) -> records.JobSummary | None:
    """The newest job record that lists `data_hash` among its outputs (succeeded ones first)."""
    found = [s for s in records.list_summaries(settings.jobs_dir) if data_hash in s.outputs.values()]
    found.sort(key=lambda s: s.status == records.SUCCEEDED, reverse=True)  # stable: newest first within
    return found[0] if found else None


def describe_change(record: records.JobRecord, identity: Identity) -> str | None:
    """Why the job now has another job hash than its record, or None when it is the same job."""
    if identity.job_hash == record.job_id:
        return None
    changed = [f"input {n} changed" for n in sorted(identity.inputs) if identity.inputs[n] != record.inputs.get(n)]
    if identity.params != record.parameters:
        changed.append("the module's parameters changed")
    reason = "; ".join(changed) or f"module {record.module} changed since"
    return f"note: job '{record.job}' is a new job now ({reason}): job id {identity.job_hash[:12]}"
