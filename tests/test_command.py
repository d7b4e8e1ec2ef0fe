"""Tests for mlpipe.core.command: a module's `cmd` tokens -> the argument list a job runs with."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlpipe.core.command import MAX_ARG_BYTES, argument_problem, build_argv, render_param
from mlpipe.core.spec import ParamSpec

PY = "/opt/venv/bin/python3.11"


def argv(cmd: str, values: dict[str, list[str]], optional: set[str] | None = None) -> list[str]:
    return build_argv(tuple(shlex.split(cmd)), values, optional=optional or set(), python=PY)


@pytest.mark.parametrize(
    ("cmd", "values", "optional", "expected"),
    [
        # names replaced by their values; other tokens kept
        ("python -m app.module.bow --num_epochs num_epochs train_data model",
         {"num_epochs": ["10"], "train_data": ["/c/ab/train"], "model": ["/s/model"]}, set(),
         [PY, "-m", "app.module.bow", "--num_epochs", "10", "/c/ab/train", "/s/model"]),
        # a name only matches a whole token; a token that merely contains it is literal
        ("tool model model_x --model=model", {"model": ["/m"]}, set(), ["tool", "/m", "model_x", "--model=model"]),
        # {name} inside a longer token
        ("tool --out={model} --tag=run-{n}-x {n}{n}", {"model": ["/s/m"], "n": ["3"]}, set(),
         ["tool", "--out=/s/m", "--tag=run-3-x", "33"]),
        # {unknown} is left alone
        ("tool --x={nope}", {}, set(), ["tool", "--x={nope}"]),
        # a list input expands to several arguments, in order
        ("tool --in parts out", {"parts": ["/c/1", "/c/2", "/c/3"], "out": ["/o"]}, set(),
         ["tool", "--in", "/c/1", "/c/2", "/c/3", "/o"]),
        # a bool flag: rendered as the flag when true, nothing when false
        ("tool verbose out", {"verbose": ["--verbose"], "out": ["/o"]}, set(), ["tool", "--verbose", "/o"]),
        ("tool verbose out", {"verbose": [], "out": ["/o"]}, set(), ["tool", "/o"]),
        # a left-out optional input disappears together with the --option just before it
        ("tool --extra extra --out out", {"out": ["/o"]}, {"extra"}, ["tool", "--out", "/o"]),
        ("tool -e extra out", {"out": ["/o"]}, {"extra"}, ["tool", "/o"]),
        # ... but a positional left-out input does not eat the previous value
        ("tool out extra", {"out": ["/o"]}, {"extra"}, ["tool", "/o"]),
        ("tool --out out extra", {"out": ["/o"]}, {"extra"}, ["tool", "--out", "/o"]),
        # left-out names present with an empty value behave the same
        ("tool --note note out", {"note": [], "out": ["/o"]}, {"note"}, ["tool", "/o"]),
        # an optional input that is given keeps its option
        ("tool --extra extra", {"extra": ["/x"]}, set(), ["tool", "--extra", "/x"]),
        # python / python3 as first token become the interpreter MLPipe runs under
        ("python script.py", {}, set(), [PY, "script.py"]),
        ("python3 -m x", {}, set(), [PY, "-m", "x"]),
        ("python2 -m x", {}, set(), ["python2", "-m", "x"]),
        ("env python -m x", {}, set(), ["env", "python", "-m", "x"]),
        ("/usr/bin/python -m x", {}, set(), ["/usr/bin/python", "-m", "x"]),
        # quoting in cmd gives single tokens
        ("tool 'a b' \"c d\"", {}, set(), ["tool", "a b", "c d"]),
    ],
)
def test_build_argv(cmd: str, values: dict[str, list[str]], optional: set[str], expected: list[str]) -> None:
    assert argv(cmd, values, optional) == expected


@pytest.mark.parametrize(
    "evil",
    ["; touch X", "$(touch X)", "`touch X`", "a | touch X", "x && touch X", "> X", "'; touch X; '", "$HOME", "*"],
)
def test_shell_metacharacters_stay_single_literal_arguments(evil: str) -> None:
    assert argv("tool --tag tag input", {"tag": [evil], "input": [evil]}) == ["tool", "--tag", evil, evil]
    assert argv("tool --tag={tag}", {"tag": [evil]}) == ["tool", f"--tag={evil}"]


@pytest.mark.parametrize("evil", ["; touch X", "$(touch X)", "`touch X`", "| touch X"])
def test_metacharacters_never_reach_a_shell(tmp_path: Path, evil: str) -> None:
    """Run the built argv for real: the value arrives verbatim and no file X is created."""
    script = tmp_path / "echo_args.py"
    script.write_text("import json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    built = build_argv(("python", str(script), "tag", "--x={tag}"), {"tag": [evil]}, optional=set(),
                       python=sys.executable)
    done = subprocess.run(built, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [evil, f"--x={evil}"]
    assert not (tmp_path / "X").exists()


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        (ParamSpec("n", "int"), 10, ["10"]),
        (ParamSpec("r", "float"), 0.0001, ["0.0001"]),
        (ParamSpec("s", "str"), "a b", ["a b"]),
        (ParamSpec("s", "str"), "", [""]),
        (ParamSpec("v", "bool", flag="--verbose"), True, ["--verbose"]),
        (ParamSpec("v", "bool", flag="--verbose"), False, []),
        (ParamSpec("v", "bool"), True, ["True"]),
        (ParamSpec("v", "bool"), False, ["False"]),
        (ParamSpec("l", "list"), [1, "a", 2.5], ["1", "a", "2.5"]),
        (ParamSpec("l", "list"), [{"b": 1}, [1, 2]], ['{"b": 1}', "[1, 2]"]),
        (ParamSpec("l", "list"), [], []),
        (ParamSpec("d", "dict"), {"b": 1, "a": [2]}, ['{"a": [2], "b": 1}']),
        (ParamSpec("o", "int", optional=True), None, []),
    ],
)
def test_render_param(spec: ParamSpec, value: Any, expected: list[str]) -> None:
    assert render_param(spec, value) == expected


def test_render_then_build_flag_param() -> None:
    verbose = ParamSpec("verbose", "bool", False, True, flag="--verbose")
    cmd = "python -m m verbose --n n out"
    for value, expected in ((True, [PY, "-m", "m", "--verbose", "--n", "3", "/o"]),
                            (False, [PY, "-m", "m", "--n", "3", "/o"])):
        values = {"verbose": render_param(verbose, value), "n": ["3"], "out": ["/o"]}
        assert argv(cmd, values) == expected


@pytest.mark.parametrize("args, refused", [
    (["x" * MAX_ARG_BYTES], None),
    (["x" * (MAX_ARG_BYTES + 1)], "131072 bytes"),
    (["é" * (MAX_ARG_BYTES // 2)], None),  # 2 bytes each: exactly the limit less one
    (["é" * (MAX_ARG_BYTES // 2 + 1)], "bytes, more than one command-line argument"),
    (["ok", "a\0b"], "NUL byte"),
])
def test_argument_problem_at_the_kernel_limits(args, refused):
    problem = argument_problem(args)
    assert (problem is None) if refused is None else (refused in problem)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MAX_ARG_STRLEN is Linux's limit")
def test_the_limit_is_the_kernels():
    assert subprocess.run(["true", "x" * MAX_ARG_BYTES]).returncode == 0
    with pytest.raises(OSError, match="Argument list too long"):
        subprocess.run(["true", "x" * (MAX_ARG_BYTES + 1)])
