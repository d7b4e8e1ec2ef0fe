"""`ml graph`: only the graph on stdout, in four formats, states from the dry run and the records."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import TOY_CHAIN, write_tree

FAILING = TOY_CHAIN.replace("parameters: {name: b}", "parameters: {name: b, fail: true}")  # b fails


def graph_json(ml, pipe: str, *flags: str) -> dict:
    done = ml("graph", pipe, "--format", "json", *flags)
    assert done.code == 0, done.err
    return json.loads(done.out)


def dry_run(ml, pipe: str) -> dict[str, dict]:
    done = ml("runpipe", pipe, "-n", "--json")
    assert done.code == 0, done.err
    return {j["name"]: j for j in json.loads(done.out)["jobs"]}


def test_dot_is_the_only_output(ml, toy: Path) -> None:
    done = ml("graph", "toy/pipe/chain.yaml")
    assert done.code == 0 and done.err == ""
    assert done.out.startswith('digraph "toy/pipe/chain.yaml" {') and done.out.rstrip().endswith("}")
    assert '"a" -> "b" [label="a_out"];' in done.out and '"b" -> "c" [label="b_out"];' in done.out


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_dot_output_is_valid_graphviz(ml, toy: Path) -> None:
    done = ml("graph", "toy/pipe/chain.yaml", "--format", "dot", "--status")
    rendered = subprocess.run(["dot", "-Tsvg"], input=done.out, capture_output=True, text=True, check=True)
    assert "<svg" in rendered.stdout


def test_json_shape_and_states_follow_the_dry_run(ml, toy: Path) -> None:
    plain = graph_json(ml, "toy/pipe/chain.yaml")
    assert [n["id"] for n in plain["nodes"]] == ["a", "b", "c"]
    assert plain["edges"] == [{"from": "a", "to": "b", "data": "a_out"}, {"from": "b", "to": "c", "data": "b_out"}]
    assert all(n["status"] is None and n["state"] == "unknown" for n in plain["nodes"])  # no --status: no dry run

    before = graph_json(ml, "toy/pipe/chain.yaml", "--status")
    expected = dry_run(ml, "toy/pipe/chain.yaml")
    for node in before["nodes"]:
        want = expected[node["id"]]
        assert (node["status"], node["action"], node["job_id"]) == (want["status"], want["action"], want["job_id"])
    assert {n["state"] for n in before["nodes"]} == {"stale"}

    assert ml("runpipe", "toy/pipe/chain.yaml").code == 0
    after = graph_json(ml, "toy/pipe/chain.yaml", "--status")
    assert [n["state"] for n in after["nodes"]] == ["up-to-date"] * 3
    assert all(n["last_job_id"] == n["job_id"] for n in after["nodes"])


def test_a_failed_job_is_labelled_failed_and_its_dependants_stale(ml, toy: Path) -> None:
    write_tree(toy, {"pipe/failing.yaml": FAILING})
    assert ml("runpipe", "toy/pipe/failing.yaml").code == 1
    graph = graph_json(ml, "toy/pipe/failing.yaml", "--status")
    expected = dry_run(ml, "toy/pipe/failing.yaml")
    assert {n["id"]: n["state"] for n in graph["nodes"]} == {"a": "up-to-date", "b": "failed", "c": "stale"}
    assert all(n["status"] == expected[n["id"]]["status"] for n in graph["nodes"])
    assert graph["nodes"][1]["reasons"] == expected["b"]["reasons"]


def test_svg_draws_every_job_with_its_state(ml, toy: Path) -> None:
    write_tree(toy, {"pipe/failing.yaml": FAILING})
    ml("runpipe", "toy/pipe/failing.yaml")
    done = ml("graph", "toy/pipe/failing.yaml", "--format", "svg", "--status")
    svg = ET.fromstring(done.out)
    labels = {g.get("data-id"): "".join(g.itertext()) for g in svg.iter("{http://www.w3.org/2000/svg}g")
              if g.get("data-id")}
    assert labels["b"].endswith("\u2717 failed") and "up-to-date" in labels["a"] and "stale" in labels["c"]


def test_mermaid(ml, toy: Path) -> None:
    done = ml("graph", "toy/pipe/chain.yaml", "--format", "mermaid")
    assert done.out.splitlines()[:2] == ["flowchart LR", '  n0["a"]:::st-unknown']


def test_an_unknown_pipe_is_one_line_exit_2(ml, toy: Path) -> None:
    done = ml("graph", "toy/pipe/nope.yaml", "--status")
    assert done.code == 2 and done.out == ""
    assert done.err.startswith("ml graph: unknown pipe 'toy/pipe/nope.yaml'") and len(done.err.splitlines()) == 1


def test_collapse_sweeps_groups_the_members_their_records_name(ml, toy: Path, env) -> None:
    """A sweep member's record says `"sweep": {"job", "point"}` (DESIGN.md "Sweeps"); written here
    into real records of b and c, as a swept job's members would have them."""
    assert ml("runpipe", "toy/pipe/chain.yaml").code == 0
    for record in json.loads(ml("listjob", "--json").out):
        if record["job"] in ("b", "c"):
            path = env.home / "jobs" / record["job_id"] / "job.json"
            data = json.loads(path.read_text())
            path.write_text(json.dumps({**data, "sweep": {"job": "bc", "point": {"name": record["job"]}}}))
    members = graph_json(ml, "toy/pipe/chain.yaml", "--status")
    assert members["nodes"][1]["sweep"] == {"job": "bc", "point": {"name": "b"}}
    collapsed = graph_json(ml, "toy/pipe/chain.yaml", "--status", "--collapse-sweeps")
    assert [(n["id"], n["state"], n["sweep"]) for n in collapsed["nodes"]] == [
        ("a", "up-to-date", None), ("bc", "up-to-date", {"job": "bc", "members": 2})]
    assert collapsed["edges"] == [{"from": "a", "to": "bc", "data": "a_out"}]
    svg = ml("graph", "toy/pipe/chain.yaml", "--format", "svg", "--status", "--collapse-sweeps").out
    assert "\u2713 up-to-date (2 members)" in svg
