"""A pipe's job graph as plain data (pure): nodes are jobs, edges are the data names between them.

    plan ──graph_of_plan──> PipeGraph ──(ops: with_status)──> rendered by graph_render

`ml graph --format json` prints `as_json()`; the web UI's `/api/pipes/<id>/graph` returns it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from mlpipe.core.plan import Plan

# What a node shows, worst first (a collapsed sweep shows its worst member's state).
STATES = ("failed", "canceled", "running", "stale", "pull", "skipped", "succeeded", "up-to-date", "unknown")


@dataclass(frozen=True)
class GraphNode:
    id: str                      # the job's name in the pipe (a sweep member's own name)
    job: str                     # the pipe job it stands for: the sweep's job for a member, else `id`
    module: str
    status: str | None = None    # the dry run's: up-to-date | stale (None without --status)
    action: str | None = None    # the dry run's: none | pull | run
    sweep: dict[str, Any] | None = None  # job.json's "sweep" ({"job", "point"}); collapsed: {"job", "members"}
    job_id: str | None = None
    state: str = "unknown"       # what the node is labelled with: one of STATES
    reasons: tuple[str, ...] = ()
    last_job_id: str | None = None  # the newest record of this job in the pipe (its logs, history)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "job": self.job, "module": self.module, "status": self.status,
                "action": self.action, "sweep": self.sweep, "job_id": self.job_id, "state": self.state,
                "reasons": list(self.reasons), "last_job_id": self.last_job_id}


@dataclass(frozen=True)
class GraphEdge:
    src: str
    dst: str
    data: str  # the data name the edge carries

    def as_json(self) -> dict[str, str]:
        return {"from": self.src, "to": self.dst, "data": self.data}


@dataclass(frozen=True)
class PipeGraph:
    pipe: str
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"pipe": self.pipe, "nodes": [n.as_json() for n in self.nodes],
                "edges": [e.as_json() for e in self.edges], **self.extra}


def graph_of_plan(plan: Plan) -> PipeGraph:
    """One node per job in dependency order, one edge per (producer, consumer, data name)."""
    nodes = tuple(GraphNode(name, name, job.module.module_id) for name, job in plan.jobs.items())
    edges: dict[tuple[str, str, str], None] = {}
    for name, job in plan.jobs.items():
        for binding in job.inputs.values():
            for ref in binding.refs:
                if not ref.is_uri and ref.value in plan.producers:
                    edges[(plan.producers[ref.value][0], name, ref.value)] = None
    return PipeGraph(plan.pipe_id, nodes, tuple(GraphEdge(*e) for e in edges))


def collapse_sweeps(graph: PipeGraph) -> PipeGraph:
    """One node per sweep (its members' worst state), edges merged; other nodes unchanged."""
    owner = {n.id: n.sweep["job"] for n in graph.nodes if n.sweep and "job" in n.sweep}
    if not owner:
        return graph
    merged: dict[str, GraphNode] = {}
    members: dict[str, int] = {}
    for node in graph.nodes:
        key = owner.get(node.id, node.id)
        if node.id not in owner:
            merged[key] = node
            continue
        members[key] = members.get(key, 0) + 1
        first = merged.get(key)
        worst = node.state if first is None or STATES.index(node.state) < STATES.index(first.state) else first.state
        status = "stale" if node.status == "stale" or (first is not None and first.status == "stale") else node.status
        merged[key] = replace(first or node, id=key, job=key, job_id=None, state=worst, status=status,
                              action=None, reasons=(), last_job_id=None)
    nodes = tuple(replace(n, sweep={"job": n.id, "members": members[n.id]}) if n.id in members else n
                  for n in merged.values())
    edges: dict[tuple[str, str], GraphEdge] = {}
    for e in graph.edges:  # members' edges between the same two nodes become one (the first data name)
        src, dst = owner.get(e.src, e.src), owner.get(e.dst, e.dst)
        if src != dst:
            edges.setdefault((src, dst), GraphEdge(src, dst, e.data))
    return PipeGraph(graph.pipe, nodes, tuple(edges.values()), graph.extra)
