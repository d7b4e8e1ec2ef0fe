"""The web UI's actions over HTTP against a real server: run (with -j and --set), dry run, cancel,
rerun and force one job, each what the command line does, and refused without token and origin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import wait_for

PIPE = "toy/pipe/chain.yaml"
INJECTIONS = ["; touch X", "$(touch X)", "`touch X`", "x && touch X", "| touch X"]


def action(ui_server, pipe: str = PIPE) -> dict:
    return ui_server.get(f"/api/pipes/{pipe}/action").json()


def finished(ui_server, pipe: str = PIPE, timeout: float = 60) -> dict:
    """Wait for the command the page started for `pipe` to end; its status."""
    wait_for(lambda: action(ui_server, pipe)["running"] is False, timeout)
    return action(ui_server, pipe)


def records(ml, pipe: str = PIPE) -> dict[str, dict]:
    """Each job's newest record, by job name, as `ml listjob --json` shows it."""
    found: dict[str, dict] = {}
    for row in json.loads(ml("listjob", "--pipe", pipe, "--json").out):
        found.setdefault(row["job"], row)
    return found


def test_run_executes_the_stale_jobs_as_ml_runpipe(ui_server, toy: Path, env, ml) -> None:
    started = ui_server.send("POST", f"/api/pipes/{PIPE}/run", {"jobs": 2})
    assert started.status == 200, started.body
    assert started.json()["command"] == ["ml", "runpipe", PIPE, "--no-wait", "-j", "2"]
    done = finished(ui_server)
    assert (done["kind"], done["exit_code"]) == ("run", 0) and "3 ran" in done["output"]
    assert env.executed() == ["a", "b", "c"]
    assert {j: r["status"] for j, r in records(ml).items()} == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}
    assert {j["status"] for j in json.loads(ml("runpipe", PIPE, "-n", "--json").out)["jobs"]} == {"up-to-date"}
    assert ui_server.send("POST", f"/api/pipes/{PIPE}/run").status == 200  # nothing stale: nothing executes
    assert finished(ui_server)["exit_code"] == 0 and env.executed() == ["a", "b", "c"]


def test_set_values_are_typed_by_the_module_and_never_reach_a_shell(ui_server, toy: Path, env, ml) -> None:
    for value in INJECTIONS:
        assert ui_server.send("POST", f"/api/pipes/{PIPE}/run", {"set": {"c.tag": value, "c.sleep": 0}}).status == 200
        assert finished(ui_server)["exit_code"] == 0
        record = records(ml)["c"]
        assert Path(record["outputs"]["output"]).read_text().endswith(f"c {value}\n")
    assert sorted(p.name for p in env.home.parent.rglob("X")) == []  # no value ran as a command
    assert env.executed().count("c") == len(INJECTIONS)


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"set": {"b.sleep": "abc"}}, 422, "job 'b': parameters.sleep: expected float"),
    ({"set": {"nope.tag": "x"}}, 422, "unknown job 'nope'"),
    ({"set": {"b.nme": "x"}}, 422, "has no parameter 'nme' (did you mean 'name'?)"),
    ({"set": {"tag": "x"}}, 400, "expected JOB.PARAM"),
    ({"set": ["b.tag=x"]}, 400, "set must be"),
    ({"jobs": 0}, 400, "at least 1"),
    ({"jobs": "2; touch X"}, 400, "whole number"),
    ({"force": "yes"}, 400, "true or false"),
])
def test_a_bad_run_request_is_refused_before_anything_runs(ui_server, toy: Path, env, ml, body, status, says) -> None:
    reply = ui_server.send("POST", f"/api/pipes/{PIPE}/run", body)
    assert reply.status == status and says in reply.json()["error"]
    if status == 422:
        assert reply.json()["problems"][0]["text"] in reply.json()["error"]
    assert action(ui_server)["kind"] is None and env.executed() == [] and records(ml) == {}


def test_dry_run_with_overrides_is_the_clis(ui_server, toy: Path, ml) -> None:
    ml("runpipe", PIPE)
    reply = ui_server.send("POST", f"/api/pipes/{PIPE}/dryrun", {"set": {"b.tag": "new"}})
    assert reply.status == 200
    cli = json.loads(ml("runpipe", PIPE, "-n", "--json", "--set", "b.tag=new").out)
    assert reply.json() == cli
    assert [j["status"] for j in cli["jobs"]] == ["up-to-date", "stale", "stale"]
    assert ui_server.send("POST", f"/api/pipes/{PIPE}/dryrun", {"set": {"b.sleep": "x"}}).status == 422


def slow_run(ui_server, ml, seconds: float = 30) -> None:
    """Start the chain from the page with b sleeping, and wait until b runs."""
    assert ui_server.send("POST", f"/api/pipes/{PIPE}/run", {"set": {"b.sleep": seconds}}).status == 200
    wait_for(lambda: records(ml).get("b", {}).get("status") == "running")


def test_a_second_run_is_refused_while_one_runs_and_the_cli_sees_it(ui_server, toy: Path, env, ml) -> None:
    slow_run(ui_server, ml, 3)
    again = ui_server.send("POST", f"/api/pipes/{PIPE}/run")
    assert again.status == 409 and "already running" in again.json()["error"]
    busy = subprocess.run([sys.executable, "-m", "mlpipe", "runpipe", PIPE, "--no-wait"], env=dict(os.environ),
                          capture_output=True, text=True)
    assert busy.returncode == 75  # the page's run holds the pipe's lock, as any `ml runpipe`
    assert finished(ui_server)["exit_code"] == 0 and env.executed() == ["a", "b", "c"]


def test_a_run_from_a_terminal_is_refused_by_the_page(ui_server, toy: Path, env, ml) -> None:
    cli = subprocess.Popen([sys.executable, "-m", "mlpipe", "runpipe", PIPE, "--set", "a.sleep=3"],
                           env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: records(ml).get("a", {}).get("status") == "running")
        refused = ui_server.send("POST", f"/api/pipes/{PIPE}/run")
        assert refused.status == 409 and f"already running (pid {cli.pid}" in refused.json()["error"]
        job_id = records(ml)["a"]["job_id"]
        assert ui_server.send("POST", f"/api/jobs/{job_id}/rerun").status == 409
    finally:
        assert cli.wait(60) == 0
    assert action(ui_server)["kind"] is None and env.executed() == ["a", "b", "c"]


def test_cancel_stops_the_run_and_its_jobs_are_recorded_canceled(ui_server, toy: Path, env, ml) -> None:
    slow_run(ui_server, ml)
    began = time.monotonic()
    reply = ui_server.send("POST", f"/api/pipes/{PIPE}/cancel")
    assert reply.status == 200, reply.body
    assert [(j["job"], j["status"]) for j in reply.json()["jobs"]] == [("b", "canceled")]
    assert reply.json()["run_pid"] == action(ui_server)["pid"]
    done = finished(ui_server, timeout=20)
    assert done["exit_code"] != 0 and time.monotonic() - began < 20  # not the 30 s of the sleep
    assert {j: r["status"] for j, r in records(ml).items()} == {"a": "succeeded", "b": "canceled"}
    assert env.executed() == ["a", "b"]  # c never started
    nothing = ui_server.send("POST", f"/api/pipes/{PIPE}/cancel")
    assert nothing.status == 409 and "is not running" in nothing.json()["error"]


def test_rerun_and_force_one_job_as_ml_runjob(ui_server, toy: Path, env, ml) -> None:
    ml("runpipe", PIPE)
    env.reset_log()
    a = records(ml)["a"]["job_id"]
    reply = ui_server.send("POST", f"/api/jobs/{a[:8]}/rerun")
    assert reply.status == 200 and reply.json()["command"] == ["ml", "runjob", a]
    done = finished(ui_server)
    assert done["exit_code"] == 0 and "up to date" in done["output"] and env.executed() == []
    assert ui_server.send("POST", f"/api/jobs/{a}/rerun", {"force": True}).json()["kind"] == "force"
    assert finished(ui_server)["exit_code"] == 0 and env.executed() == ["a"]
    assert ui_server.send("POST", "/api/jobs/abcdef0123/rerun").status == 404
    assert ui_server.send("POST", "/api/jobs/../../x/rerun").status == 404
    assert ui_server.send("POST", "/api/jobs/zzzzzz/rerun").status == 400


CHANGES = [
    ("POST", f"/api/pipes/{PIPE}/run", {}),
    ("POST", f"/api/pipes/{PIPE}/cancel", {}),
    ("POST", "/api/pipes/validate", {"pipe": "toy/pipe/new.yaml", "yaml": "jobs: {}"}),
    ("PUT", "/api/pipes/toy/pipe/new.yaml", {"yaml": "jobs:\n  a: {module: toy/module/step, output: {output: o}}\n"}),
]


@pytest.mark.parametrize(("method", "path", "body"), CHANGES)
def test_a_change_needs_the_token_a_same_origin_and_a_json_body(ui_server, toy: Path, env, ml,
                                                                 method, path, body) -> None:
    before = sorted(p.relative_to(toy) for p in toy.rglob("*"))
    for token, origin in ((None, "same"), ("wrong", "same"), (ui_server.token, None),
                          (ui_server.token, "http://evil.example"), (ui_server.token, "null"),
                          (ui_server.token, ui_server.base.replace("127.0.0.1", "localhost"))):
        reply = ui_server.send(method, path, body, token=token, origin=origin)
        assert reply.status == 403, (token, origin)
        assert "token" in reply.json()["error"] and ui_server.token.encode() not in reply.body
    form = ui_server.send(method, path, body, headers={"Content-Type": "text/plain"})  # what a foreign form sends
    assert form.status == 415
    time.sleep(0.3)
    assert env.executed() == [] and action(ui_server)["kind"] is None and records(ml) == {}
    assert sorted(p.relative_to(toy) for p in toy.rglob("*")) == before


def test_a_pipe_id_in_an_action_must_be_known(ui_server, toy: Path) -> None:
    for pipe in ("toy/pipe/nope.yaml", "../../etc/passwd", quote("toy/pipe/../../x.yaml", safe="")):
        assert ui_server.send("POST", f"/api/pipes/{pipe}/run").status == 404
    assert ui_server.send("POST", f"/api/pipes/{PIPE}/explode").status == 404


def test_a_rerun_without_the_token_or_origin_runs_nothing(ui_server, toy: Path, env, ml) -> None:
    ml("runpipe", PIPE)
    env.reset_log()
    a = records(ml)["a"]["job_id"]
    for token, origin in ((None, "same"), (ui_server.token, None), (ui_server.token, "http://evil.example")):
        assert ui_server.send("POST", f"/api/jobs/{a}/rerun", {"force": True}, token=token, origin=origin).status == 403
    time.sleep(0.3)
    assert action(ui_server)["kind"] is None and env.executed() == []


def test_a_missing_local_input_is_refused_before_the_run_starts(ui_server, toy: Path, env) -> None:
    (toy / "data" / "seed.txt").unlink()
    reply = ui_server.send("POST", f"/api/pipes/{PIPE}/run")
    assert reply.status == 422 and "file://toy/data/seed.txt" in reply.json()["error"]
    assert reply.json()["problems"][0]["job"] == "a" and action(ui_server)["kind"] is None
