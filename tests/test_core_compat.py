"""Pure core of the original product's forms: the module as a job sees it (core/compat.py),
parsing of `shell`, `*_from_job_config` and `includes:` (core/spec.py), planning with them."""

from __future__ import annotations

import doctest
import textwrap

import pytest

from mlpipe.core import compat, shell
from mlpipe.core.errors import SpecError
from mlpipe.core.plan import make_plan
from mlpipe.core.spec import parse_module, parse_pipe

SPLIT = parse_module("""
input: {src: {type: text}}
output: {first: {type: text}, second: {type: text}, log: {type: text, optional: true}}
cmd: split src first second log
""", "apps/a/module/split.yaml", "a/module/split")
BY_JOB = parse_module("""
input_from_job_config: true
output_from_job_config: true
cmd: python -m a.module.pick --config _default_config
""", "apps/a/module/pick.yaml", "a/module/pick")
MODULES = {"a/module/split": SPLIT, "a/module/pick": BY_JOB}


def plan(text: str):
    return make_plan(parse_pipe(textwrap.dedent(text), "apps/a/pipe/p.yaml", "a/pipe/p.yaml"), MODULES)


def test_unwired_outputs_get_implicit_data_names_optional_ones_do_not():
    planned = plan("""
        jobs:
          split: {module: a/module/split, input: {src: s3://my-bucket/k}, output: {first: head}}
        """)
    job = planned.jobs["split"]
    assert job.outputs == {"first": "head", "second": "split.second"}  # `log` is optional: left out
    assert planned.producers["split.second"] == ("split", "second")
    assert job.module.outputs["second"].optional and not job.module.outputs["first"].optional
    assert SPLIT.outputs["second"].optional is False  # the module itself is unchanged


def test_ports_named_by_the_job():
    planned = plan("""
        jobs:
          split: {module: a/module/split, input: {src: s3://my-bucket/k}, output: {first: f, second: s}}
          pick: {module: a/module/pick, input: {model: [f, s], zipfile.zip: s3://my-bucket/z}, output: {model: best}}
        """)
    job = planned.jobs["pick"]
    assert sorted(job.module.inputs) == ["model", "zipfile.zip"] and list(job.module.outputs) == ["model"]
    assert job.upstream == ("split",) and job.module.writes_config


def test_implicit_name_taken_by_another_output_is_a_duplicate():
    with pytest.raises(SpecError, match="data name 'split.second' is already an output of job 'split'"):
        plan("""
            jobs:
              split: {module: a/module/split, input: {src: s3://my-bucket/k}, output: {first: f}}
              again: {module: a/module/split, input: {src: s3://my-bucket/k}, output: {first: g, second: split.second}}
            """)


@pytest.mark.parametrize("text, fragment", [
    ("shell: maybe\ncmd: a && b\n", "shell: expected true or false"),
    ("cmd: echo 'a && b\n", "cannot split command line"),
    ("input_from_job_config: yes please\ncmd: run\n", "input_from_job_config: expected true or false"),
])
def test_bad_module_keys(text: str, fragment: str):
    with pytest.raises(SpecError, match=fragment):
        parse_module(text, "m.yaml", "a/module/m")


def test_pipe_includes_parse():
    pipe = parse_pipe("includes: [a/pipe/common.yaml]\n", "p.yaml", "a/pipe/p.yaml")  # jobs may all be included
    assert pipe.includes == ("a/pipe/common.yaml",) and pipe.jobs == {}
    with pytest.raises(SpecError, match="expected a list of pipe ids"):
        parse_pipe("includes: {a: 1}\njobs: {}\n", "p.yaml", "a/pipe/p.yaml")


@pytest.mark.parametrize("module", [shell, compat])
def test_docstring_examples_hold(module):
    assert doctest.testmod(module).failed == 0
