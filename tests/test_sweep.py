"""Tests for mlpipe.core.sweep (and sweep_spec, loop_search): expansion before anything runs."""

from __future__ import annotations

import hashlib
import textwrap

import pytest
from conftest import write_tree

from mlpipe.core.errors import Problem, SpecError
from mlpipe.core.plan import Plan, make_plan
from mlpipe.core.spec import ModuleSpec, parse_module, parse_pipe
from mlpipe.core.sweep import SELECT_MODULE
from mlpipe.core.sweep_points import member_suffix, render_value

FILE = "apps/demo/pipe/p.yaml"
TRAIN = """
input:
  data: {type: text, optional: true}
output:
  model: {type: file}
  scores: {type: metrics, optional: true}
parameters:
  epochs: {type: int, default: 5}
  rate: {type: float, default: 0.1}
  loss: {type: str, default: hinge}
  deep: {type: bool, default: false}
  layers: {type: list, default: [8]}
cmd: python train.py epochs rate loss deep layers data model scores
"""
USE = """
input:
  model: {type: file}
output:
  out: {type: file}
cmd: python use.py model out
"""
MODULES: dict[str, ModuleSpec | None] = {
    "demo/module/train": parse_module(TRAIN, "train.yaml", "demo/module/train"),
    "demo/module/use": parse_module(USE, "use.yaml", "demo/module/use"),
}


def plan(text: str, **kwargs) -> Plan:
    return make_plan(parse_pipe(textwrap.dedent(text), FILE, "demo/pipe/p.yaml"), MODULES, **kwargs)


def problems(text: str, **kwargs) -> list[str]:
    with pytest.raises(SpecError) as info:
        plan(text, **kwargs)
    return [str(p) for p in info.value.problems]


def swept(sweep: str, extra: str = "", outputs: str = "{model: model}", select: str = "") -> str:
    lines = ["jobs:", "  train:", "    module: demo/module/train", f"    output: {outputs}", f"    sweep: {sweep}"]
    if select:
        lines.append(f"    select: {select}")
    return "\n".join([*lines, extra, ""])


USE_MODEL = """  use: {module: demo/module/use, input: {model: model}, output: {out: used}}"""


# --- names and values -----------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "rendered"), [
    (5, "5"), (0.0001, "0.0001"), (1e-05, "1e-05"), (True, "true"), ("log_loss", "log_loss"),
    ("a b/c", "a_b_c"), ([1, 2], "_1_2_"), ({"b": 1, "a": 2}, "__a__2__b__1_"),
    ("x" * 24, "x" * 24), ("x" * 25, hashlib.md5(b"x" * 25).hexdigest()[:8]),
])
def test_values_render_canonically_and_safely(value, rendered) -> None:
    assert render_value(value) == rendered


def test_grid_members_are_the_cartesian_product_in_declared_axis_order() -> None:
    p = plan(swept("{grid: {loss: [hinge, log_loss], epochs: [5, 10]}}"))
    assert list(p.sweeps["train"]) == ["train__loss_hinge__epochs_5", "train__loss_hinge__epochs_10",
                                       "train__loss_log_loss__epochs_5", "train__loss_log_loss__epochs_10"]
    member = p.jobs["train__loss_log_loss__epochs_10"]
    assert member.params["loss"] == "log_loss" and member.params["epochs"] == 10
    assert member.params["rate"] == 0.1  # defaults filled in as for any job
    assert member.sweep is not None and member.sweep.as_json() == {
        "job": "train", "point": {"loss": "log_loss", "epochs": 10}}
    assert member.outputs == {"model": "model__loss_log_loss__epochs_10"}
    assert "train" not in p.jobs  # without select, the sweep job itself is only its members


def test_values_are_typed_by_the_module_never_evaluated() -> None:
    p = plan(swept("{grid: {rate: [1, 0.5], layers: [[4, 4]]}}"))
    assert [p.jobs[m].params["rate"] for m in p.sweeps["train"]] == [1.0, 0.5]
    assert isinstance(p.jobs["train__rate_1.0__layers__4_4_"].params["rate"], float)


def test_points_and_exclude() -> None:
    p = plan(swept("{points: [{epochs: 5}, {epochs: 10, loss: log_loss}]}"))
    assert p.sweeps["train"] == ["train__epochs_5", "train__epochs_10__loss_log_loss"]
    p = plan(swept("{grid: {epochs: [5, 10], loss: [a, b]}, exclude: [{epochs: 10, loss: b}, {loss: a, epochs: 5}]}"))
    assert p.sweeps["train"] == ["train__epochs_5__loss_b", "train__epochs_10__loss_a"]


def test_grid_from_the_command_line_replaces_or_adds_an_axis() -> None:
    p = plan(swept("{grid: {epochs: [5], loss: [a]}}"), grid={"train": {"epochs": ["1", "2"], "deep": ["true"]}})
    assert p.sweeps["train"] == ["train__epochs_1__loss_a__deep_true", "train__epochs_2__loss_a__deep_true"]
    unswept = "jobs:\n  train: {module: demo/module/train, output: {model: model}}\n"
    assert plan(unswept, grid={"train": {"loss": ["x", "y"]}}).sweeps["train"] == ["train__loss_x", "train__loss_y"]


def test_an_unswept_pipe_comes_back_unchanged() -> None:
    p = plan("jobs:\n  train: {module: demo/module/train, output: {model: model}}\n")
    assert list(p.jobs) == ["train"] and p.sweeps == {} and p.jobs["train"].sweep is None


# --- fan-out, collect, select ---------------------------------------------------------------------

def test_readers_of_a_swept_output_fan_out_with_the_same_points_and_naming() -> None:
    p = plan(swept("{grid: {epochs: [5, 10]}}", USE_MODEL + "\n  last: {module: demo/module/use, input:"
                   " {model: used}, output: {out: last}}"))
    assert p.sweeps["use"] == ["use__epochs_5", "use__epochs_10"]
    assert p.sweeps["last"] == ["last__epochs_5", "last__epochs_10"]
    assert [r.value for r in p.jobs["use__epochs_10"].inputs["model"].refs] == ["model__epochs_10"]
    assert p.jobs["last__epochs_10"].upstream == ("use__epochs_10",)
    assert p.jobs["use__epochs_10"].sweep.as_json() == {"job": "use", "point": {"epochs": 10}}
    assert p.jobs["use__epochs_10"].params == {}  # the point labels the member; use has no such parameter


def test_collect_gives_one_job_every_members_output_in_point_order() -> None:
    p = plan(swept("{grid: {epochs: [20, 5, 10]}}", "  all: {module: demo/module/train,"
                   " input: {data: {collect: model}}, output: {model: best}}"))
    binding = p.jobs["all"].inputs["data"]
    assert binding.is_list and [r.value for r in binding.refs] == ["model__epochs_20", "model__epochs_5",
                                                                   "model__epochs_10"]
    assert "all" in p.jobs and "all" not in p.sweeps


def test_select_adds_a_step_that_owns_the_plain_names_so_readers_are_not_expanded() -> None:
    p = plan(swept("{grid: {epochs: [5, 10]}}", USE_MODEL, "{model: model, scores: s}",
                   "{metric: scores.acc, mode: max}"))
    step = p.jobs["train"]
    assert step.module.module_id == SELECT_MODULE and step.select is not None
    assert step.outputs == {"model": "model", "scores": "s"}
    assert [r.value for r in step.inputs["model"].refs] == ["model__epochs_5", "model__epochs_10"]
    assert set(step.upstream) == {"train__epochs_5", "train__epochs_10"}
    assert p.jobs["use"].upstream == ("train",) and "use" not in p.sweeps
    assert step.params == {"metric": "scores.acc", "mode": "max", "first_line": False, "metrics": ["scores"]}


# --- validation: every problem at once, naming file, job and field ---------------------------------

def test_every_sweep_problem_is_reported_at_once() -> None:
    found = problems(swept("{grid: {epoch: [1], rate: [fast, 0.1, 0.1], loss: []}}",
                           select="{metric: acc, mode: max}"))
    assert found == [
        f"{FILE}: job 'train': select.metric: metric 'acc': module 'demo/module/train' has no output of type:"
        " metrics that the job wires",
        f"{FILE}: job 'train': sweep.grid.epoch: unknown axis: module 'demo/module/train' has no parameter 'epoch'",
        f"{FILE}: job 'train': sweep.grid.rate: expected float, got str 'fast'",
        f"{FILE}: job 'train': sweep.grid.rate: value 0.1 is given twice (duplicate point)",
        f"{FILE}: job 'train': sweep.grid.loss: empty axis: give at least one value",
    ]


@pytest.mark.parametrize(("sweep", "message"), [
    ("{points: [{epochs: 5}, {epochs: 5}]}", "sweep.points[1]: duplicate point: same as point 0"),
    ("{points: [{loss: a b}, {loss: a_b}]}", "points 0 and 1 both get the member name 'train__loss_a_b'"),
    ("{grid: {epochs: [1]}, exclude: [{epochs: 1}]}", "sweep.exclude: no point is left to run"),
    ("{grid: {epochs: [1]}, exclude: [{epoch: 1}]}", "unknown axis"),
    ("{grid: {epochs: 5}}", "sweep.grid.epochs: expected a list of values, got 5"),
    ("{grid: {epochs: [1]}, points: [{epochs: 1}]}", "give exactly one of grid: and points:"),
    ("{grid: {epochs: [1]}, matrix: {}}", "unknown key 'matrix'"),
    ("[1, 2]", "expected a mapping with grid: or points:"),
])
def test_bad_sweeps_are_validation_errors(sweep: str, message: str) -> None:
    found = problems(swept(sweep))
    assert len(found) == 1 and found[0].startswith(f"{FILE}: job 'train': ") and message in found[0]


def test_too_many_jobs_is_refused_before_any_point_is_built() -> None:
    found = problems(swept("{grid: {epochs: [1, 2, 3, 4], rate: [1, 2, 3]}}"), max_jobs=10)
    assert found == [f"{FILE}: job 'train': sweep: the grid has 12 points, more than the limit of 10"
                     " (--max-jobs, setting MAX_JOBS)"]
    found = problems(swept("{grid: {epochs: [1, 2, 3]}}", USE_MODEL), max_jobs=5)  # 3 members + 3 readers
    assert found == [f"{FILE}: the sweeps expand the pipe to 6 jobs, more than the limit of 5"
                     " (--max-jobs, setting MAX_JOBS)"]


def test_collect_of_an_unswept_name_and_a_cli_grid_on_points_are_errors() -> None:
    found = problems("""
    jobs:
      train: {module: demo/module/train, output: {model: model}}
      all: {module: demo/module/train, input: {data: {collect: model}}, output: {model: m2}}
    """, grid={"nojob": {"epochs": ["1"]}})
    assert found == ["--grid: unknown job 'nojob'",
                     f"{FILE}: job 'all': input.data: collect: 'model' is not the output of a swept job"]
    found = problems(swept("{points: [{epochs: 1}]}"), grid={"train": {"epochs": ["1"]}})
    assert found == ["--grid: job 'train': sweep: --grid needs a sweep with grid:, this one has points:"]


def test_set_cannot_override_a_swept_parameter_but_applies_to_every_member() -> None:
    found = problems(swept("{grid: {epochs: [1, 2]}}"), overrides={"train": {"epochs": "3"}})
    assert found == ["--set: job 'train': parameters.epochs: parameter 'epochs' is swept: change the sweep"
                     " (or use --grid)"]
    p = plan(swept("{grid: {epochs: [1, 2]}}"), overrides={"train": {"rate": "0.5"}})
    assert [p.jobs[m].params["rate"] for m in p.sweeps["train"]] == [0.5, 0.5]


def test_a_member_cannot_export_to_one_uri_and_select_needs_a_sweep() -> None:
    found = problems(swept("{grid: {epochs: [1, 2]}}", outputs="{model: 's3://bkt/m.pkl'}"))
    assert found == [f"{FILE}: job 'train': output.model: every member would export to s3://bkt/m.pkl: give the"
                     " output a data name, or add select: to export the winner only"]
    found = problems("jobs:\n  t: {module: demo/module/train, output: {model: m, scores: s},"
                     " select: {metric: a, mode: best}}\n")
    assert found == [f"{FILE}: job 't': select.mode: expected min or max, got 'best'"]


# --- loop_search (the original product's sweep) ----------------------------------------------------

LOOP = """
jobs:
  search:
    module: loop_search
    parameters:
      loop_parameters: {e: "[5, 10]", r: "(0.1,)"}
      template:
        module: demo/module/train
        output: {model: model, scores: score}
        parameters: {epochs: "%(e)s", rate: "%(r)s", loss: log_loss}
      search_result_file: scores
"""


def test_loop_search_becomes_a_sweep_with_select_min_on_the_first_line() -> None:
    p = plan(LOOP)
    assert p.sweeps["search"] == ["search__epochs_5__rate_0.1", "search__epochs_10__rate_0.1"]
    assert p.jobs["search__epochs_10__rate_0.1"].params["epochs"] == 10  # typed by the module
    assert p.jobs["search__epochs_10__rate_0.1"].params["loss"] == "log_loss"
    step = p.jobs["search"]
    assert step.outputs == {"model": "model", "scores": "score"}
    assert step.params["mode"] == "min" and step.params["first_line"] is True and step.params["metric"] == "scores"


@pytest.mark.parametrize(("loops", "message"), [
    ('{e: "__import__(\'os\').system(\'touch X\')", r: "[1]"}', "is not a Python literal list"),
    ('{e: "range(3)", r: "[1]"}', "is not a Python literal list"),
    ('{e: "5", r: "[1]"}', "expected a non-empty list"),
    ('{e: "[1]"}', "'%(r)s' is not one of loop_parameters"),
    ('{e: "[1]", r: "[1]", z: "[2]"}', "loop parameter 'z' is used by no template parameter"),
])
def test_bad_loop_search_is_a_validation_error(loops: str, message: str, tmp_path) -> None:
    text = LOOP.replace('{e: "[5, 10]", r: "(0.1,)"}', loops)
    found = problems(text)
    assert any(message in f and "job 'search'" in f for f in found), found
    assert not (tmp_path / "X").exists()


def test_a_swept_job_of_an_unknown_module_is_reported_once() -> None:
    found = problems("""
    jobs:
      train: {module: demo/module/nosuch, output: {model: model}, sweep: {grid: {a: [1]}}}
      use: {module: demo/module/use, input: {model: {collect: model}}, output: {out: used}}
    """)
    assert found == [f"{FILE}: job 'train': module: unknown module 'demo/module/nosuch'"]


def test_problem_locations_are_structured() -> None:
    with pytest.raises(SpecError) as info:
        plan(swept("{grid: {epochs: [x]}}"))
    assert info.value.problems == [Problem(FILE, "expected int, got str 'x'", "train", "sweep.grid.epochs")]


def test_member_suffix_joins_axes_in_order() -> None:
    assert member_suffix((("b", 1), ("a", "x y"))) == "b_1__a_x_y"


def test_a_swept_job_from_an_included_file_is_located_in_that_file(env, ml, toy):
    write_tree(toy, {
        "pipe/main.yaml": """
            includes: [toy/pipe/part.yaml]
            jobs:
              a: {module: toy/module/step, output: {output: o}}
            """,
        "pipe/part.yaml": """
            jobs:
              t:
                module: toy/module/step
                input: {inputs: no_such_data}
                output: {output: t_out}
                sweep: {grid: {tag: [x, y]}}
            """,
    })
    result = ml("runpipe", "toy/pipe/main.yaml", "-n")
    assert result.code == 2
    problems = [line for line in result.err.splitlines() if "no_such_data" in line]
    assert problems and all("part.yaml" in line and "main.yaml" not in line for line in problems), result.err
