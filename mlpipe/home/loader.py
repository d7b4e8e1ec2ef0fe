"""Read pipe and module YAML files and turn them into a checked Plan."""

from __future__ import annotations

import contextlib
import marshal
import os
import zlib
from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

from mlpipe.core import spec
from mlpipe.core.errors import Problem, SpecError, UsageError
from mlpipe.core.plan import Plan, check_plan
from mlpipe.core.spec import ModuleSpec, PipeSpec, module_from_data, pipe_from_data
from mlpipe.core.yaml_text import load_yaml_text
from mlpipe.home.apps import AppIndex, resolve_pipe
from mlpipe.home.settings import Settings


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(str(path), f"cannot read: {getattr(exc, 'strerror', None) or exc}")]) from exc


class YamlMemo:
    """Loaded YAML data kept in the home, so that an unchanged file is not parsed again.

    Parsing costs about 0.1 ms per pipe job (a 5,000-job pipe: more than all the rest of a
    no-op run); reading the memo back costs a few ms. One file per YAML path holds
    `marshal`led (stamp, text, data): it is used only when the file's text is exactly the
    text parsed then and the parser's stamp is the same. Anything else, a damaged file, or
    data marshal cannot hold (YAML timestamps) all mean: parse as before. Only the YAML loading
    is skipped; every check of the data still runs.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.texts: dict[str, str] = {}  # every file loaded through this memo: path -> text

    def load(self, path: Path, text: str) -> Any:
        self.texts[str(path)] = text
        stamp = _parser_stamp()
        memo = self.folder / f"{zlib.crc32(str(path).encode()):08x}-{path.name}.marshal"
        try:
            found_stamp, found_text, data = marshal.loads(memo.read_bytes())
            if found_stamp == stamp and found_text == text:
                return data
        except (OSError, EOFError, ValueError, TypeError):
            pass
        data = load_yaml_text(text, str(path))
        self._store(memo, (stamp, text, data))
        return data

    def _store(self, memo: Path, entry: tuple[str, str, Any]) -> None:
        from mlpipe.store.atomic import write_bytes_atomic  # only when a file was parsed: `ml listpipe` stays light

        try:
            blob = marshal.dumps(entry)
        except ValueError:
            return
        with contextlib.suppress(OSError):  # a read-only home only costs parsing
            write_bytes_atomic(memo, blob)


@cache
def _parser_stamp() -> str:
    """Changes whenever the YAML loading code may have changed (spec.py edited or reinstalled)."""
    st = os.stat(spec.__file__)
    return f"{st.st_size}-{st.st_mtime_ns}-{marshal.version}"


def _load_data(path: Path, memo: YamlMemo | None) -> Any:
    text = read_text(path)
    return memo.load(path, text) if memo is not None else load_yaml_text(text, str(path))


def load_module(apps: AppIndex, module_id: str, memo: YamlMemo | None = None) -> ModuleSpec:
    path = apps.module_path(module_id)
    if not path.is_file():
        raise UsageError(f"unknown module '{module_id}': no file {path.name} in app '{module_id.split('/')[0]}'")
    return module_from_data(_load_data(path, memo), str(path), module_id)


def load_pipe_spec(path: Path, pipe_id: str, memo: YamlMemo | None = None,
                   found: list[Problem] | None = None) -> PipeSpec:
    return pipe_from_data(_load_data(path, memo), str(path), pipe_id, found)


def load_pipe_with_includes(apps: AppIndex, path: Path, pipe_id: str, memo: YamlMemo | None = None,
                            found: list[Problem] | None = None) -> PipeSpec:
    """The pipe with the jobs of every file it `includes` (recursively; each file once).

    A job name defined in two files, an include cycle or an unknown include is a problem naming
    the files: added to `found` when given (as every other problem), else a SpecError.
    """
    return add_includes(apps, load_pipe_spec(path, pipe_id, memo, found), path, memo, found)


def add_includes(apps: AppIndex, root: PipeSpec, path: Path, memo: YamlMemo | None = None,
                 found: list[Problem] | None = None) -> PipeSpec:
    """`root` (read from `path`, or about to be saved there) with the jobs of the files it includes."""
    if not root.includes:
        return root
    jobs, job_files = dict(root.jobs), {}
    problems: list[Problem] = found if found is not None else []
    seen = {path.resolve()}

    def visit(pipe: PipeSpec, chain: tuple[Path, ...]) -> None:
        for ref in pipe.includes:
            try:
                included_id, included_path = apps.pipe_file(ref)
            except UsageError as exc:
                problems.append(Problem(pipe.file, str(exc), None, spec.INCLUDES))
                continue
            resolved = included_path.resolve()
            if resolved in chain:
                cycle = " -> ".join(str(p) for p in (*chain[chain.index(resolved):], resolved))
                problems.append(Problem(pipe.file, f"include cycle: {cycle}", None, spec.INCLUDES))
                continue
            if resolved in seen:  # included along another path already
                continue
            seen.add(resolved)
            try:
                included = load_pipe_spec(included_path, included_id, memo)
            except SpecError as exc:
                problems.extend(exc.problems)
                continue
            for name, job in included.jobs.items():
                if name in jobs:
                    first = job_files.get(name, root.file)
                    problems.append(Problem(included.file, f"job '{name}' is already defined in {first}", name, "jobs"))
                    continue
                jobs[name], job_files[name] = job, included.file
            visit(included, (*chain, resolved))

    visit(root, (path.resolve(),))
    if problems and found is None:
        raise SpecError(problems)
    return replace(root, jobs=jobs, job_files=job_files)


def load_plan(
    settings: Settings, pipe_ref: str, overrides: Mapping[str, Mapping[str, str]] | None = None,
    found: list[Problem] | None = None, grid: Mapping[str, Mapping[str, list[str]]] | None = None,
) -> tuple[Plan, AppIndex]:
    """Resolve, read and validate a pipe and every module it uses; all problems at once.
    `grid` holds `--grid JOB.PARAM=a,b` axes; sweeps expand to at most setting MAX_JOBS jobs.

    Given a `found` list, the problems go there and the plan of the jobs that passed is
    returned, for the caller's own checks (local inputs); else SpecError.
    """
    from mlpipe.home.plan_memo import PlanMemo, memo_key  # (and pickle) not for listings that only parse

    pipe_id, path, apps = resolve_pipe(settings, pipe_ref)
    plans = PlanMemo(settings.state_dir / "plans")
    key = memo_key(pipe_id, apps.apps, overrides, grid, settings["MAX_JOBS"])
    kept = plans.load(path, key)
    if kept is not None:
        return kept, apps
    memo = YamlMemo(settings.state_dir / "yaml")
    problems: list[Problem] = []
    pipe = load_pipe_with_includes(apps, path, pipe_id, memo, problems)
    plan, problems = check_spec(settings, apps, pipe, problems, overrides, grid, memo)
    if not problems:
        plans.store(path, key, memo.texts, plan)
    if found is None and problems:
        raise SpecError(problems)
    if found is not None:
        found += problems
    return plan, apps


def check_spec(
    settings: Settings, apps: AppIndex, pipe: PipeSpec, problems: list[Problem],
    overrides: Mapping[str, Mapping[str, str]] | None = None,
    grid: Mapping[str, Mapping[str, list[str]]] | None = None, memo: YamlMemo | None = None,
) -> tuple[Plan, list[Problem]]:
    """Load every module `pipe` uses and check the pipe against them (`check_plan`): the plan of
    the jobs that passed and every problem, after `problems` (those found while reading it)."""
    modules: dict[str, ModuleSpec | None] = {}
    for job in pipe.jobs.values():
        if job.module_id in modules or not job.module_id:
            continue
        try:
            modules[job.module_id] = load_module(apps, job.module_id, memo)
        except SpecError as exc:
            problems += exc.problems
            modules[job.module_id] = None
        except UsageError as exc:
            problems.append(Problem(pipe.file_of(job.name), str(exc), job.name, "module"))
            modules[job.module_id] = None
    return check_plan(pipe, modules, overrides, problems, grid, settings["MAX_JOBS"])
