"""Create and edit pipe files from the web UI, with the checks and guarantees of the command line.

    page ─ YAML text or JSON data ─> check_pipe ─ load_yaml_text (safe) ─ pipe_from_data
                                                ─ add_includes ─ check_spec (modules, check_plan)
                                                ─ Builder.check_local_inputs       = `ml runpipe`'s checks
         PUT ─ target (APP/pipe/NAME.yaml, nothing else) ─ edit lock ─ md5 still the loaded one?
             ─ check_pipe clean? ─ temp file + rename                 = an atomic save, or nothing

A save names the md5 of the text it was loaded from (`base`); a file that changed on disk since
then is not overwritten (409), so two tabs never lose each other's edits. A save from the form
(JSON data, dumped to YAML) would drop the file's comments: it is refused unless the page says
the user agreed (`drop_comments`); a save of the YAML text keeps the text exactly as typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpipe.core.errors import Problem, SpecError, UsageError, UserError
from mlpipe.core.graph import GraphEdge, GraphNode, PipeGraph
from mlpipe.core.hashing import md5_text
from mlpipe.core.spec import NAME_RE, PipeSpec, PortSpec, pipe_from_data
from mlpipe.core.uri import is_uri
from mlpipe.core.yaml_text import load_yaml_text
from mlpipe.home.apps import AppIndex
from mlpipe.home.loader import add_includes, check_spec, load_module
from mlpipe.home.settings import Settings
from mlpipe.store.atomic import write_bytes_atomic
from mlpipe.store.lock import hold_lock, lock_path
from mlpipe.ui.http import HttpError, invalid, problem_json

MAX_TEXT = 1 << 20  # a pipe file of the page: 1 MiB is thousands of jobs
_COMMENT = re.compile(r"(^|\s)#")  # a YAML comment starts a line or follows a blank (quoted '#' over-counts)


def comment_lines(text: str) -> int:
    """How many lines carry a comment (a save from the form would drop them)."""
    return sum(1 for line in text.splitlines() if _COMMENT.search(line))


def target(apps: AppIndex, pipe_id: str) -> Path:
    """The file a pipe id may be saved to: APP_DIR/pipe/NAME.yaml of a known app, NAME named
    like a job (no `/`, no `..`, not absolute), no symbolic link on the way out of the app."""
    parts = pipe_id.split("/")
    if len(parts) != 3 or parts[1] != "pipe" or not parts[2].endswith((".yaml", ".yml")):
        raise HttpError(400, f"'{pipe_id}': a pipe is saved as APP/pipe/NAME.yaml")
    app, _pipe, file_name = parts
    name = file_name.rpartition(".")[0]
    if not NAME_RE.match(name) or ".." in name:
        raise HttpError(400, f"'{pipe_id}': '{name}' is not a valid pipe name (letters, digits, _ . -,"
                        " starting with a letter or _)")
    try:
        app_dir = apps.app_dir(app)
    except UsageError as exc:
        raise HttpError(404, str(exc)) from None
    pipe_dir = app_dir / "pipe"
    if pipe_dir.is_symlink() or (pipe_dir.exists() and pipe_dir.resolve().parent != app_dir.resolve()):
        raise HttpError(403, f"{app}/pipe is a symbolic link: MLPipe writes pipes only inside the app")
    path = pipe_dir / file_name
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise HttpError(403, f"{pipe_id} is a symbolic link or not a file: not written")
    return path


def stamp(text: str | None) -> dict[str, Any]:
    """What the page sends back when it saves: the md5 of the text it loaded (None: a new pipe)."""
    return {"md5": None if text is None else md5_text(text)}


def read_source(settings: Settings, pipe_id: str) -> dict[str, Any]:
    """The pipe's file as the editor loads it: its text, its data and its stamp."""
    path = target(AppIndex.discover(settings), pipe_id)
    text = _read(path)
    if text is None:
        raise HttpError(404, f"unknown pipe '{pipe_id}'")
    try:
        data = load_yaml_text(text, str(path))
    except SpecError:
        data = None  # the text tab still opens it, to fix it
    return {"pipe": pipe_id, "yaml": text, "data": data, "comments": comment_lines(text),
            "mtime": path.stat().st_mtime, **stamp(text)}


@dataclass(frozen=True)
class Checked:
    text: str
    data: Any
    problems: list[Problem]
    graph: PipeGraph | None


def check_pipe(settings: Settings, apps: AppIndex, pipe_id: str, path: Path, text: str) -> Checked:
    """Every problem `ml runpipe` would report for this text saved at `path`, found the same way."""
    from mlpipe.engine.build import Builder

    problems: list[Problem] = []
    try:
        data = load_yaml_text(text, str(path))
    except SpecError as exc:
        return Checked(text, None, exc.problems, None)
    pipe = add_includes(apps, pipe_from_data(data, str(path), pipe_id, problems), path, None, problems)
    plan, problems = check_spec(settings, apps, pipe, problems)
    try:
        Builder(settings, plan, apps).check_local_inputs(problems)
    except SpecError as exc:
        problems = exc.problems
    except UserError as exc:
        problems = [*problems, Problem(str(path), str(exc))]
    return Checked(text, data, problems, preview_graph(pipe))


def preview_graph(pipe: PipeSpec) -> PipeGraph:
    """The pipe as written, before any check: every job a node, every data name an edge (the
    form's DAG preview; a job with problems is drawn too)."""
    producers = {value: name for name, job in pipe.jobs.items() for value in job.outputs.values() if not is_uri(value)}
    nodes = tuple(GraphNode(name, name, job.module_id) for name, job in pipe.jobs.items())
    edges = {(producers[ref.value], name, ref.value): None for name, job in pipe.jobs.items()
             for binding in job.inputs.values() for ref in binding.refs if ref.value in producers}
    return PipeGraph(pipe.pipe_id, nodes, tuple(GraphEdge(*e) for e in edges))


def body_text(body: dict[str, Any]) -> str:
    """The pipe a request carries: `yaml` (text, kept as is) or `data` (the form's, dumped)."""
    if isinstance(body.get("yaml"), str):
        text = body["yaml"]
    elif isinstance(body.get("data"), dict):
        import yaml

        text = yaml.safe_dump(body["data"], sort_keys=False, allow_unicode=True, default_flow_style=False)
    else:
        raise HttpError(400, "send the pipe as {\"yaml\": TEXT} or {\"data\": {...}}")
    if len(text.encode("utf-8", "surrogateescape")) > MAX_TEXT or "\0" in text:
        raise HttpError(413, f"a pipe file is at most {MAX_TEXT} bytes of text")
    return text


def validate(settings: Settings, body: dict[str, Any]) -> dict[str, Any]:
    """`POST /api/pipes/validate`: the problems of a pipe not saved yet, its YAML, data and DAG."""
    from mlpipe.core.graph_render import to_svg

    pipe_id = body.get("pipe")
    if not isinstance(pipe_id, str):
        raise HttpError(400, "name the pipe: {\"pipe\": \"APP/pipe/NAME.yaml\", ...}")
    apps = AppIndex.discover(settings)
    text = body_text(body)
    try:
        path = target(apps, pipe_id)
    except HttpError as exc:  # a bad name is one more problem, shown next to the name field
        checked = _misnamed(pipe_id, text, str(exc))
    else:
        checked = check_pipe(settings, apps, pipe_id, path, text)
    return {"pipe": pipe_id, "ok": not checked.problems, "problems": [problem_json(p) for p in checked.problems],
            "yaml": checked.text, "data": checked.data,
            "graph": checked.graph.as_json() if checked.graph else None,
            "svg": to_svg(checked.graph) if checked.graph and checked.graph.nodes else None}


def _misnamed(pipe_id: str, text: str, why: str) -> Checked:
    """A pipe that cannot be placed: the name's problem, and the text's when it is not YAML."""
    bad = Problem(pipe_id, why, None, "pipe")
    try:
        return Checked(text, load_yaml_text(text, pipe_id), [bad], None)
    except SpecError as exc:
        return Checked(text, None, [bad, *exc.problems], None)


def save(settings: Settings, pipe_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """`PUT /api/pipes/<id>`: check, then write atomically; refuse a file changed since loaded."""
    apps = AppIndex.discover(settings)
    path = target(apps, pipe_id)
    text = body_text(body)
    base = body.get("base")
    if base is not None and not (isinstance(base, dict) and isinstance(base.get("md5"), str | None)):
        raise HttpError(400, "base must be {\"md5\": ...} as GET /api/pipes/<id>/source gave it")
    with hold_lock(lock_path(settings.locks_dir, "edit", pipe_id)):  # one save of a file at a time
        current = _read(path)
        loaded = base.get("md5") if base else None
        if current is not None and loaded is None:
            raise HttpError(409, f"{pipe_id} already exists: open it to edit it, or choose another name")
        if current is None and loaded is not None:
            raise HttpError(409, f"{pipe_id} was deleted since you loaded it: nothing written")
        if current is not None and md5_text(current) != loaded:
            raise HttpError(409, f"{pipe_id} changed on disk since you loaded it (another tab, an editor, git):"
                            " nothing written; reload it and apply your edit again", {"current": stamp(current)})
        lost = comment_lines(current or "")
        if "yaml" not in body and lost and not body.get("drop_comments"):
            raise HttpError(409, f"{pipe_id} has {lost} comment line(s) that a save from the form drops: edit the"
                            " YAML text to keep them, or save again with drop_comments", {"comments": lost})
        checked = check_pipe(settings, apps, pipe_id, path, text)
        if checked.problems:
            raise invalid(checked.problems)
        write_text_atomic(path, text)
    return {"pipe": pipe_id, "saved": True, "created": current is None, "mtime": path.stat().st_mtime,
            **stamp(text)}


def module_interfaces(apps: AppIndex) -> list[dict[str, Any]]:
    """Each module's full interface for the form: ports with optional, parameters with choices."""
    rows: list[dict[str, Any]] = []
    for module_id in apps.module_ids():
        try:
            module = load_module(apps, module_id)
        except SpecError as exc:
            rows.append({"module": module_id, "error": str(exc.problems[0])})
            continue
        rows.append({"module": module_id, "inputs": _ports(module.inputs), "outputs": _ports(module.outputs),
                     "open_inputs": module.inputs_from_job, "open_outputs": module.outputs_from_job,
                     "parameters": {n: {"type": p.type, "default": p.default, "has_default": p.has_default,
                                        "required": p.required, "choices": list(p.choices) if p.choices else None,
                                        "flag": p.flag} for n, p in module.params.items()}})
    return rows


def _ports(ports: dict[str, PortSpec]) -> dict[str, dict[str, Any]]:
    return {name: {"type": port.type, "optional": port.optional} for name, port in ports.items()}


def write_text_atomic(path: Path, text: str) -> None:
    """Old or new, never half, on disk too; the new file keeps the old one's mode (a new one: 0644)."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644  # (reading the umask would change it for the server's other threads)
    write_bytes_atomic(path, text.encode("utf-8"), durable=True, mode=mode)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise HttpError(409, f"{path.name}: cannot read it: {exc}") from None

