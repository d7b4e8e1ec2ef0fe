"""Shell templates (core/shell.py): which `cmd` needs /bin/sh, and that values never become code."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mlpipe.core.command import build_argv, module_argv
from mlpipe.core.errors import SpecError
from mlpipe.core.shell import render_shell, uses_shell_syntax
from mlpipe.core.spec import parse_module


@pytest.mark.parametrize("template, shell", [
    ("python -m app.module.train --n n data model", False),
    ("python x.py --text %(greeting)s-{who} out", False),     # placeholders are no shell syntax
    ("python x.py '--sep=;' \"a|b\" 'x > y' 'star*'", False),  # quoted operators and globs
    ("unzip zipfile.zip -d unzip_d && mv unzip_d/* unzipfile", True),
    ("a || b", True), ("a; b", True), ("a | b", True), ("a > out", True), ("a < in", True),
    ("cp data/*.csv out", True), ("echo $HOME", True), ('echo "$(date)"', True), ("echo `date`", True),
    ("echo '$HOME'", False),  # single quotes: no expansion
])
def test_shell_syntax_is_detected_outside_quotes(template: str, shell: bool) -> None:
    assert uses_shell_syntax(template) is shell


@pytest.mark.parametrize("template, values, optional, script", [
    ("cat src > out", {"src": ["/c/a b"], "out": ["/s/o"]}, set(), "cat '/c/a b' > /s/o"),
    ("cat parts > out", {"parts": ["/a", "/b"], "out": ["/o"]}, set(), "cat /a /b > /o"),  # a list: several words
    ("mv d/%(file)s out", {"file": ["x y.csv"], "out": ["/o"]}, set(), "mv d/'x y.csv' /o"),
    ('echo "hi {who}!" > out', {"who": ["$(id)"], "out": ["/o"]}, set(), "echo \"hi \"'$(id)'\"!\" > /o"),
    ("echo '{who}' > out", {"who": ["it's"], "out": ["/o"]}, set(), "echo '''it'\"'\"'s''' > /o"),
    ("tool --extra extra in && python3 y.py", {"in": ["/i"]}, {"extra"}, "tool  /i && /py y.py"),
    ("python x.py | python3 y.py > out", {"out": ["/o"]}, set(), "/py x.py | /py y.py > /o"),
    ("python a.py\npython b.py out", {"out": ["/o"]}, set(), "/py a.py\n/py b.py /o"),  # a line of its own
])
def test_render_quotes_every_value(template: str, values: dict, optional: set, script: str) -> None:
    assert render_shell(template, values, optional=optional, python="/py") == script


INJECTIONS = ["; touch {m}", "$(touch {m})", "`touch {m}`", "| touch {m}", "' ; touch {m} '",
              '" && touch {m} "', "\\'; touch {m}", "$(touch {m})'\"`touch {m}`", "x\ntouch {m}\n"]
SHELLS = [sh for sh in ("/bin/sh", "/bin/bash", "/bin/dash") if Path(sh).exists()]


@pytest.mark.parametrize("template", [
    "printf %s value > out",
    "printf %s {value} > out",
    "printf %s \"{value}\" > out",
    "printf %s '%(value)s' > out",
    "printf %s pre-{value}-post > out && true",
    "printf %s value > out # a comment: {value}",
    "(printf %s \"[{value}]\") > out",
    "printf %s value | cat > out",
])
@pytest.mark.parametrize("attack", INJECTIONS)
@pytest.mark.parametrize("shell", SHELLS)
def test_values_reach_the_real_shell_as_one_literal_word(tmp_path: Path, template: str, attack: str,
                                                          shell: str) -> None:
    marker, out = tmp_path / "pwned", tmp_path / "out"
    value = attack.format(m=marker)
    script = render_shell(template, {"value": [value], "out": [str(out)]}, optional=set(), python="py")
    subprocess.run([shell, "-c", script], check=True, cwd=tmp_path)
    assert value in out.read_text()
    assert not marker.exists()


@pytest.mark.parametrize("template", [
    "echo $(cat src) > out", "echo `cat src` > out", 'echo "${src}" > out', "echo $((n + 1)) > out",
    "cat > out <<EOF\n{src}\nEOF",
])
def test_a_name_where_the_shell_reads_text_again_is_refused(template: str) -> None:
    """Inside these the shell parses the text once more: no quoting can hold, so no value goes there."""
    module = ("input: {src: {}}\noutput: {out: {}}\nparameters: {n: {type: int}}\n"
              f"cmd: {json.dumps(template)}\n")
    with pytest.raises(SpecError, match="where the shell would read its value as code"):
        parse_module(module, "m.yaml", "app/module/m")


@pytest.mark.parametrize("template, script", [
    ("echo ${HOME} $(date) \\{src} > out", "echo ${HOME} $(date) \\{src} > /o"),  # other names, an escape
    ("echo hi > out # {src} stays", "echo hi > /o # {src} stays"),
])
def test_nothing_is_substituted_in_expansions_escapes_or_comments(template: str, script: str) -> None:
    assert render_shell(template, {"src": ["/s"], "out": ["/o"]}, optional=set(), python="py") == script


def test_module_shell_key_decides_the_form() -> None:
    auto = parse_module("output: {out: {}}\ncmd: echo a && echo b > out\n", "m.yaml", "app/module/m")
    forced = parse_module("output: {out: {}}\nshell: false\ncmd: echo a && echo b > out\n", "m.yaml", "app/module/m")
    plain = parse_module("output: {out: {}}\nshell: true\ncmd: echo out\n", "m.yaml", "app/module/m")
    values = {"out": ["/o"]}
    assert module_argv(auto, values, optional=set(), python="py") == ["/bin/sh", "-c", "echo a && echo b > /o"]
    assert module_argv(forced, values, optional=set(), python="py") == ["echo", "a", "&&", "echo", "b", ">", "/o"]
    assert module_argv(plain, values, optional=set(), python="py") == ["/bin/sh", "-c", "echo /o"]


def test_percent_placeholder_in_the_argument_list_form() -> None:
    argv = build_argv(("python", "x.py", "--text", "%(greeting)s-{who}", "out"),
                      {"greeting": ["hello"], "who": ["a b"], "out": ["/o"]}, optional=set(), python="py")
    assert argv == ["py", "x.py", "--text", "hello-a b", "/o"]
