"""Build a job's argument list from its module's `cmd` (pure).

A token equal to a declared input, output or parameter name becomes its value (a list value
becomes several arguments); `{name}` (or the original's `%(name)s`) inside a longer token is
replaced in place. A shell template (`ModuleSpec.shell`) becomes `/bin/sh -c SCRIPT`, every
value quoted (see `shell.py`); any other command never meets a shell. A bool
parameter with `flag:` becomes the flag when true and disappears when false. A left-out
optional input or output disappears together with the `--option` just before it.

>>> build_argv(("python", "-m", "m", "--n", "n", "x"), {"n": ["5"], "x": ["/c/x"]}, optional=set(), python="py")
['py', '-m', 'm', '--n', '5', '/c/x']
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Set
from typing import Any

from mlpipe.core.shell import SHELL, render_shell
from mlpipe.core.spec import ModuleSpec, ParamSpec

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.\-]*)\}|%\(([A-Za-z_][A-Za-z0-9_.\-]*)\)s")
# Linux limits (execve): one argument at most MAX_ARG_STRLEN = 32 pages = 128 KiB with its closing
# NUL; all arguments and the environment together about 2 MB (ARG_MAX, a quarter of the stack
# limit). Parameters may use the 2 MB less 256 KiB left for paths, the rest of `cmd` and the environment.
MAX_ARG_BYTES = 128 * 1024 - 1
MAX_PARAM_BYTES = 2 * 1024 * 1024 - 256 * 1024


def render_param(spec: ParamSpec, value: Any) -> list[str]:
    """A parameter value as command-line arguments."""
    if value is None:
        return []
    if spec.type == "bool" and spec.flag:
        return [spec.flag] if value else []
    if isinstance(value, list):
        return [json.dumps(v) if isinstance(v, dict | list) else str(v) for v in value]
    if isinstance(value, dict):
        return [json.dumps(value, sort_keys=True)]
    return [str(value)]


def argument_problem(args: list[str]) -> str | None:
    """Why these arguments (one parameter's) cannot reach a process, or None."""
    for arg in args:
        if "\0" in arg:
            return "contains a NUL byte, which no command-line argument can hold"
        size = len(arg.encode("utf-8", "surrogateescape"))
        if size > MAX_ARG_BYTES:
            return (f"{size} bytes, more than one command-line argument can hold (128 KiB on Linux);"
                    " pass it as a file input instead")
    return None


def arguments_size(args: list[str]) -> int:
    """Bytes the arguments take in execve's budget (each with its NUL and its pointer)."""
    return sum(len(arg.encode("utf-8", "surrogateescape")) + 1 + 8 for arg in args)


def module_argv(
    module: ModuleSpec, values: Mapping[str, list[str]], *, optional: Set[str], python: str
) -> list[str]:
    """The job's argv: `/bin/sh -c` for a shell template, else the argument-list form."""
    if module.shell:
        return [SHELL, "-c", render_shell(module.template, values, optional=optional, python=python)]
    return build_argv(module.cmd, values, optional=optional, python=python)


def build_argv(
    cmd: tuple[str, ...], values: Mapping[str, list[str]], *, optional: Set[str], python: str
) -> list[str]:
    """Substitute `values` into `cmd`. `optional` names are left-out inputs/outputs."""
    argv: list[str] = []
    literal_option_at: int | None = None  # index in argv of a literal "--opt" just emitted
    for position, token in enumerate(cmd):
        if token in values or token in optional:
            args = values.get(token, [])
            if not args and token in optional and literal_option_at == len(argv) - 1:
                argv.pop()
            argv.extend(args)
            literal_option_at = None
            continue
        if position == 0 and token in ("python", "python3"):
            token = python
        token = _PLACEHOLDER.sub(lambda m: _fill(m, values, optional), token)
        argv.append(token)
        literal_option_at = len(argv) - 1 if token.startswith("-") else None
    return argv


def _fill(match: re.Match[str], values: Mapping[str, list[str]], optional: Set[str]) -> str:
    name = match.group(1) or match.group(2)
    if name in values:
        return " ".join(values[name])
    return "" if name in optional else match.group(0)
