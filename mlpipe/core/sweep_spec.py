"""A job's `sweep:` and `select:` keys -> frozen dataclasses (pure; expansion is in `sweep.py`).

    sweep:  {grid: {AXIS: [v, ...], ...}}        cartesian product, axes in declared order
            {points: [{AXIS: v, ...}, ...]}      explicit points, in order
            exclude: [{AXIS: v, ...}, ...]       drops every point matching all the given axes
    select: {metric: KEY, mode: min|max}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlpipe.core.errors import Problem, unknown_keys

SWEEP, SELECT = "sweep", "select"
GRID, POINTS, EXCLUDE = "grid", "points", "exclude"
SWEEP_KEYS = {GRID, POINTS, EXCLUDE}
SELECT_KEYS = {"metric", "mode"}
MODES = ("min", "max")


@dataclass(frozen=True)
class SweepSpec:
    """Raw (untyped) sweep values as written; `sweep.py` types them by the module's parameters."""

    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    points: tuple[tuple[tuple[str, Any], ...], ...] | None = None
    exclude: tuple[tuple[tuple[str, Any], ...], ...] = ()


@dataclass(frozen=True)
class SelectSpec:
    """Which member wins. `first_line` (loop_search): the metric is the number on the first line
    of the member's output named `metric`, not a key of a metrics output."""

    metric: str
    mode: str
    first_line: bool = False


def parse_sweep(value: Any, file: str, job: str, problems: list[Problem]) -> SweepSpec | None:
    if not isinstance(value, dict):
        problems.append(Problem(file, f"expected a mapping with grid: or points:, got {value!r}", job, SWEEP))
        return None
    before = len(problems)
    problems += unknown_keys(value, SWEEP_KEYS, file, job, SWEEP)
    if (GRID in value) == (POINTS in value):
        problems.append(Problem(file, "give exactly one of grid: and points:", job, SWEEP))
    grid: list[tuple[str, tuple[Any, ...]]] = []
    raw_grid = value.get(GRID)
    if GRID in value and not isinstance(raw_grid, dict):
        problems.append(Problem(file, f"expected a mapping of parameter -> list of values, got {raw_grid!r}",
                                job, f"{SWEEP}.{GRID}"))
    elif isinstance(raw_grid, dict):
        if not raw_grid:
            problems.append(Problem(file, "the grid has no axis", job, f"{SWEEP}.{GRID}"))
        for axis, values in raw_grid.items():
            where = f"{SWEEP}.{GRID}.{axis}"
            if not isinstance(values, list):
                problems.append(Problem(file, f"expected a list of values, got {values!r}", job, where))
            else:  # an empty axis is reported by sweep.py, together with the typing problems
                grid.append((str(axis), tuple(values)))
    points = _point_list(value, POINTS, file, job, problems) if POINTS in value else None
    if points is not None and not points and len(problems) == before:
        problems.append(Problem(file, "empty list of points", job, f"{SWEEP}.{POINTS}"))
    exclude = _point_list(value, EXCLUDE, file, job, problems) if EXCLUDE in value else ()
    if len(problems) > before:
        return None
    return SweepSpec(tuple(grid), points, tuple(exclude or ()))


def _point_list(value: dict, key: str, file: str, job: str, problems: list[Problem]) -> tuple | None:
    items = value.get(key)
    if not isinstance(items, list):
        problems.append(Problem(file, f"expected a list of {{parameter: value}} mappings, got {items!r}",
                                job, f"{SWEEP}.{key}"))
        return None
    found = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not item:
            problems.append(Problem(file, f"expected a non-empty {{parameter: value}} mapping, got {item!r}",
                                    job, f"{SWEEP}.{key}[{i}]"))
            continue
        found.append(tuple((str(k), v) for k, v in item.items()))
    return tuple(found)


def parse_select(value: Any, file: str, job: str, problems: list[Problem]) -> SelectSpec | None:
    if not isinstance(value, dict):
        problems.append(Problem(file, f"expected {{metric: KEY, mode: min|max}}, got {value!r}", job, SELECT))
        return None
    before = len(problems)
    problems += unknown_keys(value, SELECT_KEYS, file, job, SELECT)
    metric, mode = value.get("metric"), value.get("mode")
    if not isinstance(metric, str) or not metric:
        problems.append(Problem(file, f"expected a metric name, got {metric!r}", job, f"{SELECT}.metric"))
    if mode not in MODES:
        problems.append(Problem(file, f"expected min or max, got {mode!r}", job, f"{SELECT}.mode"))
    if len(problems) > before:
        return None
    return SelectSpec(metric, mode)
