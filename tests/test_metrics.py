"""Metrics outputs and `ml metrics` / `ml listexp`: real runs, real records, a real S3 mirror."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from conftest import write_tree
from sweepapp import add_score_module

from mlpipe.core.metrics import MetricsError, lookup, merge_outputs, parse_metrics

# --- parsing (pure) -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "flat"), [
    ('{"acc": 0.9, "per_class": {"neg": 0.8, "pos": {"f1": 1}}}',
     {"acc": 0.9, "per_class.neg": 0.8, "per_class.pos.f1": 1}),
    ("acc: 0.5\nok: true\nname: run a\n", {"acc": 0.5, "ok": True, "name": "run a"}),
    ("{}", {}),
])
def test_metrics_flatten_json_and_yaml(text: str, flat: dict) -> None:
    assert parse_metrics(text.encode()) == flat


@pytest.mark.parametrize(("data", "message"), [
    (b"[1, 2]", "expected a JSON or YAML object, got list"),
    (b'{"a": [1]}', "a: expected a number, a string or a boolean, got list"),
    (b'{"a": {"b": null}}', "a.b: expected a number"),
    (b'{"a": NaN}', "a: nan is not a finite number"),
    (b"{not: [json", "neither JSON nor YAML"),
    (b"\xff\xfe", "not UTF-8"),
    (b'{"a": "' + b"x" * (1 << 20) + b'"}', "more than the limit of 1,048,576"),
])
def test_bad_metrics_say_why(data: bytes, message: str) -> None:
    with pytest.raises(MetricsError, match=message.replace("[", r"\[").replace(".", r"\.")):
        parse_metrics(data)


def test_several_metrics_outputs_are_prefixed_and_lookup_accepts_the_output_name() -> None:
    assert merge_outputs({"report": {"acc": 1}}) == {"acc": 1}
    assert merge_outputs({"a": {"x": 1}, "b": {"x": 2}}) == {"a.x": 1, "b.x": 2}
    assert lookup({"acc": 1}, "report.acc", ["report"]) == 1
    assert lookup({"acc": 1}, "acc", ["report"]) == 1 and lookup({"acc": 1}, "f1", ["report"]) is None


# --- the table over real records ----------------------------------------------------------------

SWEEP = """
jobs:
  train:
    module: toy/module/score
    output: {model: model, metrics: metrics, result: result}
    parameters: {label: base}
    sweep:
      grid: {value: [%s]}
  use:
    module: toy/module/step
    input: {inputs: model}
    output: {output: used}
    parameters: {name: use}
"""


@pytest.fixture
def app(toy: Path) -> Path:
    return add_score_module(toy)


def run(ml, app: Path, values: str = "0.5, 0.9, 0.2") -> str:
    write_tree(app, {"pipe/exp.yaml": SWEEP % values})
    result = ml("runpipe", "toy/pipe/exp.yaml")
    assert result.code == 0, result.err
    return "toy/pipe/exp.yaml"


def metrics_json(ml, *args: str) -> dict:
    result = ml("metrics", *args, "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_metrics_json_has_params_and_metrics_side_by_side(env, ml, app):
    pipe = run(ml, app)
    data = metrics_json(ml, pipe)
    assert data["pipe"] == pipe
    assert data["columns"] == {"params": ["label", "value", "constant", "fail", "name", "sleep", "tag"],
                               "metrics": ["eval.acc", "label"]}
    rows = {r["job"]: r for r in data["rows"]}
    assert set(rows) == {"train__value_0.5", "train__value_0.9", "train__value_0.2", "use__value_0.5",
                         "use__value_0.9", "use__value_0.2"}
    assert rows["train__value_0.9"]["params"] == {"value": 0.9, "label": "base"}
    assert rows["train__value_0.9"]["metrics"] == {"eval.acc": 0.9, "label": "base"}
    assert rows["use__value_0.9"]["metrics"] == {}  # a job without metrics: empty, not an error
    assert set(rows["use__value_0.9"]) >= {"job", "job_id", "status", "started", "params", "metrics"}
    assert rows["train__value_0.9"]["status"] == "succeeded" and len(rows["train__value_0.9"]["job_id"]) == 32


def test_sort_filter_and_only_changed(env, ml, app):
    pipe = run(ml, app)
    rows = metrics_json(ml, pipe, "--sweep", "train", "--sort-by", "eval.acc", "--desc")["rows"]
    assert [r["job"] for r in rows] == ["train__value_0.9", "train__value_0.5", "train__value_0.2"]
    ascending = metrics_json(ml, pipe, "--sort-by", "eval.acc")["rows"]
    assert [r["job"] for r in ascending][:3] == ["train__value_0.2", "train__value_0.5", "train__value_0.9"]
    assert all(r["metrics"] == {} for r in ascending[3:])  # missing values sort last
    changed = metrics_json(ml, pipe, "--sweep", "train", "--only-changed")
    assert changed["columns"] == {"params": ["value"], "metrics": ["eval.acc"]}
    bad = ml("metrics", pipe, "--sort-by", "acc")
    assert bad.code == 2 and "--sort-by 'acc': no such parameter or metric" in bad.err


def test_table_csv_markdown_and_listexp(env, ml, app):
    pipe = run(ml, app, "0.5, 0.9")
    table = ml("metrics", pipe, "--sweep", "train", "--only-changed")
    assert table.code == 0
    assert table.out.splitlines()[0].split() == ["job", "value", "eval.acc"]
    assert table.out.splitlines()[2].split() == ["train__value_0.5", "0.5", "0.5"]
    rows = list(csv.DictReader(io.StringIO(ml("metrics", pipe, "--csv").out)))
    assert {r["job"]: r["eval.acc"] for r in rows} == {"train__value_0.5": "0.5", "train__value_0.9": "0.9",
                                                       "use__value_0.5": "", "use__value_0.9": ""}
    md = ml("metrics", pipe, "--md", "--sweep", "train", "--only-changed").out.splitlines()
    assert md[:2] == ["| job | value | eval.acc |", "| --- | --- | --- |"]
    assert ml("listexp", pipe).out == ml("metrics", pipe).out
    everything = ml("metrics")  # no pipe: every pipe's latest records
    assert everything.code == 0 and "train__value_0.9" in everything.out


def test_history_after_a_parameter_change_and_revert(env, ml, app):
    one = ("jobs:\n  train: {module: toy/module/score, output: {model: m, metrics: s, result: r},"
           " parameters: {value: %s}}\n")
    for value in ("0.3", "0.7", "0.3"):  # the revert is a cache hit: no new record
        write_tree(app, {"pipe/one.yaml": one % value})
        assert ml("runpipe", "toy/pipe/one.yaml").code == 0
    latest = metrics_json(ml, "toy/pipe/one.yaml")["rows"]
    assert [(r["params"]["value"], r["metrics"]["eval.acc"]) for r in latest] == [(0.3, 0.3)]  # the pipe as it is
    history = metrics_json(ml, "toy/pipe/one.yaml", "--history")["rows"]
    assert [r["params"]["value"] for r in history] == [0.3, 0.7]
    a, b = history[0]["job_id"], history[1]["job_id"]
    diff = ml("metrics", "diff", a[:8], b, "--json")
    assert diff.code == 0, diff.err
    changes = {(c["kind"], c["name"]): c for c in json.loads(diff.out)["changes"]}
    assert set(changes) == {("param", "value"), ("metric", "eval.acc")}
    assert changes[("metric", "eval.acc")]["delta"] == pytest.approx(0.4)
    text = ml("metrics", "diff", a, b).out
    assert "+0.4" in text and "eval.acc" in text
    assert ml("metrics", "diff", "nosuch").code == 2


def test_a_failed_job_and_a_failed_metrics_output_are_not_rows(env, ml, app):
    write_tree(app, {"pipe/bad.yaml": SWEEP.replace("label: base", "label: bad") % "0.5"})
    result = ml("runpipe", "toy/pipe/bad.yaml")
    assert result.code == 1 and "metrics output 'metrics' does not parse" in result.err
    assert metrics_json(ml, "toy/pipe/bad.yaml")["rows"] == []
    assert ml("metrics", "toy/pipe/bad.yaml").out.startswith("(no successful job records")


def test_a_second_home_sees_the_same_metrics_through_the_mirror(env, ml, app, s3_env, s3_bucket, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("MLPIPE_S3_MIRROR", f"s3://{s3_bucket}/team")
    pipe = run(ml, app)
    first = metrics_json(ml, pipe)
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "home_b"))
    env.reset_log()
    pulled = ml("runpipe", pipe)
    assert pulled.code == 0 and env.executed() == []  # nothing ran in home B: no local records at all
    assert not list((tmp_path / "home_b").glob("jobs/*/job.json"))
    second = metrics_json(ml, pipe)
    assert second == first
    monkeypatch.setenv("MLPIPE_S3_MIRROR", "")  # fetched once, kept: no mirror needed to see them again
    assert metrics_json(ml, pipe) == first


@pytest.mark.parametrize("rows", [
    [["train__a_1", "0.5", ""], ["t", "10", "x"]],
    [["naïve", "1", "2"]],  # not ASCII: tabulate draws it
])
def test_text_table_matches_tabulate(rows: list[list[str]]) -> None:
    from tabulate import tabulate

    from mlpipe.cli.report import render_text_table

    headers = ["job", "value", "eval.acc"]
    assert render_text_table(rows, headers) == tabulate(rows, headers=headers, disable_numparse=True)
