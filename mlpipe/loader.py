"""Read pipe and module YAML files and turn them into a checked Plan."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mlpipe.apps import AppIndex, resolve_pipe
from mlpipe.errors import Problem, SpecError, UsageError
from mlpipe.plan import Plan, make_plan
from mlpipe.settings import Settings
from mlpipe.spec import ModuleSpec, PipeSpec, parse_module, parse_pipe


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(str(path), f"cannot read: {getattr(exc, 'strerror', None) or exc}")]) from exc


def load_module(apps: AppIndex, module_id: str) -> ModuleSpec:
    path = apps.module_path(module_id)
    if not path.is_file():
        raise UsageError(f"unknown module '{module_id}': no file {path.name} in app '{module_id.split('/')[0]}'")
    return parse_module(read_text(path), str(path), module_id)


def load_pipe_spec(path: Path, pipe_id: str) -> PipeSpec:
    return parse_pipe(read_text(path), str(path), pipe_id)


def load_plan(
    settings: Settings, pipe_ref: str, overrides: Mapping[str, Mapping[str, str]] | None = None
) -> tuple[Plan, AppIndex]:
    """Resolve, read and validate a pipe and every module it uses; all problems at once."""
    pipe_id, path, apps = resolve_pipe(settings, pipe_ref)
    pipe = load_pipe_spec(path, pipe_id)
    modules: dict[str, ModuleSpec | None] = {}
    problems: list[Problem] = []
    for job in pipe.jobs.values():
        if job.module_id in modules:
            continue
        try:
            modules[job.module_id] = load_module(apps, job.module_id)
        except SpecError as exc:
            problems += exc.problems
            modules[job.module_id] = None
        except UsageError as exc:
            problems.append(Problem(str(path), str(exc), job.name, "module"))
            modules[job.module_id] = None
    return make_plan(pipe, modules, overrides, problems), apps
