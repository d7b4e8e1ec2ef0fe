"""A sweep's points, typed by the module's parameters, and the member names they give (pure).

    grid:   every combination, first axis slowest; `--grid` replaces an axis in place or adds one
    points: as given, in order;  exclude: drops every point holding all of an entry's values

Values go through `convert_param` like any parameter value: nothing is evaluated.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mlpipe.core.errors import Problem
from mlpipe.core.hashing import md5_text
from mlpipe.core.spec import JobSpec, ModuleSpec, convert_param
from mlpipe.core.sweep_spec import GRID, POINTS, SWEEP

SEP = "__"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
_LONG = 24

Point = tuple[tuple[str, Any], ...]


def render_value(value: Any) -> str:
    """A point value as it appears in member names: canonical, safe, at most 24 characters."""
    if isinstance(value, str):
        text = value
    elif type(value) in (int, float):
        text = repr(value)  # what json.dumps writes for these (finite floats only reach here)
    else:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    if len(text) > _LONG:
        return md5_text(text)[:8]
    return _UNSAFE.sub("_", text)


def member_suffix(point: Point) -> str:
    return SEP.join(f"{axis}_{render_value(value)}" for axis, value in point)


def _canonical(value: Any) -> str:
    """The type-tagged JSON of a value: 1, 1.0, True and "1" are four different points."""
    return f"{type(value).__name__}:{json.dumps(value, sort_keys=True, default=str)}"


def _key(point: Point) -> str:
    return "\0".join(f"{axis}={_canonical(value)}" for axis, value in sorted(point, key=lambda p: p[0]))


def typed_points(job: JobSpec, module: ModuleSpec, cli: Mapping[str, Sequence[str]], max_jobs: int,
                 file: str, problems: list[Problem]) -> list[Point] | None:
    """The job's points in order (`cli`: its `--grid` axes), or None after reporting problems."""
    return _Typer(job, module, cli, max_jobs, file, problems).points()


class _Typer:
    def __init__(self, job: JobSpec, module: ModuleSpec, cli: Mapping[str, Sequence[str]], max_jobs: int,
                 file: str, problems: list[Problem]):
        self.job, self.module, self.cli, self.max_jobs = job, module, cli, max_jobs
        self.file, self.problems = file, problems
        self.unknown: set[str] = set()

    def problem(self, where: str, message: str, file: str | None = None) -> None:
        self.problems.append(Problem(file or self.file, message, self.job.name, where))

    def points(self) -> list[Point] | None:
        """The typed points in order, or None when a problem was reported."""
        before = len(self.problems)
        sweep = self.job.sweep
        if sweep is not None and sweep.points is not None:
            if self.cli:
                self.problem(SWEEP, "--grid needs a sweep with grid:, this one has points:", "--grid")
                return None
            points = [self._typed(p, f"{SWEEP}.{POINTS}[{i}]") for i, p in enumerate(sweep.points)]
        else:
            points = self._grid()
        if points is None or len(self.problems) > before:
            return None
        excluded = [self._typed(p, f"{SWEEP}.exclude[{i}]") for i, p in enumerate(sweep.exclude if sweep else ())]
        if len(self.problems) > before:
            return None
        kept = [p for p in points if not any(set(e) <= set(p) for e in excluded)] if excluded else points
        return self._check(kept, bool(excluded))

    def _grid(self) -> list[Point] | None:
        """The cartesian product of the typed axes (YAML's, with `--grid`'s in place or added)."""
        before = len(self.problems)
        sweep = self.job.sweep
        axes = [(axis, values, False) for axis, values in (sweep.grid if sweep else ())]
        for axis, values in self.cli.items():  # a replaced axis keeps its place, so member names stay
            given = (axis, tuple(values), True)
            axes = [given if a[0] == axis else a for a in axes] if axis in {a[0] for a in axes} else [*axes, given]
        typed_axes = []
        for axis, values, from_text in axes:
            where = f"{SWEEP}.{GRID}.{axis}"
            origin = "--grid" if from_text else None
            typed = [self._one(axis, v, where, from_text, origin) for v in values]
            if not values:
                self.problem(where, "empty axis: give at least one value", origin)
            seen: set[str] = set()
            for value in typed:
                key = _canonical(value)
                if value is not _BAD and key in seen:
                    self.problem(where, f"value {value!r} is given twice (duplicate point)", origin)
                seen.add(key)
            typed_axes.append((axis, typed))
        size = math.prod(len(values) for _axis, values in typed_axes)
        if size > self.max_jobs:  # refused before a single point is built
            self.problem(SWEEP, f"the grid has {size:,} points, more than the limit of"
                         f" {self.max_jobs:,} (--max-jobs, setting MAX_JOBS)")
            return None
        if len(self.problems) > before:
            return None
        names = [axis for axis, _values in typed_axes]
        return [tuple(zip(names, combo, strict=True)) for combo in itertools.product(*(v for _a, v in typed_axes))]

    def _check(self, points: list[Point], excluded: bool) -> list[Point] | None:
        first: dict[str, int] = {}
        names: dict[str, int] = {}
        ok = True
        for i, point in enumerate(points):
            key, name = _key(point), member_suffix(point)
            if key in first:
                self.problem(f"{SWEEP}.{POINTS}[{i}]", f"duplicate point: same as point {first[key]}")
                ok = False
            elif name in names:
                self.problem(SWEEP, f"points {names[name]} and {i} both get the member name"
                             f" '{self.job.name}{SEP}{name}'")
                ok = False
            first.setdefault(key, i)
            names.setdefault(name, i)
        if not points:
            self.problem(f"{SWEEP}.exclude" if excluded else SWEEP, "no point is left to run")
            ok = False
        return points if ok else None

    def _typed(self, pairs: Point, where: str) -> Point:
        return tuple((axis, self._one(axis, value, f"{where}.{axis}", False, None))
                     for axis, value in pairs)

    def _one(self, axis: str, value: Any, where: str, from_text: bool, origin: str | None) -> Any:
        spec = self.module.params.get(axis)
        if spec is None:
            if axis not in self.unknown:  # once per axis, not once per value
                self.unknown.add(axis)
                self.problem(where, f"unknown axis: module '{self.module.module_id}' has no parameter"
                             f" '{axis}'", origin)
            return _BAD
        try:
            return convert_param(spec, value, from_text=from_text)
        except ValueError as exc:
            self.problem(where, str(exc), origin)
            return _BAD


class _Bad:
    def __repr__(self) -> str:
        return "<invalid>"


_BAD = _Bad()
