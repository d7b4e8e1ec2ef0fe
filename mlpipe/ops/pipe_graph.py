"""A pipe's graph with each job's state: the dry run's status, and its newest record's outcome.

    state = running     its newest record's process is running
            failed      stale, and its newest record (same job id) failed
            pull|stale  the dry run's action/status;  up-to-date   the dry run says so
"""

from __future__ import annotations

from dataclasses import replace

from mlpipe.core.graph import GraphNode, PipeGraph, collapse_sweeps, graph_of_plan
from mlpipe.engine.status import JobStatus
from mlpipe.home.loader import load_plan
from mlpipe.home.settings import Settings
from mlpipe.ops.job_list import latest_by_job, list_jobs, read_job_data
from mlpipe.ops.pipe_status import DryRun, dry_run
from mlpipe.store.records import FAILED, RUNNING, JobSummary


def pipe_graph(settings: Settings, pipe_ref: str, *, status: bool = False, collapse: bool = False) -> PipeGraph:
    """The graph of a pipe; with `status`, its dry run and records too (reads only)."""
    dry = dry_run(settings, pipe_ref) if status else DryRun(load_plan(settings, pipe_ref)[0], [])
    graph = graph_of_plan(dry.plan)
    latest = latest_by_job(list_jobs(settings, dry.plan.pipe_id))
    statuses = {s.name: s for s in dry.statuses}
    nodes = []
    for node in graph.nodes:
        summary, outcome = latest.get(node.id, (None, None))
        data = read_job_data(settings, summary.job_id) if summary is not None else None
        sweep = data.get("sweep") if data else None
        node = replace(node, sweep=sweep if isinstance(sweep, dict) else None,
                       last_job_id=summary.job_id if summary is not None else None)
        nodes.append(_with_status(node, statuses.get(node.id), summary, outcome) if status else node)
    graph = PipeGraph(graph.pipe, tuple(nodes), graph.edges)
    return collapse_sweeps(graph) if collapse else graph


def _with_status(node: GraphNode, status: JobStatus | None, last: JobSummary | None, outcome: str | None) -> GraphNode:
    if status is None:
        return node
    if outcome == RUNNING:
        state = "running"
    elif status.status == "up-to-date":
        state = "up-to-date"
    elif outcome == FAILED and last is not None and last.job_id == status.job_id:
        state = "failed"
    else:
        state = "pull" if status.action == "pull" else "stale"
    return replace(node, status=status.status, action=status.action, job_id=status.job_id, state=state,
                   reasons=tuple(status.reasons))
