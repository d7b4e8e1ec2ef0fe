"""The example app's sweep pipe end to end: real scikit-learn, a grid, select, the winner evaluated."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import REPO

pytest.importorskip("sklearn")

PIPE = "text_classification/pipe/bow_model_sweep.yaml"


def test_sweep_pipe_selects_the_most_accurate_model_and_evaluates_it(env, ml, monkeypatch):
    monkeypatch.setenv("MLPIPE_APPS", str(REPO / "apps"))
    first = ml("runpipe", PIPE, "--json", "-j", "2")
    assert first.code == 0, first.err
    jobs = {j["name"]: j for j in json.loads(first.out)["jobs"]}
    members = [n for n in jobs if n.startswith("bow_model__")]
    assert len(members) == 6 and "bow_model__num_epochs_20__loss_log_loss" in members
    step = json.loads((env.home / "jobs" / jobs["bow_model"]["job_id"] / "job.json").read_text())["select"]
    assert set(step["values"]) == set(members)
    assert step["values"][step["winner"]] == max(step["values"].values())
    # ties go to the first point: no earlier member has the winning accuracy
    assert all(step["values"][m] < step["values"][step["winner"]] for m in members[:members.index(step["winner"])])

    def md5(path: str) -> str:
        return hashlib.md5(Path(path).read_bytes()).hexdigest()

    assert md5(jobs["bow_model"]["outputs"]["model"]) == md5(jobs[step["winner"]]["outputs"]["model"])
    evaluate = json.loads((env.home / "jobs" / jobs["evaluate"]["job_id"] / "job.json").read_text())
    assert evaluate["metrics"]["accuracy"] > 0.5 and "per_class.positive" in evaluate["metrics"]

    table = json.loads(ml("metrics", PIPE, "--sweep", "bow_model", "--sort-by", "accuracy", "--desc",
                          "--json").out)
    assert table["rows"][0]["metrics"]["accuracy"] == step["values"][step["winner"]]
    assert {r["params"]["loss"] for r in table["rows"]} == {"hinge", "log_loss"}

    again = ml("runpipe", PIPE)
    assert again.code == 0 and "nothing to do" in again.err
