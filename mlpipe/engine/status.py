"""The dry run: every job's status (up-to-date or stale), what a run would do (none, pull, run)
and why, from its saved doit manifest, its record and the cache. Writes nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlpipe.engine.resolve import Identity, Unresolved
from mlpipe.store import records

if TYPE_CHECKING:
    from mlpipe.engine.build import Builder


@dataclass(frozen=True)
class JobStatus:
    """One line of `--dry-run`."""

    name: str
    job_id: str | None
    status: str  # up-to-date | stale
    action: str  # none | pull | run
    reasons: list[str]


def explain(builder: Builder, saved: Callable[[str], Mapping[str, Any]]) -> list[JobStatus]:
    """Every job's status, action and reasons, in dependency order; writes nothing."""
    statuses: dict[str, JobStatus] = {}
    for name, job in builder.plan.jobs.items():
        stale_upstream = [u for u in job.upstream if statuses[u].status == "stale"]
        try:
            identity = builder.identity(name, fetch=False)
        except Unresolved as exc:
            reasons = exc.reasons if saved(name) else _never_run(exc.reasons)
            statuses[name] = JobStatus(name, None, "stale", "run", reasons)
            continue
        missing = builder.missing(name, identity)
        if not missing and not builder.force:
            exports = job.exports()
            new = [f"export {out} to {uri}" for out, uri in exports.items()
                   if saved(name).get("exports", {}).get(out) != uri]
            statuses[name] = JobStatus(name, identity.job_hash, "up-to-date", "none", new)
            continue
        reasons = ["forced"] if builder.force else _why_stale(builder, saved(name), identity, missing)
        reasons += [f"upstream {u} stale" for u in stale_upstream]
        hashes = list(identity.outputs.values())
        action = ("pull" if not builder.force and hashes and not job.always and builder.mirror is not None
                  and builder.mirror.has(hashes) else "run")
        statuses[name] = JobStatus(name, identity.job_hash, "stale", action, reasons)
    return list(statuses.values())


def _why_stale(builder: Builder, saved: Mapping[str, Any], identity: Identity, missing: list[str]) -> list[str]:
    if saved.get("job_hash") == identity.job_hash:
        return missing
    if not saved:
        record = records.read_record(builder.settings.jobs_dir, identity.job_hash)
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
