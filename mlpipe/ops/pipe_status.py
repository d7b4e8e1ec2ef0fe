"""The dry run: each job's status, action and reasons, computed one way for `ml runpipe -n`,
`ml graph --status` and the web UI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlpipe.core.plan import Plan
from mlpipe.core.sweep import SweepTag
from mlpipe.engine.build import Builder
from mlpipe.engine.doit_tasks import db_path, saved_manifests
from mlpipe.engine.status import JobStatus
from mlpipe.engine.status import explain as explain_plan
from mlpipe.home.settings import Settings


@dataclass(frozen=True)
class DryRun:
    plan: Plan
    statuses: list[JobStatus]  # in dependency order

    def as_json(self) -> dict[str, Any]:
        """`ml runpipe -n --json`'s shape."""
        return {"pipe": self.plan.pipe_id,
                "jobs": [status_json(s, self.plan.jobs[s.name].sweep) for s in self.statuses]}


def explain(builder: Builder) -> list[JobStatus]:
    """What `builder` would do, against the pipe's last saved manifests; writes nothing."""
    return explain_plan(builder, saved_manifests(db_path(builder.settings, builder.plan.pipe_id)))


def checked_builder(settings: Settings, pipe_ref: str, overrides: Mapping[str, Mapping[str, str]] | None = None,
                    **options: Any) -> Builder:
    """The pipe loaded, planned and checked as `ml runpipe` checks it (SpecError with every problem
    at once, local inputs included), and the Builder for it (`options`: Builder's keywords)."""
    from mlpipe.core.errors import Problem
    from mlpipe.home.loader import load_plan

    problems: list[Problem] = []
    plan, apps = load_plan(settings, pipe_ref, overrides, problems)
    builder = Builder(settings, plan, apps, **options)
    builder.check_local_inputs(problems)
    return builder


def dry_run(settings: Settings, pipe_ref: str, overrides: Mapping[str, Mapping[str, str]] | None = None) -> DryRun:
    """Load and check the pipe, then explain it (UserError when it does not load)."""
    from mlpipe.remote import open_mirror

    builder = checked_builder(settings, pipe_ref, overrides, mirror=open_mirror(settings))
    return DryRun(builder.plan, explain(builder))


def status_json(status: JobStatus, sweep: SweepTag | None = None) -> dict[str, Any]:
    """One job of the dry run's JSON; a sweep member also names its sweep and point."""
    return {"name": status.name, "job_id": status.job_id, "status": status.status, "action": status.action,
            "reasons": status.reasons, **({"sweep": sweep.as_json()} if sweep is not None else {})}
