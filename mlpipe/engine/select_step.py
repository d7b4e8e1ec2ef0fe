"""The select step of a sweep: pick the winning member, publish its outputs under the plain names.

    members' metrics (from the cache) ─> winner (min or max; ties: the first point)
    winner's outputs ─hard link─> this step's outputs ─> readers of `model` hash the winner's content

It runs in-process (no command): its inputs are every member's outputs, so its job hash changes
when any member's result does, and its outputs' content md5 is the winner's, so downstream jobs
rerun exactly when the winner's bytes change. The record holds the choice and every member's value.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpipe.core.errors import JobFailed
from mlpipe.core.metrics import MetricsError, merge_outputs
from mlpipe.core.metrics import lookup as lookup_metric
from mlpipe.core.plan import PlannedJob
from mlpipe.engine.job_metrics import read_metrics_file
from mlpipe.store import records
from mlpipe.store.cache import CacheEntry

if TYPE_CHECKING:
    from mlpipe.engine.build import Builder, Identity


def run_select(builder: Builder, job: PlannedJob, identity: Identity, started: float) -> None:
    """Choose, record and publish; JobFailed (with a failed record) when a member has no usable value."""
    params = job.params
    first_output = next(iter(job.inputs))
    members = [builder.plan.producers[ref.value][0] for ref in job.inputs[first_output].refs]
    record = records.JobRecord(
        identity.job_hash, builder.plan.pipe_id, job.name, job.module.module_id, dict(params),
        dict(identity.inputs), dict(identity.outputs), started=started, pid=os.getpid(),
        input_refs={name: ["data:" + _data_hash(builder, ref.value) for ref in b.refs]
                    for name, b in job.inputs.items()},
    )
    values: dict[str, Any] = {}
    winner: int | None = None
    member_metrics: list[dict[str, Any]] = []
    try:
        for i, member in enumerate(members):
            metrics = _member_metrics(builder, job, i)
            member_metrics.append(metrics)
            value = _value(metrics, params, member)
            values[member] = value
            if winner is None or _better(value, values[members[winner]], params["mode"]):
                winner = i
    except _NoValue as exc:
        _fail(builder, record, str(exc), job)
    assert winner is not None
    record.select = {"metric": params["metric"], "mode": params["mode"], "winner": members[winner],
                     "point": dict(builder.plan.jobs[members[winner]].sweep.point)
                     if builder.plan.jobs[members[winner]].sweep else {},
                     "values": values}
    record.metrics = member_metrics[winner] or None
    entries = [_publish(builder, job, identity, out, winner) for out in job.outputs]
    record.status, record.ended, record.exit_code = records.SUCCEEDED, time.time(), 0
    records.write_record(builder.settings.jobs_dir, record)
    if builder.mirror is not None:
        builder.mirror.push(entries, record)


class _NoValue(Exception):
    pass


def _fail(builder: Builder, record: records.JobRecord, message: str, job: PlannedJob) -> None:
    record.status, record.ended, record.error = records.FAILED, time.time(), message
    records.write_record(builder.settings.jobs_dir, record)
    raise JobFailed(f"job '{job.name}' failed: {message}")


def _data_hash(builder: Builder, data_name: str) -> str:
    producer, output = builder.plan.producers[data_name]
    return builder.identity(producer).outputs[output]


def _member_path(builder: Builder, job: PlannedJob, output: str, index: int) -> Path:
    return builder.cache.path(_data_hash(builder, job.inputs[output].refs[index].value))


def _member_metrics(builder: Builder, job: PlannedJob, index: int) -> dict[str, Any]:
    """The member's flattened metrics (loop_search: `{OUTPUT: first-line number}`)."""
    params = job.params
    member = builder.plan.producers[job.inputs[next(iter(job.inputs))].refs[index].value][0]
    if params["first_line"]:
        path = _member_path(builder, job, params["metric"], index)
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                line = handle.readline().strip()
            return {params["metric"]: float(line)}
        except (OSError, ValueError):
            raise _NoValue(f"member '{member}': the first line of its output '{params['metric']}' is not a number"
                           ) from None
    found = {}
    for out in params["metrics"]:
        try:
            found[out] = read_metrics_file(_member_path(builder, job, out, index))
        except (MetricsError, OSError) as exc:
            raise _NoValue(f"member '{member}': metrics output '{out}' does not parse: {exc}") from None
    return merge_outputs(found)


def _value(metrics: dict[str, Any], params: dict[str, Any], member: str) -> float:
    key = params["metric"]
    value = lookup_metric(metrics, key, params["metrics"])
    if value is None:
        known = ", ".join(sorted(metrics)[:10]) or "none"
        raise _NoValue(f"member '{member}' has no metric '{key}' (its metrics: {known})")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _NoValue(f"member '{member}': metric '{key}' is {value!r}, not a number")
    return float(value)


def _better(value: float, best: float, mode: str) -> bool:
    """Strictly better only: a tie keeps the earlier point."""
    return value < best if mode == "min" else value > best


def _publish(builder: Builder, job: PlannedJob, identity: Identity, output: str, winner: int) -> CacheEntry:
    source_hash = _data_hash(builder, job.inputs[output].refs[winner].value)
    source = builder.cache.get(source_hash)
    if source is None:
        raise JobFailed(f"job '{job.name}': the winner's output '{output}' left the cache ({source_hash})")
    scratch = builder.runner.scratch.take(f"select-{identity.job_hash[:12]}-")
    try:
        staged = scratch / "outputs" / output
        _link_copy(source.path, staged)
        return builder.cache.put(identity.outputs[output], staged, md5=source.md5, job_hash=identity.job_hash,
                                 replace=builder.force)
    finally:
        builder.runner.scratch.give_back(scratch)


def _link_copy(source: Path, dest: Path) -> None:
    """Hard links (no bytes copied: cache files are read-only, so sharing the inode is safe)."""
    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    if source.is_dir():
        shutil.copytree(source, dest, copy_function=link)
    else:
        link(str(source), str(dest))
