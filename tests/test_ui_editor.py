"""The pipe editor's API against a real server: validate with `ml runpipe`'s checks, save
atomically under APP/pipe/ only, refuse stale edits, keep comments or say they go."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import ml_process, write_tree

NEW = "toy/pipe/new.yaml"
GOOD = {"jobs": {
    "first": {"module": "toy/module/step", "input": {"inputs": "file://toy/data/seed.txt"},
              "output": {"output": "first_out"}, "parameters": {"name": "first"}},
    "second": {"module": "toy/module/step", "input": {"inputs": "first_out"},
               "output": {"output": "second_out"}, "parameters": {"name": "second", "sleep": 0}},
}}
BAD = """\
jobs:
  first:
    module: toy/module/step
    input: {inputs: file://toy/data/missing.txt}
    output: {output: first_out}
    parameters: {nme: first, sleep: soon}
  second:
    module: toy/module/stpe
    input: {inputs: frist_out}
  third:
    module: toy/module/step
    input: {inputs: [first_out, nowhere]}
    output: {output: first_out}
"""


def files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_validate_a_good_pipe_gives_its_yaml_and_dag(ui_server, toy: Path) -> None:
    before = files(toy)
    reply = ui_server.send("POST", "/api/pipes/validate", {"pipe": NEW, "data": GOOD})
    assert reply.status == 200
    answer = reply.json()
    assert answer["ok"] is True and answer["problems"] == []
    assert answer["data"] == GOOD and "first_out" in answer["yaml"]
    assert answer["graph"]["edges"] == [{"from": "first", "to": "second", "data": "first_out"}]
    assert answer["svg"].startswith("<svg") and 'data-id="second"' in answer["svg"]
    assert files(toy) == before  # validating writes nothing


def test_validate_reports_every_problem_as_ml_runpipe_does(ui_server, toy: Path, env) -> None:
    answer = ui_server.send("POST", "/api/pipes/validate", {"pipe": "toy/pipe/bad.yaml", "yaml": BAD}).json()
    write_tree(toy, {"pipe/bad.yaml": BAD})
    cli = ml_process("runpipe", "toy/pipe/bad.yaml")
    assert cli.returncode == 2
    assert [p["text"] for p in answer["problems"]] == cli.stderr.removeprefix("ml runpipe: ").splitlines()
    located = {(p["job"], p["field"]) for p in answer["problems"]}
    assert {("first", "parameters.nme"), ("first", "parameters.sleep"), ("second", "module"),
            ("third", "input.inputs"), ("third", "output.output"), ("first", "input.inputs")} <= located
    assert answer["ok"] is False and answer["graph"]["edges"]  # the preview draws what was written


def test_save_creates_the_pipe_atomically_and_ml_runpipe_runs_it(ui_server, toy: Path, env) -> None:
    reply = ui_server.send("PUT", f"/api/pipes/{NEW}", {"data": GOOD})
    assert reply.status == 200 and reply.json()["created"] is True
    path = toy / "pipe" / "new.yaml"
    assert sorted(p.name for p in path.parent.iterdir()) == ["chain.yaml", "new.yaml"]  # no temp file left
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    source = ui_server.get(f"/api/pipes/{NEW}/source").json()
    assert source["data"] == GOOD and source["md5"] == reply.json()["md5"] and source["yaml"] == path.read_text()
    run = ml_process("runpipe", NEW)
    assert run.returncode == 0, run.stderr
    assert env.executed() == ["first", "second"]
    again = ui_server.send("PUT", f"/api/pipes/{NEW}", {"data": GOOD})  # a new pipe over an existing one
    assert again.status == 409 and "already exists" in again.json()["error"]


def test_an_invalid_pipe_is_not_saved(ui_server, toy: Path) -> None:
    before = files(toy)
    reply = ui_server.send("PUT", "/api/pipes/toy/pipe/bad.yaml", {"yaml": BAD})
    assert reply.status == 422
    assert "unknown module 'toy/module/stpe'" in reply.json()["error"] and len(reply.json()["problems"]) > 5
    chain = ui_server.get("/api/pipes/toy/pipe/chain.yaml/source").json()
    broken = ui_server.send("PUT", "/api/pipes/toy/pipe/chain.yaml", {"yaml": "jobs: [", "base": chain})
    assert broken.status == 422 and "invalid YAML" in broken.json()["error"]
    assert files(toy) == before


def test_a_file_changed_on_disk_since_it_was_loaded_is_not_overwritten(ui_server, toy: Path) -> None:
    path = toy / "pipe" / "chain.yaml"
    tab1 = ui_server.get("/api/pipes/toy/pipe/chain.yaml/source").json()
    tab2 = ui_server.get("/api/pipes/toy/pipe/chain.yaml/source").json()
    first = tab1["yaml"].replace("parameters: {name: c}", "parameters: {name: c, tag: one}")
    saved = ui_server.send("PUT", "/api/pipes/toy/pipe/chain.yaml", {"yaml": first, "base": {"md5": tab1["md5"]}})
    assert saved.status == 200 and path.read_text() == first
    second = tab2["yaml"].replace("parameters: {name: c}", "parameters: {name: c, tag: two}")
    refused = ui_server.send("PUT", "/api/pipes/toy/pipe/chain.yaml", {"yaml": second, "base": {"md5": tab2["md5"]}})
    assert refused.status == 409 and "changed on disk since you loaded it" in refused.json()["error"]
    assert path.read_text() == first  # the first tab's save survives
    path.write_text(first + "# edited in a terminal\n")
    stale = ui_server.send("PUT", "/api/pipes/toy/pipe/chain.yaml", {"yaml": first, "base": saved.json()})
    assert stale.status == 409 and path.read_text().endswith("# edited in a terminal\n")
    path.unlink()
    gone = ui_server.send("PUT", "/api/pipes/toy/pipe/chain.yaml", {"yaml": first, "base": saved.json()})
    assert gone.status == 409 and "deleted" in gone.json()["error"] and not path.exists()


def test_comments_survive_a_text_edit_and_a_form_save_says_it_drops_them(ui_server, toy: Path) -> None:
    path = toy / "pipe" / "chain.yaml"
    path.write_text("# the toy chain\n" + path.read_text().replace("{name: b}", "{name: b}  # b is the middle"))
    source = ui_server.get("/api/pipes/toy/pipe/chain.yaml/source").json()
    assert source["comments"] == 2
    edited = source["yaml"].replace("{name: c}", "{name: c, tag: x}")
    saved = ui_server.send("PUT", "/api/pipes/toy/pipe/chain.yaml", {"yaml": edited, "base": source})
    assert saved.status == 200 and path.read_text() == edited and "# b is the middle" in edited
    data = {**source["data"]}
    data["jobs"]["c"]["parameters"]["tag"] = "y"
    refused = ui_server.send("PUT", "/api/pipes/toy/pipe/chain.yaml", {"data": data, "base": saved.json()})
    assert refused.status == 409 and refused.json()["comments"] == 2 and "comment" in refused.json()["error"]
    assert path.read_text() == edited
    agreed = ui_server.send("PUT", "/api/pipes/toy/pipe/chain.yaml",
                            {"data": data, "base": saved.json(), "drop_comments": True})
    assert agreed.status == 200 and "#" not in path.read_text() and "tag: y" in path.read_text()


@pytest.mark.parametrize(("pipe", "status"), [
    ("toy/pipe/..%2F..%2Fescape.yaml", 400),
    ("toy/pipe/%2E%2E%2Fescape.yaml", 400),
    ("toy/pipe/%2Fetc%2Fescape.yaml", 400),
    ("%2Fetc/pipe/escape.yaml", 400),
    ("toy/module/escape.yaml", 400),
    ("toy/pipe/escape.txt", 400),
    ("toy/pipe/.hidden.yaml", 400),
    ("toy/pipe/a%20b.yaml", 400),
    ("toy/pipe/a%3B%20touch%20X.yaml", 400),
    ("toy/pipe/%24(touch%20X).yaml", 400),
    ("nope/pipe/escape.yaml", 404),
])
def test_a_pipe_is_written_only_as_app_pipe_name_yaml(ui_server, toy: Path, env, pipe: str, status: int) -> None:
    before = files(env.home.parent)
    reply = ui_server.send("PUT", f"/api/pipes/{pipe}", {"data": GOOD})
    assert reply.status == status, reply.body
    assert files(env.home.parent) == before


def test_no_symbolic_link_leads_a_save_out_of_the_app(ui_server, toy: Path, env, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.yaml").write_text("precious\n")
    (toy / "pipe" / "link.yaml").symlink_to(outside / "victim.yaml")
    write_tree(env.apps / "other", {"module/.keep": ""})
    (env.apps / "other" / "pipe").symlink_to(outside)
    for pipe in ("toy/pipe/link.yaml", "other/pipe/victim.yaml", "other/pipe/fresh.yaml"):
        reply = ui_server.send("PUT", f"/api/pipes/{pipe}", {"data": GOOD, "base": {"md5": None}})
        assert reply.status == 403 and "symbolic link" in reply.json()["error"], pipe
    assert sorted(os.listdir(outside)) == ["victim.yaml"] and (outside / "victim.yaml").read_text() == "precious\n"


def test_injection_strings_through_the_form_create_nothing(ui_server, toy: Path, env) -> None:
    values = ["; touch X", "$(touch X)", "`touch X`", "a && touch X"]
    data = {"jobs": {f"j{i}": {"module": "toy/module/step", "output": {"output": f"out{i}"},
                               "parameters": {"name": f"j{i}", "tag": v}} for i, v in enumerate(values)}}
    bad_name = {"jobs": {"x; touch X": {"module": "toy/module/step", "output": {"output": "o"}}}}
    problems = ui_server.send("POST", "/api/pipes/validate", {"pipe": NEW, "data": bad_name}).json()["problems"]
    assert "not a valid job name" in problems[0]["message"]
    assert ui_server.send("PUT", f"/api/pipes/{NEW}", {"data": data}).status == 200
    assert ml_process("runpipe", NEW).returncode == 0
    listed = json.loads(ml_process("listjob", "--json").stdout)
    texts = sorted(Path(r["outputs"]["output"]).read_text() for r in listed)
    assert texts == sorted(f"j{i} {v}\n" for i, v in enumerate(values))
    assert [p for p in env.home.parent.rglob("X")] == []


def test_yaml_is_read_safely(ui_server, toy: Path, env) -> None:
    evil = "!!python/object/apply:os.system ['touch X']\n"
    answer = ui_server.send("POST", "/api/pipes/validate", {"pipe": NEW, "yaml": evil}).json()
    assert answer["ok"] is False and "invalid YAML" in answer["problems"][0]["message"]
    assert ui_server.send("PUT", f"/api/pipes/{NEW}", {"yaml": evil}).status == 422
    assert [p for p in env.home.parent.rglob("X")] == [] and not (toy / "pipe" / "new.yaml").exists()


def test_modules_detail_gives_the_form_each_interface(ui_server, toy: Path) -> None:
    write_tree(toy, {"module/pick.yaml": "input:\n  a: {type: text, optional: true}\noutput:\n  b: {type: text}\n"
                     "parameters:\n  mode: {type: str, default: fast, choices: [fast, slow]}\n  n: {type: int}\n"
                     "cmd: python -m x a b mode n\n"})
    rows = {r["module"]: r for r in ui_server.get("/api/modules?detail=1").json()}
    pick = rows["toy/module/pick"]
    assert pick["inputs"] == {"a": {"type": "text", "optional": True}}
    assert pick["parameters"]["mode"]["choices"] == ["fast", "slow"] and pick["parameters"]["n"]["required"] is True
