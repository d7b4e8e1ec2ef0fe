"""Tests for mlpipe.core.plan: make_plan orders jobs and reports every validation problem at once."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import pytest

from mlpipe.core.errors import Problem, SpecError
from mlpipe.core.plan import Plan, make_plan
from mlpipe.core.spec import ModuleSpec, parse_module, parse_pipe

PIPE_FILE = "apps/demo/pipe/p.yaml"

STEP = """
input:
  src: {type: text}
  extra: {type: text, optional: true}
output:
  out: {type: text}
  log: {type: text, optional: true}
parameters:
  n: {type: int, default: 5}
  rate: {type: float}
  verbose: {type: bool, default: false, flag: --verbose}
  mode: {type: str, default: fast, choices: [fast, slow]}
  layers: {type: list, default: [8]}
  note: {type: str, optional: true}
cmd: python step.py --n n --rate rate verbose src extra out log
"""

MODULES: dict[str, ModuleSpec | None] = {
    "demo/module/step": parse_module(STEP, "apps/demo/module/step.yaml", "demo/module/step"),
}


def step(name: str, src: str, out: str, extra: str = "", params: str = "rate: 1") -> str:
    """One job line of a pipe YAML using demo/module/step."""
    inputs = f"src: {src}" + (f", extra: {extra}" if extra else "")
    return (f"  {name}: {{module: demo/module/step, input: {{{inputs}}}, output: {{out: {out}}},"
            f" parameters: {{{params}}}}}\n")


def plan(text: str, overrides: Mapping[str, Mapping[str, str]] | None = None,
         modules: Mapping[str, ModuleSpec | None] = MODULES, module_problems: list[Problem] | None = None) -> Plan:
    spec = parse_pipe(textwrap.dedent(text), PIPE_FILE, "demo/pipe/p.yaml")
    return make_plan(spec, modules, overrides, module_problems)


def problems(text: str, overrides: Mapping[str, Mapping[str, str]] | None = None) -> list[Problem]:
    with pytest.raises(SpecError) as info:
        plan(text, overrides)
    assert str(info.value) == "\n".join(str(p) for p in info.value.problems)
    return info.value.problems


# --- order ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("jobs", "upstream"),
    [
        # written in reverse dependency order
        (step("c", "b_out", "c_out") + step("b", "a_out", "b_out") + step("a", "file://demo/data/x", "a_out"),
         {"a": (), "b": ("a",), "c": ("b",)}),
        # a diamond: d needs b and c, both need a
        (step("d", "b_out", "d_out", extra="[c_out, b_out]") + step("b", "a_out", "b_out")
         + step("c", "a_out", "c_out") + step("a", "s3://my-bucket/raw.tsv", "a_out"),
         {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")}),
        # independent jobs keep their order
        (step("x", "file://demo/data/x", "x_out") + step("y", "local:///tmp/y", "y_out"),
         {"x": (), "y": ()}),
    ],
    ids=["chain", "diamond", "independent"],
)
def test_jobs_come_in_dependency_order(jobs: str, upstream: dict[str, tuple[str, ...]]) -> None:
    planned = plan("jobs:\n" + jobs)
    order = list(planned.jobs)
    assert sorted(order) == sorted(upstream)
    for name, job in planned.jobs.items():
        assert job.upstream == upstream[name]
        assert all(order.index(up) < order.index(name) for up in job.upstream)


def test_plan_links_data_names_and_collects_uris() -> None:
    planned = plan("jobs:\n" + step("a", "file://demo/data/x", "a_out", extra="[https://example.com/e.csv]")
                   + step("b", "a_out", "b_out"))
    assert planned.pipe_id == "demo/pipe/p.yaml"
    assert planned.producers == {"a_out": ("a", "out"), "b_out": ("b", "out")}
    assert sorted(planned.uris) == ["file://demo/data/x", "https://example.com/e.csv"]
    assert planned.uris["file://demo/data/x"].root == "demo"
    assert planned.downstream({"a"}) == {"a", "b"}
    assert planned.downstream({"b"}) == {"b"}


def test_downstream_is_transitive() -> None:
    planned = plan("jobs:\n" + step("a", "file://demo/data/x", "a_out") + step("b", "a_out", "b_out")
                   + step("c", "b_out", "c_out") + step("z", "file://demo/data/z", "z_out"))
    assert planned.downstream({"a"}) == {"a", "b", "c"}


def test_defaults_are_filled_in_and_values_typed() -> None:
    planned = plan("jobs:\n" + step("a", "file://demo/data/x", "a_out", params="rate: 2, mode: slow"))
    assert planned.jobs["a"].params == {"rate": 2.0, "mode": "slow", "n": 5, "verbose": False, "layers": [8]}
    assert isinstance(planned.jobs["a"].params["rate"], float)


# --- --set overrides ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"n": "7"}, {"n": 7}),
        ({"rate": "0.5"}, {"rate": 0.5}),
        ({"rate": "3"}, {"rate": 3.0}),
        ({"verbose": "true"}, {"verbose": True}),
        ({"verbose": "no"}, {"verbose": False}),
        ({"mode": "slow"}, {"mode": "slow"}),
        ({"layers": "[16, 32]"}, {"layers": [16, 32]}),
        ({"note": "42"}, {"note": "42"}),
        ({"n": "1", "rate": "9"}, {"n": 1, "rate": 9.0}),
    ],
)
def test_set_overrides_are_typed_by_the_module(overrides: dict[str, str], expected: dict) -> None:
    planned = plan("jobs:\n" + step("a", "file://demo/data/x", "a_out", params="rate: 1, n: 2"), {"a": overrides})
    params = planned.jobs["a"].params
    assert {name: params[name] for name in expected} == expected
    assert all(type(params[name]) is type(value) for name, value in expected.items())


@pytest.mark.parametrize(
    ("overrides", "job", "field", "fragment"),
    [
        ({"zz": {"n": "1"}}, None, None, "unknown job 'zz'"),
        ({"aa": {"n": "1"}}, None, None, "unknown job 'aa' (did you mean 'a'?)"),
        ({"a": {"nn": "1"}}, "a", "parameters.nn",
         "module 'demo/module/step' has no parameter 'nn' (did you mean 'n'?)"),
        ({"a": {"n": "ten"}}, "a", "parameters.n", "expected int, got 'ten'"),
        ({"a": {"n": "1.5"}}, "a", "parameters.n", "expected int, got '1.5'"),
        ({"a": {"verbose": "maybe"}}, "a", "parameters.verbose", "expected bool, got 'maybe'"),
        ({"a": {"mode": "medium"}}, "a", "parameters.mode", "'medium' is not one of ['fast', 'slow']"),
        ({"a": {"layers": "8"}}, "a", "parameters.layers", "expected list"),
    ],
)
def test_bad_set_overrides(overrides: dict, job: str | None, field: str | None, fragment: str) -> None:
    [problem] = problems("jobs:\n" + step("a", "file://demo/data/x", "a_out"), overrides)
    assert (problem.file, problem.job, problem.field) == ("--set", job, field)
    assert fragment in problem.message


# --- validation errors -------------------------------------------------------------------------

OK_A = step("a", "file://demo/data/x", "a_out")


@pytest.mark.parametrize(
    ("jobs", "job", "field", "fragment"),
    [
        # unknown module
        ("  a: {module: demo/module/nope, input: {src: s3://my-bucket/x}, output: {out: a_out}}\n",
         "a", "module", "unknown module 'demo/module/nope'"),
        # missing required input
        ("  a: {module: demo/module/step, output: {out: a_out}, parameters: {rate: 1}}\n",
         "a", "input.src", "required input 'src' of 'demo/module/step' is not given"),
        # unknown names: input, output, parameter, data name
        ("  a: {module: demo/module/step, input: {src: s3://my-bucket/x, srcs: s3://my-bucket/y}, output: {out: a_out},"
         " parameters: {rate: 1}}\n", "a", "input.srcs",
         "module 'demo/module/step' has no input 'srcs' (did you mean 'src'?)"),
        ("  a: {module: demo/module/step, input: {src: s3://my-bucket/x}, output: {out: a_out, logs: l},"
         " parameters: {rate: 1}}\n", "a", "output.logs", "has no output 'logs' (did you mean 'log'?)"),
        (step("a", "file://demo/data/x", "a_out", params="rate: 1, mdoe: slow"),
         "a", "parameters.mdoe", "has no parameter 'mdoe' (did you mean 'mode'?)"),
        (OK_A + step("b", "a_outt", "b_out"),
         "b", "input.src", "unknown data name 'a_outt' (did you mean 'a_out'?)"),
        (OK_A + step("b", "a_out", "b_out", extra="[a_out, nowhere]"),
         "b", "input.extra", "unknown data name 'nowhere'"),
        # type errors
        (step("a", "file://demo/data/x", "a_out", params="rate: fast"),
         "a", "parameters.rate", "expected float, got str 'fast'"),
        (step("a", "file://demo/data/x", "a_out", params="rate: 1, n: '5'"),
         "a", "parameters.n", "expected int, got str '5'"),
        (step("a", "file://demo/data/x", "a_out", params="rate: 1, verbose: 1"),
         "a", "parameters.verbose", "expected bool, got int 1"),
        (step("a", "file://demo/data/x", "a_out", params="rate: 1, mode: medium"),
         "a", "parameters.mode", "'medium' is not one of ['fast', 'slow']"),
        (step("a", "file://demo/data/x", "a_out", params="rate: 1, layers: 8"),
         "a", "parameters.layers", "expected list, got int 8"),
        # a required parameter without a default
        (step("a", "file://demo/data/x", "a_out", params="n: 1"),
         "a", "parameters.rate", "parameter 'rate' has no default and is not given"),
        # duplicate data names
        (OK_A + step("b", "file://demo/data/y", "a_out"),
         "b", "output.out", "data name 'a_out' is already an output of job 'a'"),
        # bad input URIs
        (step("a", "file://demo/../../etc/passwd", "a_out"), "a", "input.src", "'..' is not allowed"),
        (step("a", "ftp://host/x", "a_out"), "a", "input.src", "unknown scheme 'ftp'"),
        (step("a", "s3://Bad_Bucket/x", "a_out"), "a", "input.src", "not a valid S3 bucket name"),
        # exports: only s3:// and local://
        (step("a", "file://demo/data/x", "http://example.com/out.pkl"),
         "a", "output.out", "outputs can be exported to s3:// and local:// only"),
        (step("a", "file://demo/data/x", "https://example.com/out.pkl"),
         "a", "output.out", "outputs can be exported to s3:// and local:// only"),
        (step("a", "file://demo/data/x", "file://demo/data/out.pkl"),
         "a", "output.out", "outputs can be exported to s3:// and local:// only"),
        (step("a", "file://demo/data/x", "git+https://h/r.git@main#out"),
         "a", "output.out", "outputs can be exported to s3:// and local:// only"),
        (step("a", "file://demo/data/x", "s3://my-bucket/../x"), "a", "output.out", "'..' is not allowed"),
    ],
)
def test_validation_errors_name_job_and_field(jobs: str, job: str, field: str, fragment: str) -> None:
    found = problems("jobs:\n" + jobs)
    assert [(p.file, p.job, p.field) for p in found] == [(PIPE_FILE, job, field)], found
    assert fragment in found[0].message
    assert str(found[0]).startswith(f"{PIPE_FILE}: job '{job}': {field}: ")


@pytest.mark.parametrize(
    ("jobs", "cycle"),
    [
        (step("a", "a_out", "a_out"), ["a"]),
        (step("a", "b_out", "a_out") + step("b", "a_out", "b_out"), ["a", "b"]),
        (step("a", "c_out", "a_out") + step("b", "a_out", "b_out") + step("c", "b_out", "c_out")
         + step("d", "c_out", "d_out"), ["a", "b", "c"]),
    ],
    ids=["self", "two", "three-plus-tail"],
)
def test_cycle_names_the_jobs_in_it(jobs: str, cycle: list[str]) -> None:
    [problem] = problems("jobs:\n" + jobs)
    assert (problem.file, problem.job, problem.field) == (PIPE_FILE, None, "jobs")
    assert problem.message.startswith("the jobs form a cycle: ")
    names = problem.message.removeprefix("the jobs form a cycle: ").split(" -> ")
    assert names[0] == names[-1] and sorted(set(names)) == cycle
    assert "d" not in names


@pytest.mark.parametrize(
    "exported",
    ["s3://my-bucket/models/bow.pkl", "s3://my-bucket/models/", "local:///tmp/export/bow.pkl", "local://home/u/m.pkl"],
)
def test_exports_to_s3_and_local_are_accepted(exported: str) -> None:
    planned = plan("jobs:\n" + step("a", "file://demo/data/x", exported))
    assert planned.jobs["a"].exports() == {"out": exported}
    assert exported not in planned.uris and exported not in planned.producers


def test_all_problems_are_reported_at_once() -> None:
    text = "jobs:\n" + (
        step("a", "file://demo/data/x", "a_out")
        + step("b", "file://demo/../x", "a_out")
        + "  c: {module: demo/module/gone, input: {src: a_out}, output: {out: c_out}}\n"
        + step("d", "missing_name", "d_out", params="rate: slow")
        + step("e", "file://demo/data/x", "http://h/e")
    )
    found = problems(text, {"a": {"n": "x"}, "ghost": {"n": "1"}})
    assert sorted((p.job or "", p.field or "") for p in found) == [
        ("", ""),                       # --set ghost.n: unknown job
        ("a", "parameters.n"),          # --set a.n=x
        ("b", "input.src"),             # '..'
        ("b", "output.out"),            # duplicate data name
        ("c", "module"),                # unknown module
        ("d", "input.src"),             # unknown data name
        ("d", "parameters.rate"),       # type error
        ("e", "output.out"),            # http export
    ]


def test_module_problems_are_reported_with_the_pipe_problems() -> None:
    loading = Problem("apps/demo/module/broken.yaml", "invalid YAML: line 1, column 1: x")
    text = ("jobs:\n  a: {module: demo/module/broken, input: {src: s3://my-bucket/x}, output: {out: a_out}}\n"
            + step("b", "a_out", "b_out", params="n: 1"))
    with pytest.raises(SpecError) as info:
        plan(text, modules={**MODULES, "demo/module/broken": None}, module_problems=[loading])
    assert info.value.problems == [
        loading,
        Problem(PIPE_FILE, "parameter 'rate' has no default and is not given", "b", "parameters.rate"),
    ]
