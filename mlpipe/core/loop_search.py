"""The original product's `module: loop_search` job, translated into a sweep with select-min.

    search:
      module: loop_search
      parameters:
        loop_parameters: {rate: "[0.1, 0.01]"}     # Python list literals (ast.literal_eval, never eval)
        template:                                   # the job each point runs
          module: APP/module/NAME
          input: {...}
          output: {model: model, score: score}      # published under these names: the winner's
          parameters: {learning_rate: "%(rate)s"}
        search_result_file: score                   # the output whose first-line number is minimised

becomes the template job with `sweep: {points: ...}` (each parameter whose value is exactly
`%(name)s` takes the loop values) and `select: {metric: score, mode: min}` on that first line,
which is what the original's `find_min` job did.
"""

from __future__ import annotations

import ast
import itertools
import re
from typing import Any

from mlpipe.core.errors import Problem
from mlpipe.core.sweep_spec import SelectSpec, SweepSpec

LOOP_SEARCH = "loop_search"
LOOP_KEYS = {"loop_parameters", "template", "search_result_file"}
_WHOLE = re.compile(r"^%\(([A-Za-z_][A-Za-z0-9_]*)\)s$")
_WHERE = "parameters"


def translate(body: dict, file: str, job: str, problems: list[Problem]
              ) -> tuple[dict | None, SweepSpec | None, SelectSpec | None]:
    """(template body, sweep, select) for a loop_search job; problems say what is wrong."""
    params = body.get(_WHERE)
    if not isinstance(params, dict):
        problems.append(Problem(file, "loop_search needs parameters: loop_parameters, template, search_result_file",
                                job, _WHERE))
        return None, None, None
    before = len(problems)
    for key in params:
        if key not in LOOP_KEYS:
            problems.append(Problem(file, f"unknown loop_search parameter '{key}'", job, f"{_WHERE}.{key}"))
    loops = _loop_values(params.get("loop_parameters"), file, job, problems)
    template = params.get("template")
    if not isinstance(template, dict):
        problems.append(Problem(file, "expected the job to run for each point (a mapping)", job, f"{_WHERE}.template"))
        return None, None, None
    template = dict(template)
    fixed, varying = {}, {}
    raw_params = template.get(_WHERE) or {}
    if not isinstance(raw_params, dict):
        raw_params = {}
    for name, value in raw_params.items():
        match = _WHOLE.match(value) if isinstance(value, str) else None
        if match:
            varying[name] = match.group(1)
        else:
            fixed[name] = value
    template[_WHERE] = fixed
    for name, placeholder in varying.items():
        if placeholder not in loops and placeholder not in _declared(params):
            problems.append(Problem(file, f"'%({placeholder})s' is not one of loop_parameters", job,
                                    f"{_WHERE}.template.parameters.{name}"))
    for placeholder in loops:
        if placeholder not in varying.values():
            problems.append(Problem(file, f"loop parameter '{placeholder}' is used by no template parameter"
                                    " (write NAME: \"%(" + placeholder + ")s\")", job,
                                    f"{_WHERE}.loop_parameters.{placeholder}"))
    if "%(" in repr({k: v for k, v in template.items()}):
        problems.append(Problem(file, "only a whole parameter value \"%(name)s\" can vary in a loop_search template",
                                job, f"{_WHERE}.template"))
    result = params.get("search_result_file")
    outputs = template.get("output") if isinstance(template.get("output"), dict) else {}
    if not isinstance(result, str) or result not in outputs:
        problems.append(Problem(file, f"expected an output name of the template ({', '.join(outputs) or 'none'}),"
                                f" got {result!r}", job, f"{_WHERE}.search_result_file"))
    if len(problems) > before:
        return None, None, None
    axes = list(loops)
    points = tuple(
        tuple((name, dict(zip(axes, combo, strict=True))[placeholder]) for name, placeholder in varying.items())
        for combo in itertools.product(*(loops[a] for a in axes))
    )
    return template, SweepSpec(points=points), SelectSpec(result, "min", first_line=True)


def _declared(params: dict) -> set[str]:
    """Every loop parameter name (an unreadable one is reported once, by `_loop_values`)."""
    raw = params.get("loop_parameters")
    return set(raw) if isinstance(raw, dict) else set()


def _loop_values(raw: Any, file: str, job: str, problems: list[Problem]) -> dict[str, list[Any]]:
    if not isinstance(raw, dict) or not raw:
        problems.append(Problem(file, "expected a mapping of name -> Python list literal", job,
                                f"{_WHERE}.loop_parameters"))
        return {}
    found = {}
    for name, text in raw.items():
        where = f"{_WHERE}.loop_parameters.{name}"
        value = text
        if isinstance(text, str):
            try:
                value = ast.literal_eval(text)  # literals only: "__import__('os')" is refused, never run
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                problems.append(Problem(file, f"{text!r} is not a Python literal list", job, where))
                continue
        if not isinstance(value, list | tuple) or not value:
            problems.append(Problem(file, f"expected a non-empty list, got {text!r}", job, where))
            continue
        found[str(name)] = list(value)
    return found
