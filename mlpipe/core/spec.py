"""Module and pipe YAML -> frozen dataclasses (pure: `parse_*` take text, never touch files).

Structural checks happen here (keys, value types); checks that need several files (unknown
modules, data names, cycles) happen in `plan.py`. Every problem found is reported at once.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from mlpipe.core import loop_search
from mlpipe.core.errors import Problem, SpecError, unknown_keys
from mlpipe.core.shell import unsafe_names, uses_shell_syntax
from mlpipe.core.sweep_spec import SELECT, SWEEP, SelectSpec, SweepSpec, parse_select, parse_sweep
from mlpipe.core.uri import is_uri
from mlpipe.core.yaml_text import load_yaml_text

# YAML keys
INPUT, OUTPUT, PARAMETERS, CMD, SOURCE, VERSION = "input", "output", "parameters", "cmd", "source", "version"
JOBS, MODULE, INCLUDES, ALWAYS = "jobs", "module", "includes", "always"
RESOURCES = "resources"  # Dask worker resources a job needs, e.g. {GPU: 1} (docs/cluster.md)
# keys of the original product's modules (see docs/compat.md)
SHELL, INPUTS_FROM_JOB, OUTPUTS_FROM_JOB = "shell", "input_from_job_config", "output_from_job_config"
MODULE_KEYS = {INPUT, OUTPUT, PARAMETERS, CMD, SOURCE, VERSION, ALWAYS, SHELL, INPUTS_FROM_JOB, OUTPUTS_FROM_JOB,
               RESOURCES, "description"}
PORT_KEYS = {"type", "optional", "datafile", "description", "help"}
PARAM_KEYS = {"type", "default", "flag", "optional", "description", "help", "choices"}
PIPE_KEYS = {VERSION, JOBS, INCLUDES, "description"}
JOB_KEYS = {MODULE, INPUT, OUTPUT, PARAMETERS, ALWAYS, "description", SWEEP, SELECT}
COLLECT = "collect"
PIN_KEYS = {"uri", "md5", "sha256"}

PARAM_TYPES = {"int": "int", "float": "float", "str": "str", "string": "str", "text": "str",
               "bool": "bool", "list": "list", "dict": "dict"}
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_HEX = {"md5": re.compile(r"^[0-9a-f]{32}$"), "sha256": re.compile(r"^[0-9a-f]{64}$")}


@dataclass(frozen=True)
class PortSpec:
    """A declared input or output of a module."""

    name: str
    type: str = "file"
    optional: bool = False
    datafile: bool = True


@dataclass(frozen=True)
class ParamSpec:
    """A declared parameter; `required` when it has no default and is not optional."""

    name: str
    type: str
    default: Any = None
    has_default: bool = False
    optional: bool = False
    flag: str | None = None
    choices: tuple[Any, ...] | None = None

    @property
    def required(self) -> bool:
        return not self.has_default and not self.optional


@dataclass(frozen=True)
class ModuleSpec:
    """A module: its interface and command line (tokens already split with shlex).

    `shell`: `template` runs as `/bin/sh -c` with every value quoted (`shell:` in the YAML, or
    shell syntax in `cmd`). `inputs_from_job`/`outputs_from_job`: each job names the ports.
    """

    module_id: str
    file: str
    inputs: dict[str, PortSpec]
    outputs: dict[str, PortSpec]
    params: dict[str, ParamSpec]
    cmd: tuple[str, ...]
    source: tuple[str, ...] = ()
    version: str | None = None
    always: bool = False  # run on every `ml runpipe` (notifications, uploads of fresh data)
    template: str = ""
    shell: bool = False
    inputs_from_job: bool = False
    outputs_from_job: bool = False
    resources: tuple[tuple[str, float], ...] = ()  # (name, amount), sorted: what a Dask worker must offer

    @property
    def writes_config(self) -> bool:
        """The job's `_default_config` is written for modules that read it (see docs/compat.md)."""
        return self.inputs_from_job or self.outputs_from_job or "_default_config" in self.template

    @property
    def app(self) -> str:
        return self.module_id.split("/")[0]

    @property
    def name(self) -> str:
        return self.module_id.split("/")[-1]


@dataclass(frozen=True)
class Ref:
    """One input value: a URI or a data name, with an optional integrity pin."""

    value: str
    md5: str | None = None
    sha256: str | None = None

    @property
    def is_uri(self) -> bool:
        return is_uri(self.value)


@dataclass(frozen=True)
class Binding:
    """What a job gives one input: one reference, or a YAML list of them."""

    refs: tuple[Ref, ...]
    is_list: bool = False
    collect: bool = False  # `{collect: DATA}`: every sweep member's DATA, as a list (see sweep.py)


@dataclass(frozen=True)
class JobSpec:
    name: str
    module_id: str
    inputs: dict[str, Binding] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    always: bool = False
    sweep: SweepSpec | None = None
    select: SelectSpec | None = None


@dataclass(frozen=True)
class PipeSpec:
    """A pipe; `includes` are pipe ids whose jobs it adds; `job_files` says, for a job that came
    from an included file, which file (the others are in `file`)."""

    pipe_id: str
    file: str
    jobs: dict[str, JobSpec]
    version: str = "1.0"
    includes: tuple[str, ...] = ()
    job_files: dict[str, str] = field(default_factory=dict)

    def file_of(self, job: str) -> str:
        return self.job_files.get(job, self.file)


def _mapping(value: Any, file: str, job: str | None, where: str, problems: list[Problem]) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(Problem(file, f"expected a mapping, got {type(value).__name__}", job, where))
        return {}
    return value


def _bool(value: Any, file: str, where: str, problems: list[Problem], default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        problems.append(Problem(file, f"expected true or false, got {value!r}", None, where))
        return default
    return value


def parse_module(text: str, file: str, module_id: str) -> ModuleSpec:
    """Parse a module YAML; raise SpecError listing every problem."""
    return module_from_data(load_yaml_text(text, file), file, module_id)


def module_from_data(data: Any, file: str, module_id: str) -> ModuleSpec:
    """Check a module YAML's loaded data (what `parse_module` does after parsing)."""
    problems: list[Problem] = []
    data = _mapping(data, file, None, "module", problems)
    problems += unknown_keys(data, MODULE_KEYS, file, None, "module")
    ports: dict[str, dict[str, PortSpec]] = {INPUT: {}, OUTPUT: {}}
    for section in (INPUT, OUTPUT):
        for name, decl in _mapping(data.get(section), file, None, section, problems).items():
            where = f"{section}.{name}"
            if not isinstance(name, str) or not NAME_RE.match(name):
                problems.append(Problem(file, f"'{name}' is not a valid name", None, section))
                continue
            decl = _mapping(decl, file, None, where, problems)
            problems += unknown_keys(decl, PORT_KEYS, file, None, where)
            ports[section][name] = PortSpec(
                name,
                str(decl.get("type", "file")),
                _bool(decl.get("optional"), file, f"{where}.optional", problems, False),
                _bool(decl.get("datafile"), file, f"{where}.datafile", problems, True),
            )
    params = {}
    for name, decl in _mapping(data.get(PARAMETERS), file, None, PARAMETERS, problems).items():
        param = _parse_param(name, decl, file, problems)
        if param is not None:
            params[name] = param
    clash = set(ports[INPUT]) & set(ports[OUTPUT]) | (set(ports[INPUT]) | set(ports[OUTPUT])) & set(params)
    for name in sorted(clash):
        problems.append(Problem(file, f"'{name}' is declared more than once (input, output, parameter)", None, name))
    cmd: tuple[str, ...] = ()
    raw_cmd = data.get(CMD)
    shell = data.get(SHELL)
    if shell is not None and not isinstance(shell, bool):
        problems.append(Problem(file, f"expected true or false, got {shell!r}", None, SHELL))
        shell = None
    if not isinstance(raw_cmd, str) or not raw_cmd.strip():
        problems.append(Problem(file, "missing command line (a string)", None, CMD))
        raw_cmd = ""
    else:
        raw_cmd = raw_cmd.strip()
        if shell is None:
            shell = uses_shell_syntax(raw_cmd)
        try:
            if shell:
                names = {*ports[INPUT], *ports[OUTPUT], *params}
                for name in unsafe_names(raw_cmd, names):
                    problems.append(Problem(file, f"'{name}' is used inside $(...), ${{...}}, backticks or a"
                                            " here-document, where the shell would read its value as code:"
                                            " use it outside them", None, CMD))
            else:
                cmd = tuple(shlex.split(raw_cmd))
        except ValueError as exc:
            problems.append(Problem(file, f"cannot split command line: {exc}", None, CMD))
    from_job = {key: _bool(data.get(key), file, key, problems, False) for key in (INPUTS_FROM_JOB, OUTPUTS_FROM_JOB)}
    source = data.get(SOURCE) or []
    if isinstance(source, str):
        source = [source]
    if not isinstance(source, list) or not all(isinstance(s, str) for s in source):
        problems.append(Problem(file, "expected a list of file globs", None, SOURCE))
        source = []
    for pattern in source:
        if pattern.startswith("/") or ".." in pattern.split("/"):
            problems.append(Problem(file, f"'{pattern}' must be a glob relative to the app", None, SOURCE))
    version = data.get(VERSION)
    always = _bool(data.get(ALWAYS), file, ALWAYS, problems, False)
    resources = _resources(data.get(RESOURCES), file, problems)
    if problems:
        raise SpecError(problems)
    return ModuleSpec(
        module_id, file, ports[INPUT], ports[OUTPUT], params, cmd, tuple(source),
        None if version is None else str(version), always=always, template=raw_cmd, shell=bool(shell),
        inputs_from_job=from_job[INPUTS_FROM_JOB], outputs_from_job=from_job[OUTPUTS_FROM_JOB],
        resources=resources,
    )


def _resources(value: Any, file: str, problems: list[Problem]) -> tuple[tuple[str, float], ...]:
    """`resources: {GPU: 1, MEM_GB: 8}`: names to positive amounts."""
    found = []
    for name, amount in _mapping(value, file, None, RESOURCES, problems).items():
        if not isinstance(name, str) or not NAME_RE.match(name):
            problems.append(Problem(file, f"'{name}' is not a valid resource name", None, RESOURCES))
        elif isinstance(amount, bool) or not isinstance(amount, int | float) or amount <= 0:
            problems.append(Problem(file, f"expected a positive number, got {amount!r}", None, f"{RESOURCES}.{name}"))
        else:
            found.append((name, float(amount)))
    return tuple(sorted(found))


def _parse_param(name: Any, decl: Any, file: str, problems: list[Problem]) -> ParamSpec | None:
    where = f"{PARAMETERS}.{name}"
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.append(Problem(file, f"'{name}' is not a valid name", None, PARAMETERS))
        return None
    decl = _mapping(decl, file, None, where, problems)
    problems += unknown_keys(decl, PARAM_KEYS, file, None, where)
    kind = PARAM_TYPES.get(str(decl.get("type", "str")))
    if kind is None:
        problems.append(Problem(file, f"unknown type '{decl.get('type')}' (use {', '.join(PARAM_TYPES)})", None, where))
        return None
    flag = decl.get("flag")
    if flag is not None and (kind != "bool" or not isinstance(flag, str) or not flag.startswith("-")):
        problems.append(Problem(file, "'flag' needs a bool parameter and an option such as --verbose", None, where))
    choices = decl.get("choices")
    if choices is not None and not isinstance(choices, list):
        problems.append(Problem(file, "'choices' must be a list", None, where))
        choices = None
    spec = ParamSpec(
        name, kind, None, "default" in decl,
        _bool(decl.get("optional"), file, f"{where}.optional", problems, False),
        flag, tuple(choices) if choices is not None else None,
    )
    if spec.has_default and decl["default"] is not None:
        try:
            default = convert_param(spec, decl["default"])
        except ValueError as exc:
            problems.append(Problem(file, f"default: {exc}", None, where))
            return None
        spec = ParamSpec(name, kind, default, True, spec.optional, flag, spec.choices)
    return spec


def convert_param(spec: ParamSpec, value: Any, *, from_text: bool = False) -> Any:
    """Check and convert a parameter value to the declared type; ValueError says why."""
    if from_text and isinstance(value, str):
        value = _from_text(spec.type, value)
    kind = spec.type
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "list": isinstance(value, list),
        "dict": isinstance(value, dict),
    }[kind]
    if not ok:
        raise ValueError(f"expected {kind}, got {type(value).__name__} {value!r}")
    if kind == "float":
        try:
            value = float(value)
        except OverflowError:
            raise ValueError(f"{value!r} is too large for a float") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} is not a finite number")
    if spec.choices is not None and value not in spec.choices:
        raise ValueError(f"{value!r} is not one of {list(spec.choices)}")
    return value


def _from_text(kind: str, text: str) -> Any:
    """Interpret a command-line string (`--set job.p=VALUE`) for a declared type."""
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            lowered = text.lower()
            if lowered in ("true", "yes", "1", "on"):
                return True
            if lowered in ("false", "no", "0", "off"):
                return False
            raise ValueError
        if kind in ("list", "dict"):
            return load_yaml_text(text, "--set")
    except (ValueError, SpecError):
        raise ValueError(f"expected {kind}, got {text!r}") from None
    return text


def parse_pipe(text: str, file: str, pipe_id: str) -> PipeSpec:
    """Parse a pipe YAML's structure; raise SpecError listing every problem."""
    return pipe_from_data(load_yaml_text(text, file), file, pipe_id)


def pipe_from_data(data: Any, file: str, pipe_id: str, found: list[Problem] | None = None) -> PipeSpec:
    """Check a pipe YAML's loaded data (what `parse_pipe` does after parsing).

    Given a `found` list, problems go there and what could be read is returned anyway, so that
    `make_plan` can check the rest too (every problem is reported at once); else SpecError.
    A job whose module id is bad is kept with module "" (its outputs still name data).
    """
    problems: list[Problem] = [] if found is None else found
    data = _mapping(data, file, None, "pipe", problems)
    problems += unknown_keys(data, PIPE_KEYS, file, None, "pipe")
    raw_jobs = _mapping(data.get(JOBS), file, None, JOBS, problems)
    includes = data.get(INCLUDES) or []
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) and i for i in includes):
        problems.append(Problem(file, "expected a list of pipe ids (APP/pipe/NAME.yaml)", None, INCLUDES))
        includes = []
    if not raw_jobs and not includes and not problems:
        problems.append(Problem(file, "the pipe has no jobs", None, JOBS))
    jobs = {}
    for name, body in raw_jobs.items():
        if not isinstance(name, str) or not NAME_RE.match(name):
            problems.append(Problem(file, f"'{name}' is not a valid job name (letters, digits, _ . -)", None, JOBS))
            continue
        jobs[name] = _parse_job(name, body, file, problems)
    if problems and found is None:
        raise SpecError(problems)
    return PipeSpec(pipe_id, file, jobs, str(data.get(VERSION, "1.0")), tuple(includes))


def _parse_job(name: str, body: Any, file: str, problems: list[Problem]) -> JobSpec:
    body = _mapping(body, file, name, "job", problems)
    problems += unknown_keys(body, JOB_KEYS, file, name, "job")
    sweep = parse_sweep(body[SWEEP], file, name, problems) if SWEEP in body else None
    select = parse_select(body[SELECT], file, name, problems) if SELECT in body else None
    if body.get(MODULE) == loop_search.LOOP_SEARCH:
        if sweep is not None or select is not None:
            problems.append(Problem(file, "a loop_search job takes no sweep: or select:", name, SWEEP))
        template, sweep, select = loop_search.translate(body, file, name, problems)
        if template is None:
            return JobSpec(name, "")  # its problems are reported; a job without a module plans nothing
        problems += unknown_keys(template, JOB_KEYS - {SWEEP, SELECT}, file, name, "parameters.template")
        body = template
    module = body.get(MODULE)
    if not isinstance(module, str) or not module:
        problems.append(Problem(file, "missing module id (APP/module/NAME)", name, MODULE))
        module = ""
    inputs = {}
    for key, value in _mapping(body.get(INPUT), file, name, INPUT, problems).items():
        binding = _parse_binding(value, file, name, f"{INPUT}.{key}", problems)
        if binding is not None:
            inputs[str(key)] = binding
    outputs = {}
    for key, value in _mapping(body.get(OUTPUT), file, name, OUTPUT, problems).items():
        if not isinstance(value, str) or not (is_uri(value) or NAME_RE.match(value)):
            problems.append(Problem(file, f"expected a data name or a URI, got {value!r}", name, f"{OUTPUT}.{key}"))
            continue
        outputs[str(key)] = value
    params = dict(_mapping(body.get(PARAMETERS), file, name, PARAMETERS, problems))
    always = _bool(body.get(ALWAYS), file, f"{name}.{ALWAYS}", problems, False)
    return JobSpec(name, module, inputs, outputs, params, always, sweep, select)


def _parse_binding(value: Any, file: str, job: str, where: str, problems: list[Problem]) -> Binding | None:
    if isinstance(value, dict) and COLLECT in value:
        name = value[COLLECT]
        if len(value) != 1 or not isinstance(name, str) or not NAME_RE.match(name):
            problems.append(Problem(file, f"expected {{collect: DATA_NAME}}, got {value!r}", job, where))
            return None
        return Binding((Ref(name),), True, collect=True)
    items = value if isinstance(value, list) else [value]
    refs = []
    for item in items:
        ref = _parse_ref(item, file, job, where, problems)
        if ref is not None:
            refs.append(ref)
    if len(refs) != len(items):
        return None
    if not refs:
        problems.append(Problem(file, "empty list", job, where))
        return None
    return Binding(tuple(refs), isinstance(value, list))


def _parse_ref(item: Any, file: str, job: str, where: str, problems: list[Problem]) -> Ref | None:
    if isinstance(item, str) and (is_uri(item) or NAME_RE.match(item)):
        return Ref(item)
    if isinstance(item, dict) and isinstance(item.get("uri"), str) and is_uri(item["uri"]):
        bad = unknown_keys(item, PIN_KEYS, file, job, where)
        for algo in ("md5", "sha256"):
            if algo in item and not (isinstance(item[algo], str) and _HEX[algo].match(item[algo].lower())):
                bad.append(Problem(file, f"'{algo}' must be a hex digest", job, where))
        problems += bad
        return None if bad else Ref(item["uri"], _lower(item.get("md5")), _lower(item.get("sha256")))
    problems.append(Problem(file, f"expected a data name, a URI or {{uri: ..., md5: ...}}, got {item!r}", job, where))
    return None


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None
