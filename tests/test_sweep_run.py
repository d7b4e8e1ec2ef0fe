"""Sweeps end to end: real `ml runpipe`, real doit, real subprocesses, counted executions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Env, write_tree
from sweepapp import add_score_module


@pytest.fixture
def sweep_app(toy: Path) -> Path:
    """The toy app (step: copies inputs, appends its name) plus `score` (metrics)."""
    return add_score_module(toy)


def pipe(app: Path, name: str, text: str) -> str:
    write_tree(app, {f"pipe/{name}.yaml": text})
    return f"toy/pipe/{name}.yaml"


def report(ml, *args: str, code: int = 0) -> dict:
    result = ml("runpipe", *args, "--json")
    assert result.code == code, result.err
    return json.loads(result.out)


def results(data: dict) -> dict[str, str]:
    return {job["name"]: job["result"] for job in data["jobs"]}


def record(env: Env, job_id: str) -> dict:
    return json.loads((env.home / "jobs" / job_id / "job.json").read_text())


FAN = """
jobs:
  prep:
    module: toy/module/step
    input: {inputs: file://toy/data/seed.txt}
    output: {output: prepared}
    parameters: {name: prep}
  train:
    module: toy/module/step
    input: {inputs: prepared}
    output: {output: model}
    parameters: {name: train}
    sweep:
      grid: {tag: [%s]}
  evaluate:
    module: toy/module/step
    input: {inputs: model}
    output: {output: score}
    parameters: {name: evaluate}
  summary:
    module: toy/module/step
    input: {inputs: {collect: score}}
    output: {output: summary}
    parameters: {name: summary}
"""


def test_members_run_once_shared_upstream_once_and_a_rerun_runs_nothing(env, ml, sweep_app):
    p = pipe(sweep_app, "fan", FAN % "z, x, y")
    first = report(ml, p, "-j", "3")
    assert set(results(first).values()) == {"ran"}
    assert sorted(env.executed()) == sorted(["prep", "summary"] + ["train"] * 3 + ["evaluate"] * 3)
    assert set(results(first)) == {"prep", "summary", *(f"{j}__tag_{t}" for j in ("train", "evaluate") for t in "zxy")}
    summary = Path(next(j for j in first["jobs"] if j["name"] == "summary")["outputs"]["output"]).read_text()
    # collect: every member's output, in point order (z, x, y as declared, not sorted)
    assert summary.splitlines() == ["seed", "prep ", "train z", "evaluate ",
                                    "seed", "prep ", "train x", "evaluate ",
                                    "seed", "prep ", "train y", "evaluate ", "summary "]
    member = next(j for j in first["jobs"] if j["name"] == "train__tag_x")
    assert record(env, member["job_id"])["sweep"] == {"job": "train", "point": {"tag": "x"}}
    fanned = next(j for j in first["jobs"] if j["name"] == "evaluate__tag_x")
    assert record(env, fanned["job_id"])["sweep"] == {"job": "evaluate", "point": {"tag": "x"}}

    env.reset_log()
    again = ml("runpipe", p)
    assert again.code == 0 and "nothing to do" in again.err and env.executed() == []

    env.reset_log()
    pipe(sweep_app, "fan", FAN % "z, x, y, w")
    third = report(ml, p)
    assert sorted(env.executed()) == ["evaluate", "summary", "train"]  # exactly the new member (+ collect)
    assert {n for n, r in results(third).items() if r == "ran"} == {"train__tag_w", "evaluate__tag_w", "summary"}


def test_dry_run_lists_every_member_with_its_stable_name(env, ml, sweep_app):
    p = pipe(sweep_app, "fan", FAN % "x, y")
    dry = ml("runpipe", p, "-n", "--json")
    assert dry.code == 0, dry.err
    jobs = json.loads(dry.out)["jobs"]
    names = [j["name"] for j in jobs]
    assert "sweep" not in jobs[names.index("prep")]
    assert {j["name"]: j.get("sweep") for j in jobs}["evaluate__tag_y"] == {"job": "evaluate", "point": {"tag": "y"}}
    assert sorted(names) == sorted(["prep", "train__tag_x", "train__tag_y", "evaluate__tag_x", "evaluate__tag_y",
                                    "summary"])
    table = ml("runpipe", p, "-n")
    assert "train__tag_x" in table.out and table.out.splitlines()[-3:] == [
        "sweep train: 2 members, 2 stale", "sweep evaluate: 2 members, 2 stale", "6 of 6 jobs stale"]
    assert env.executed() == []


def test_grid_from_the_command_line_sweeps_without_editing_the_yaml(env, ml, sweep_app):
    p = pipe(sweep_app, "chain", (sweep_app / "pipe" / "chain.yaml").read_text())
    data = report(ml, p, "--grid", "b.tag=p,q")
    assert results(data) == {"a": "ran", "b__tag_p": "ran", "b__tag_q": "ran", "c__tag_p": "ran", "c__tag_q": "ran"}
    assert sorted(env.executed()) == ["a", "b", "b", "c", "c"]
    env.reset_log()
    assert "nothing to do" in ml("runpipe", p, "--grid", "b.tag=p,q").err and env.executed() == []


def test_bad_sweeps_exit_2_before_anything_runs(env, ml, sweep_app):
    p = pipe(sweep_app, "fan", FAN % "x, y")
    result = ml("runpipe", p, "--grid", "train.tagg=1", "--grid", "prep.sleep=fast")
    assert result.code == 2 and env.executed() == []
    assert result.err.splitlines() == [
        "ml runpipe: --grid: job 'prep': sweep.grid.sleep: expected float, got 'fast'",
        "--grid: job 'train': sweep.grid.tagg: unknown axis: module 'toy/module/step' has no parameter 'tagg'"]
    assert "Traceback" not in result.err
    too_many = ml("runpipe", p, "--max-jobs", "5")
    assert too_many.code == 2 and "expand the pipe to 6 jobs, more than the limit of 5" in too_many.err
    env_limit = ml("runpipe", p, "--grid", "train.tag=" + ",".join(map(str, range(20))), "-n")
    assert env_limit.code == 0
    assert list(env.home.glob("jobs/*/job.json")) == []  # nothing ran, nothing was recorded


SELECT = """
jobs:
  train:
    module: toy/module/score
    output: {model: model, metrics: metrics, result: result}
    sweep:
      grid: {value: [%s], label: [%s]}
    select: {metric: %s, mode: %s}
  use:
    module: toy/module/step
    input: {inputs: model}
    output: {output: used}
    parameters: {name: use}
"""


def selected(data: dict) -> str:
    return Path(next(j for j in data["jobs"] if j["name"] == "use")["outputs"]["output"]).read_text().splitlines()[0]


@pytest.mark.parametrize(("mode", "winner"), [("max", "model 0.9 a"), ("min", "model 0.2 a")])
def test_select_publishes_the_winner_under_the_plain_name(env, ml, sweep_app, mode, winner):
    p = pipe(sweep_app, "sel", SELECT % ("0.5, 0.9, 0.2", "a", "eval.acc", mode))
    data = report(ml, p)
    assert selected(data) == winner
    assert results(data)["use"] == "ran" and "use__value_0.9__label_a" not in results(data)  # not expanded
    step = record(env, next(j["job_id"] for j in data["jobs"] if j["name"] == "train"))
    assert step["select"]["winner"] == f"train__value_{winner.split()[1]}__label_a"
    assert step["select"]["values"] == {"train__value_0.5__label_a": 0.5, "train__value_0.9__label_a": 0.9,
                                        "train__value_0.2__label_a": 0.2}
    assert step["select"]["mode"] == mode and step["status"] == "succeeded"
    table = json.loads(ml("metrics", p, "--json").out)["rows"]
    assert [r["job"] for r in table if r["selected"]] == [step["select"]["winner"]]  # select steps are no rows
    assert "train" not in [r["job"] for r in table]
    rerun = ml("runjob", "--job_id", step["job_id"])
    assert rerun.code == 2 and "a sweep's select step runs again with its pipe: ml runpipe" in rerun.err


def test_select_ties_go_to_the_first_point(env, ml, sweep_app):
    data = report(ml, pipe(sweep_app, "sel", SELECT % ("0.7", "b, a, c", "metrics.eval.acc", "max")))
    assert selected(data) == "model 0.7 b"


def test_downstream_hash_follows_the_winners_content(env, ml, sweep_app):
    p = pipe(sweep_app, "sel", SELECT % ("0.5, 0.9", "a", "eval.acc", "max"))
    first = report(ml, p)
    env.reset_log()
    second = report(ml, pipe(sweep_app, "sel", SELECT % ("0.5, 0.9, 0.1", "a", "eval.acc", "max")))
    assert env.executed() == ["score:0.1:a"]  # a new loser: the winner's bytes are the same, `use` stays
    assert results(second)["train"] == "ran" and results(second)["use"] == "cached"
    assert [j["job_id"] for j in second["jobs"] if j["name"] == "use"] == [
        j["job_id"] for j in first["jobs"] if j["name"] == "use"]
    env.reset_log()
    third = report(ml, pipe(sweep_app, "sel", SELECT % ("0.5, 0.9, 0.1, 0.95", "a", "eval.acc", "max")))
    assert sorted(env.executed()) == ["score:0.95:a", "use"]
    assert selected(third) == "model 0.95 a"


def test_select_with_a_missing_metric_fails_the_step_naming_the_member(env, ml, sweep_app):
    data = report(ml, pipe(sweep_app, "sel", SELECT % ("0.5", "a", "eval.f1", "max")), code=1)
    step = next(j for j in data["jobs"] if j["name"] == "train")
    assert step["result"] == "failed"
    assert "member 'train__value_0.5__label_a' has no metric 'eval.f1'" in step["error"]
    assert results(data)["use"] == "skipped"


def test_unparsable_metrics_fail_the_job_naming_the_output(env, ml, sweep_app):
    data = report(ml, pipe(sweep_app, "sel", SELECT % ("0.5", "a, bad", "eval.acc", "max")), code=1)
    bad = next(j for j in data["jobs"] if j["name"] == "train__value_0.5__label_bad")
    assert bad["result"] == "failed" and "metrics output 'metrics' does not parse" in bad["error"]
    failed = record(env, bad["job_id"])
    assert failed["status"] == "failed" and "metrics output 'metrics' does not parse" in failed["error"]
    cached = {p.stem for p in (env.home / "cache" / "data").rglob("*.json")}
    assert cached and not cached & set(failed["outputs"].values())  # nothing of the failed job entered the cache
    good = next(j for j in data["jobs"] if j["name"] == "train__value_0.5__label_a")
    assert record(env, good["job_id"])["metrics"] == {"eval.acc": 0.5, "label": "a"}


LOOP = """
jobs:
  search:
    module: loop_search
    parameters:
      loop_parameters: {v: "[0.5, 0.25, 0.75]", l: "['x']"}
      template:
        module: toy/module/score
        output: {model: model, metrics: metrics, result: result}
        parameters: {value: "%(v)s", label: "%(l)s"}
      search_result_file: result
  use:
    module: toy/module/step
    input: {inputs: model}
    output: {output: used}
    parameters: {name: use}
"""


def test_loop_search_keeps_the_minimum_first_line(env, ml, sweep_app):
    data = report(ml, pipe(sweep_app, "loop", LOOP))
    assert selected(data) == "model 0.25 x"
    step = record(env, next(j["job_id"] for j in data["jobs"] if j["name"] == "search"))
    assert step["select"]["values"] == {"search__value_0.5__label_x": 0.5, "search__value_0.25__label_x": 0.25,
                                        "search__value_0.75__label_x": 0.75}


def test_loop_search_refuses_code_in_its_lists(env, ml, sweep_app, tmp_path):
    marker = tmp_path / "pwned"
    text = LOOP.replace('"[0.5, 0.25, 0.75]"', f"\"__import__('os').system('touch {marker}')\"")
    result = ml("runpipe", pipe(sweep_app, "loop", text))
    assert result.code == 2 and "parameters.loop_parameters.v" in result.err and "not a Python literal" in result.err
    assert not marker.exists() and env.executed() == []


def test_select_exports_the_winner_only(env, ml, sweep_app, tmp_path):
    target = tmp_path / "exports" / "best.txt"
    text = SELECT % ("0.5, 0.9", "a", "eval.acc", "max")
    text = text.replace("output: {model: model,", f"output: {{model: 'local://{target}',").replace(
        "input: {inputs: model}", "input: {inputs: result}")
    data = report(ml, pipe(sweep_app, "sel", text))
    assert target.read_text() == "model 0.9 a\n"
    assert results(data)["train"] == "ran"


def test_gc_keeps_every_member_and_the_select_step(env, ml, sweep_app):
    p = pipe(sweep_app, "sel", SELECT % ("0.5, 0.9", "a", "eval.acc", "max"))
    report(ml, p)
    gc = ml("gc", "--keep-days", "0")
    assert gc.code == 0 and "removed 0 cache entries" in gc.err + gc.out, gc.err + gc.out
    env.reset_log()
    assert "nothing to do" in ml("runpipe", p).err and env.executed() == []


def test_listjob_lists_the_members_of_a_sweep_together(env, ml, sweep_app):
    p = pipe(sweep_app, "fan", FAN % "a")
    report(ml, p)
    pipe(sweep_app, "fan", FAN % "a, b")  # the new member's records come after the first run's summary
    report(ml, p)
    listed = json.loads(ml("listjob", "--json").out)
    names = [job["job"] for job in listed]
    sweeps = [job["sweep"] for job in listed]
    for sweep in ("train", "evaluate"):
        at = [i for i, s in enumerate(sweeps) if s == sweep]
        assert len(at) == 2 and at[1] == at[0] + 1, names  # adjacent, though run apart
    assert {job["job"]: job["sweep"] for job in listed if not job["job"].startswith(("train", "evaluate"))} == {
        "prep": None, "summary": None}
    table = ml("listjob").out.splitlines()
    assert table[0].split()[-1] == "sweep"
    assert [line.split()[-1] for line in table[2:] if "evaluate__tag_" in line] == ["evaluate", "evaluate"]
