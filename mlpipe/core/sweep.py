"""Expand sweeps into ordinary member jobs (pure), before the plan checks jobs and doit sees tasks.

    train  sweep: {grid: {a: [1, 2]}}  ─>  train__a_1, train__a_2        own hashes, records, cache entries
    eval   reads train's `model`       ─>  eval__a_1,  eval__a_2         fan-out: same points, same naming
    report reads {collect: model}      ─>  report, model = [model__a_1, model__a_2]   (point order)
    train  with select: {...}          ─>  members + select step `train`, whose outputs are the plain
                                           data names (`model`): the winner's bytes, so readers of
                                           `model` are not expanded and hash the winner's content

A pipe without `sweep:`, `select:` or `{collect: ...}` comes back unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from graphlib import CycleError, TopologicalSorter
from typing import Any

from mlpipe.core.errors import Problem
from mlpipe.core.metrics import METRICS_TYPE
from mlpipe.core.spec import Binding, JobSpec, ModuleSpec, ParamSpec, PipeSpec, PortSpec, Ref
from mlpipe.core.sweep_points import SEP, Point, member_suffix, typed_points
from mlpipe.core.sweep_spec import SWEEP
from mlpipe.core.uri import is_uri

SELECT_MODULE = "mlpipe/builtin/select"
SELECT_VERSION = "1"   # bump when the select step's behaviour changes: its hash follows it
DEFAULT_MAX_JOBS = 10_000


@dataclass(frozen=True)
class SweepTag:
    """Which sweep a member belongs to and at which point (`job.json`'s `"sweep"`)."""

    job: str
    point: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"job": self.job, "point": dict(self.point)}


@dataclass(frozen=True)
class Expansion:
    jobs: dict[str, JobSpec]                 # every job after expansion (members in point order)
    tags: dict[str, SweepTag] = field(default_factory=dict)             # member -> sweep and point
    select_modules: dict[str, ModuleSpec] = field(default_factory=dict)  # select step -> its module


def has_sweeps(pipe: PipeSpec) -> bool:
    return any(job.sweep is not None or job.select is not None or any(b.collect for b in job.inputs.values())
               for job in pipe.jobs.values())


def swept_axes(job: JobSpec, grid: Mapping[str, Mapping[str, Sequence[str]]] | None = None) -> set[str]:
    """The parameters a job's sweep (and `--grid`) varies."""
    axes = set((grid or {}).get(job.name, {}))
    if job.sweep is not None:
        axes.update(axis for axis, _values in job.sweep.grid)
        axes.update(axis for point in job.sweep.points or () for axis, _value in point)
    return axes


def expand_sweeps(
    pipe: PipeSpec,
    modules: Mapping[str, ModuleSpec | None],
    grid: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    max_jobs: int = DEFAULT_MAX_JOBS,
    problems: list[Problem] | None = None,
) -> Expansion:
    """Members, fan-out, collect and select steps; every problem is appended to `problems`."""
    problems = problems if problems is not None else []
    grid = dict(grid or {})
    for name in grid:
        if name not in pipe.jobs:
            problems.append(Problem("--grid", f"unknown job '{name}'"))
    if not grid and not has_sweeps(pipe):
        return Expansion(dict(pipe.jobs))
    return _Expander(pipe, modules, grid, max_jobs, problems).run()


class _Expander:
    def __init__(self, pipe: PipeSpec, modules: Mapping[str, ModuleSpec | None],
                 grid: Mapping[str, Mapping[str, Sequence[str]]], max_jobs: int, problems: list[Problem]):
        self.pipe, self.modules, self.grid, self.max_jobs, self.problems = pipe, modules, grid, max_jobs, problems
        self.file = pipe.file
        self.jobs: dict[str, JobSpec] = {}
        self.tags: dict[str, SweepTag] = {}
        self.select_modules: dict[str, ModuleSpec] = {}
        self.fanned: dict[str, tuple[str, dict[str, str]]] = {}  # data name -> (sweep, suffix -> member's)
        self.members_of: dict[str, list[str]] = {}                # data name -> members' data names
        self.points: dict[str, list[tuple[str, Point]]] = {}      # sweep -> [(suffix, point)]
        self.broken: set[str] = set()  # data names of jobs that could not be expanded
        self.data_names = {v for job in pipe.jobs.values() for v in job.outputs.values() if not is_uri(v)}

    def problem(self, job: str, where: str, message: str, file: str | None = None) -> None:
        self.problems.append(Problem(file or self.file, message, job, where))

    def run(self) -> Expansion:
        for name in self._order():
            self._expand(self.pipe.jobs[name])
        if len(self.jobs) > self.max_jobs:
            self.problems.append(Problem(self.file, f"the sweeps expand the pipe to {len(self.jobs):,} jobs, more than"
                                         f" the limit of {self.max_jobs:,} (--max-jobs, setting MAX_JOBS)"))
        return Expansion(self.jobs, self.tags, self.select_modules)

    def _order(self) -> list[str]:
        producers = {v: job.name for job in self.pipe.jobs.values() for v in job.outputs.values()}
        graph = {job.name: {producers[r.value] for b in job.inputs.values() for r in b.refs if r.value in producers}
                 for job in self.pipe.jobs.values()}
        try:
            return list(TopologicalSorter(graph).static_order())
        except CycleError:  # the plan reports the cycle; nothing is expanded
            return list(self.pipe.jobs)

    def _expand(self, job: JobSpec) -> None:
        if not self._try_expand(job):
            # kept as written (the plan still checks its module and inputs), and its readers
            # report nothing more about it
            self.broken.update(v for v in job.outputs.values() if not is_uri(v))
            self.jobs.setdefault(job.name, _as_written(job))

    def _try_expand(self, job: JobSpec) -> bool:
        module = self.modules.get(job.module_id)
        swept = job.sweep is not None or job.name in self.grid
        if any(r.value in self.broken for b in job.inputs.values() for r in b.refs):
            self.broken.update(v for v in job.outputs.values() if not is_uri(v))
            if swept and module is not None:  # its own problems are still worth reporting now
                if job.select is not None:
                    self._check_select(job, module)
                typed_points(job, module, self.grid.get(job.name, {}), self.max_jobs, self.file, self.problems)
            self.jobs[job.name] = _as_written(job)
            return True
        families = {self.fanned[r.value][0] for b in job.inputs.values() if not b.collect
                    for r in b.refs if r.value in self.fanned}
        if len(families) > 1:
            self.problem(job.name, "input", f"reads outputs of several sweeps ({', '.join(sorted(families))}):"
                         " collect or select all but one")
            return False
        if job.select is not None and not swept:
            self.problem(job.name, "select", "select: needs a sweep: on the same job")
            return False
        if swept and families:
            self.problem(job.name, SWEEP, f"reads a swept output of '{next(iter(families))}': a job cannot both fan"
                         " out and sweep (collect or select that output)", "--grid" if job.sweep is None else None)
            return False
        if swept:
            if module is None:
                return False  # the plan reports the module
            select_ok = job.select is None or self._check_select(job, module)
            points = typed_points(job, module, self.grid.get(job.name, {}), self.max_jobs, self.file,
                                  self.problems)
            if points is None or not select_ok:
                return False
            members = [(member_suffix(p), p, dict(p)) for p in points]
            family = job.name
            self.points[family] = [(s, p) for s, p, _ in members]
        elif families:
            family = next(iter(families))
            members = [(s, p, {}) for s, p in self.points[family]]
        else:
            self._add(job.name, self._rewire(job, None), None)
            return True
        return self._members(job, module, family, members)

    # -- members --------------------------------------------------------------------------
    def _members(self, job: JobSpec, module: ModuleSpec | None, family: str,
                 members: list[tuple[str, Point, dict]]) -> bool:
        """One job per point; `family` is the sweep whose points these are (fan-out: upstream's)."""
        selected = job.select is not None
        if not selected:
            for out, value in job.outputs.items():
                if is_uri(value):
                    self.problem(job.name, f"output.{out}", f"every member would export to {value}: give the"
                                 " output a data name, or add select: to export the winner only")
                    return False
        member_outputs: dict[str, list[str]] = {out: [] for out in job.outputs}
        for suffix, point, params in members:
            name = f"{job.name}{SEP}{suffix}"
            outputs = {}
            for out, value in job.outputs.items():
                data = f"{name}.{out}" if is_uri(value) else f"{value}{SEP}{suffix}"
                if data in self.data_names:
                    self.problem(job.name, f"output.{out}", f"member data name '{data}' is already a data name")
                self.data_names.add(data)
                outputs[out] = data
                member_outputs[out].append(data)
            spec = self._rewire(job, suffix)
            spec = replace(spec, name=name, outputs=outputs, params={**job.params, **params})
            self._add(name, spec, job.name, SweepTag(job.name, dict(point)))
        for out, value in job.outputs.items():
            if not is_uri(value):
                self.members_of[value] = member_outputs[out]
                if not selected:
                    self.fanned[value] = (family, dict(zip([s for s, _, _ in members], member_outputs[out],
                                                           strict=True)))
        if selected and module is not None:
            self._select_step(job, module, member_outputs)
        return True

    def _rewire(self, job: JobSpec, suffix: str | None) -> JobSpec:
        """The job with `{collect: D}` as D's member list and fanned data names as this member's."""
        inputs = {}
        for name, binding in job.inputs.items():
            if binding.collect:
                data = binding.refs[0].value
                if data not in self.members_of:
                    self.problem(job.name, f"input.{name}", f"collect: '{data}' is not the output of a swept job")
                    inputs[name] = Binding(binding.refs, True)
                    continue
                inputs[name] = Binding(tuple(Ref(d) for d in self.members_of[data]), True)
            elif suffix is not None and any(r.value in self.fanned for r in binding.refs):
                refs = tuple(Ref(self.fanned[r.value][1][suffix]) if r.value in self.fanned else r
                             for r in binding.refs)
                inputs[name] = Binding(refs, binding.is_list)
            else:
                inputs[name] = binding
        return replace(job, inputs=inputs, sweep=None, select=None)

    def _add(self, name: str, spec: JobSpec, origin: str | None, tag: SweepTag | None = None) -> None:
        if name in self.jobs or (origin is not None and name in self.pipe.jobs):
            self.problem(origin or name, SWEEP, f"member name '{name}' is taken by another job or member")
            return
        self.jobs[name] = spec
        if tag is not None:
            self.tags[name] = tag

    def _check_select(self, job: JobSpec, module: ModuleSpec) -> bool:
        select = job.select
        assert select is not None
        if select.first_line and select.metric not in job.outputs:
            self.problem(job.name, "select.metric", f"'{select.metric}' is not an output of the job")
            return False
        if not select.first_line and not _metrics_outputs(job, module):
            self.problem(job.name, "select.metric", f"metric '{select.metric}': module '{module.module_id}' has no"
                         f" output of type: {METRICS_TYPE} that the job wires")
            return False
        return True

    def _select_step(self, job: JobSpec, module: ModuleSpec, member_outputs: dict[str, list[str]]) -> None:
        select = job.select
        assert select is not None
        metrics = _metrics_outputs(job, module)
        ports = {out: PortSpec(out, module.outputs[out].type if out in module.outputs else "file")
                 for out in job.outputs}
        step = ModuleSpec(SELECT_MODULE, SELECT_MODULE, ports, ports, {
            "metric": ParamSpec("metric", "str"), "mode": ParamSpec("mode", "str"),
            "first_line": ParamSpec("first_line", "bool"), "metrics": ParamSpec("metrics", "list"),
        }, (), version=SELECT_VERSION)
        inputs = {out: Binding(tuple(Ref(d) for d in datas), True) for out, datas in member_outputs.items()}
        params = {"metric": select.metric, "mode": select.mode, "first_line": select.first_line, "metrics": metrics}
        self.select_modules[job.name] = step
        self._add(job.name, JobSpec(job.name, SELECT_MODULE, inputs, dict(job.outputs), params, select=select), None)

def _as_written(job: JobSpec) -> JobSpec:
    """A job that could not be expanded, as one job (collect inputs as plain lists)."""
    inputs = {n: Binding(b.refs, b.is_list) for n, b in job.inputs.items()}
    return replace(job, inputs=inputs, sweep=None, select=None)


def _metrics_outputs(job: JobSpec, module: ModuleSpec) -> list[str]:
    return [out for out in job.outputs if out in module.outputs and module.outputs[out].type == METRICS_TYPE]
