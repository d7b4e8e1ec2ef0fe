"""`ml ui` over HTTP: the session token, headers, id validation, escaping, and the API's shapes
(the same as the CLI's `--json`), against a real server on a free port."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from conftest import write_tree
from uifixture import TOKEN

from mlpipe.core.errors import UsageError

PIPE = "toy/pipe/chain.yaml"
NASTY = '<script>alert("x")</script> & </pre>'
SHOUT = f'''
import sys
print("to stdout")
print({NASTY!r}, file=sys.stderr)
sys.exit(1)
'''
SHOUT_APP = {
    "module/shout.py": SHOUT,
    "module/shout.yaml": "output:\n  out: {type: text}\ncmd: python -m toy.module.shout out\n",
    "pipe/shout.yaml": "jobs:\n  shout:\n    module: toy/module/shout\n    output: {out: loud}\n",
}


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/api/pipes", f"/api/pipes/{PIPE}/plan", "/nope"])
def test_every_request_needs_the_token(ui_server, toy: Path, path: str) -> None:
    for token in (None, "wrong", TOKEN[:-1]):
        reply = ui_server.get(path, token=token)
        assert reply.status == 403, (path, token)
        assert b"token" in reply.body and TOKEN.encode() not in reply.body
    assert ui_server.get(path).status == (404 if path == "/nope" else 200)


def test_the_printed_url_trades_the_token_for_a_cookie(ui_server, toy: Path) -> None:
    reply = ui_server.get(f"/?token={TOKEN}", token=None)
    assert reply.status == 303 and reply.headers["Location"] == "/"
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    name_value = cookie.split(";")[0]
    assert ui_server.get("/api/pipes", token=None, headers={"Cookie": name_value}).status == 200
    assert ui_server.get("/api/pipes", token=None, headers={"Cookie": name_value[:-1]}).status == 403


def test_every_answer_forbids_outside_content(ui_server, toy: Path) -> None:
    for path, token in (("/", TOKEN), ("/api/pipes", TOKEN), ("/api/pipes", None), ("/api/jobs/zz", TOKEN)):
        headers = ui_server.get(path, token=token).headers
        assert headers["Content-Security-Policy"].startswith("default-src 'self';")
        assert headers["X-Content-Type-Options"] == "nosniff"
    for asset in ("/", "/static/app.js", "/static/ui.css", "/static/status.css"):
        body = ui_server.get(asset).body.decode()
        assert re.findall(r"https?://[^\s\"')]+", body) in ([], ["http://www.w3.org/2000/svg"]), asset


@pytest.mark.parametrize(("path", "status"), [
    ("/api/jobs/not-hex", 400),
    ("/api/jobs/ABCDEF", 400),
    ("/api/jobs/abc", 400),
    ("/api/jobs/abcdef012345", 404),
    ("/api/jobs/abcdef012345/log", 404),
    ("/api/pipes/toy/pipe/nope.yaml/plan", 404),
    ("/api/pipes/../../etc/passwd/plan", 404),
    (f"/api/pipes/{PIPE}/secrets", 404),
    ("/api/jobs?pipe=../../etc/passwd", 404),
    ("/api/jobs?limit=x", 400),
    ("/static/../setup.cfg", 404),
    ("/static/%2e%2e/%2e%2e/setup.cfg", 404),
    ("/api/whatever", 404),
])
def test_bad_ids_and_paths_are_refused(ui_server, toy: Path, path: str, status: int) -> None:
    reply = ui_server.get(path)
    assert reply.status == status
    assert "error" in reply.json()


def test_pipe_views_have_the_cli_shapes(ui_server, toy: Path, ml) -> None:
    assert ml("runpipe", PIPE).code == 0
    plan = ui_server.get(f"/api/pipes/{PIPE}/plan").json()
    assert plan == json.loads(ml("runpipe", PIPE, "-n", "--json").out)
    graph = ui_server.get(f"/api/pipes/{PIPE}/graph").json()
    cli_graph = json.loads(ml("graph", PIPE, "--format", "json", "--status").out)
    assert {k: v for k, v in graph.items() if k != "labels"} == cli_graph
    assert graph["labels"]["failed"] == "\u2717 failed"
    svg = ui_server.get(f"/api/pipes/{PIPE}/graph.svg")
    assert svg.headers["Content-Type"] == "image/svg+xml"
    assert svg.body.decode() == ml("graph", PIPE, "--format", "svg", "--status").out
    listed = json.loads(ml("listjob", "--json").out)
    assert ui_server.get("/api/jobs").json() == listed
    assert ui_server.get(f"/api/jobs?pipe={PIPE}&limit=1").json() == listed[:1]
    assert ui_server.get("/api/modules").json() == json.loads(ml("listmodule", "--json").out)
    pipes = ui_server.get("/api/pipes").json()
    assert [{k: p[k] for k in ("pipe", "app", "jobs")} for p in pipes] == json.loads(ml("listpipe", "--json").out)
    assert pipes[0]["counts"] == {"succeeded": 3} and pipes[0]["last_run"]
    runs = ui_server.get(f"/api/pipes/{PIPE}/runs").json()
    assert sorted(runs["jobs"]) == ["a", "b", "c"] and runs["jobs"]["a"] in listed


def test_a_pipe_id_is_url_encoded_like_the_page_does(ui_server, toy: Path) -> None:
    (toy / "pipe" / "two words.yaml").write_text((toy / "pipe" / "chain.yaml").read_text())
    plan = ui_server.get("/api/pipes/toy/pipe/two%20words.yaml/plan")
    assert plan.status == 200 and plan.json()["pipe"] == "toy/pipe/two words.yaml"


def test_a_pipe_that_does_not_check_says_why(ui_server, toy: Path) -> None:
    write_tree(toy, {"pipe/bad.yaml": "jobs:\n  x:\n    module: toy/module/step\n    parameters: {nme: 1}\n"})
    reply = ui_server.get("/api/pipes/toy/pipe/bad.yaml/plan")
    assert reply.status == 422
    assert "job 'x': parameters.nme" in reply.json()["error"]


def test_a_job_record_with_outputs_sizes_and_history(ui_server, toy: Path, ml, env) -> None:
    ml("runpipe", PIPE)
    ml("runpipe", PIPE, "--force")
    newest = json.loads(ml("listjob", "--json", "--pipe", PIPE).out)[0]
    job = ui_server.get(f"/api/jobs/{newest['job_id'][:8]}").json()  # a prefix works as for `ml joblog`
    assert (job["job_id"], job["job"], job["status"]) == (newest["job_id"], newest["job"], "succeeded")
    out = job["outputs"]["output"]
    assert out["path"] == newest["outputs"]["output"] and out["size"] == Path(out["path"]).stat().st_size
    assert [h["status"] for h in job["history"]] == ["succeeded"]  # same job id: one record, rewritten
    assert job["parameters"]["name"] == newest["job"] and job["duration_s"] == newest["duration_s"]


def test_logs_are_escaped_and_can_be_followed(ui_server, toy: Path, ml) -> None:
    write_tree(toy, SHOUT_APP)
    assert ml("runpipe", "toy/pipe/shout.yaml").code == 1
    job_id = json.loads(ml("listjob", "--json").out)[0]["job_id"]
    reply = ui_server.get(f"/api/jobs/{job_id}/log?stream=stderr")
    assert b"<" not in reply.body and b">" not in reply.body and b"&" not in reply.body  # escaped in the JSON
    log = reply.json()
    assert log["text"] == NASTY + "\n" and log["running"] is False and log["next_offset"] == log["size"]
    rest = ui_server.get(f"/api/jobs/{job_id}/log?stream=stderr&offset=9").json()
    assert rest["text"] == (NASTY + "\n")[9:] and rest["offset"] == 9
    assert ui_server.get(f"/api/jobs/{job_id}/log?stream=stdout").json()["text"] == "to stdout\n"
    assert ui_server.get(f"/api/jobs/{job_id}/log?stream=../job.json").status == 400
    assert ui_server.get(f"/api/jobs/{job_id}/log?offset=x").status == 400
    record = ui_server.get(f"/api/jobs/{job_id}")
    assert record.json()["status"] == "failed" and b"<" not in record.body


def test_metrics_come_from_the_records_that_carry_them(ui_server, toy: Path, ml, env) -> None:
    ml("runpipe", PIPE)
    assert ui_server.get("/api/metrics").json()["rows"] == []
    newest = json.loads(ml("listjob", "--json").out)[0]
    # what a module's `type: metrics` output puts into job.json (DESIGN.md "Metrics and experiments")
    record_file = env.home / "jobs" / newest["job_id"] / "job.json"
    record = json.loads(record_file.read_text())
    record_file.write_text(json.dumps({**record, "metrics": {"report.accuracy": 0.91}}))
    metrics = ui_server.get(f"/api/metrics?pipe={PIPE}").json()
    assert metrics["columns"] == {"params": sorted(record["parameters"]), "metrics": ["report.accuracy"]}
    assert [(r["job"], r["metrics"]) for r in metrics["rows"]] == [(newest["job"], {"report.accuracy": 0.91})]


def test_changes_need_the_token_and_the_same_origin(ui_server, toy: Path) -> None:
    origin = ui_server.base
    assert ui_server.get("/api/pipes", token=None, method="POST", headers={"Origin": origin}).status == 403
    assert ui_server.get("/api/pipes", method="POST").status == 403  # no Origin
    assert ui_server.get("/api/pipes", method="POST", headers={"Origin": "http://evil.example"}).status == 403
    # with both, a change still needs a JSON body (a cross-site form cannot send one without asking)
    assert ui_server.get("/api/pipes", method="POST", headers={"Origin": origin}).status == 415
    assert ui_server.send("POST", "/api/pipes").status == 404  # no such action


def test_another_address_needs_a_token(env, ml) -> None:
    from mlpipe.home.settings import load_settings
    from mlpipe.ui.server import UiServer

    with pytest.raises(UsageError, match="needs a token"):
        UiServer(load_settings(), "0.0.0.0", 0, "")
    done = ml("ui", "--host", "0.0.0.0", "--port", "0", "--token", "")
    assert done.code == 2 and "needs a token" in done.err


def test_ml_ui_prints_its_url_serves_and_stops_on_ctrl_c(toy: Path) -> None:
    server = subprocess.Popen([sys.executable, "-m", "mlpipe", "ui", "--port", "0"], env=dict(os.environ),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()
        match = re.fullmatch(r"MLPipe UI: (http://127\.0\.0\.1:\d+/)\?token=([\w-]{20,})\n", line)
        assert match, line
        base, token = match.groups()
        with urllib.request.urlopen(f"{base}api/pipes?token={token}", timeout=30) as resp:
            assert [p["pipe"] for p in json.load(resp)] == [PIPE]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            out, err = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # SIGINT ignored (as a `cmd &` of a script makes it): fail, leave no process
            server.kill()
            server.communicate()
            raise
    assert server.returncode == 130 and out == "" and "ml ui: interrupted" in err and "Traceback" not in err
