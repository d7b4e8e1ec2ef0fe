"""The example app end to end, as `make demo` runs it: real scikit-learn, real doit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO

pytest.importorskip("sklearn")


def test_demo_pipe_trains_evaluates_and_is_reused_across_pipes(env, ml, monkeypatch):
    monkeypatch.setenv("MLPIPE_APPS", str(REPO / "apps"))
    first = ml("runpipe", "text_classification/pipe/bow_model.yaml", "--json", "-j", "2")
    assert first.code == 0, first.err
    jobs = {j["name"]: j for j in json.loads(first.out)["jobs"]}
    assert {j["result"] for j in jobs.values()} == {"ran"}
    report = json.loads(Path(jobs["evaluate"]["outputs"]["report"]).read_text())
    assert report["accuracy"] > 0.6  # three balanced classes: chance is 0.33
    assert set(report["per_class"]) == {"negative", "neutral", "positive"}

    again = ml("runpipe", "text_classification/pipe/bow_model.yaml")
    assert again.code == 0 and "nothing to do" in again.err

    tuned = json.loads(ml("runpipe", "text_classification/pipe/bow_model_tuned.yaml", "--json").out)
    results = {j["name"]: j["result"] for j in tuned["jobs"]}
    assert results["preprocess"] == "cached" and results["split"] == "cached"
    assert {results[name] for name in results if name not in ("preprocess", "split")} == {"ran"}
