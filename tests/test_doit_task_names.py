"""Job names that are doit command names (`clean`, `list`, `run`, ...) work with `ml` and with the real doit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import write_tree

from mlpipe.engine.doit_tasks import DOIT_COMMANDS, task_name

REPO = Path(__file__).resolve().parent.parent
NAMES = """
jobs:
  clean:
    {module: toy/module/step, input: {inputs: file://toy/data/seed.txt}, output: {output: a}, parameters: {name: clean}}
  list: {module: toy/module/step, input: {inputs: a}, output: {output: b}, parameters: {name: list}}
  run: {module: toy/module/step, input: {inputs: b}, output: {output: c}, parameters: {name: run}}
  info: {module: toy/module/step, input: {inputs: c}, output: {output: d}, parameters: {name: info}}
  train: {module: toy/module/step, input: {inputs: d}, output: {output: e}, parameters: {name: train}}
"""


def doit(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "doit", "-f", str(REPO / "dodo_template.py"), "pipe=toy/pipe/names.yaml"]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_command_names_as_job_names_work_in_doit_and_ml(env, ml, toy):
    write_tree(toy, {"pipe/names.yaml": NAMES})
    listed = doit("list", "--quiet")
    assert listed.returncode == 0, listed.stderr
    tasks = [name for name in listed.stdout.split() if not name.startswith("fetch:")]
    assert sorted(tasks) == sorted(task_name(n) for n in ["clean", "list", "run", "info", "train"])
    assert "train" in tasks  # a safe name stays as it was (existing doit DBs keep their history)
    ran = doit("run", task_name("info"))
    assert ran.returncode == 0, ran.stderr
    assert env.executed() == ["clean", "list", "run", "info"]
    env.reset_log()
    result = ml("runpipe", "toy/pipe/names.yaml", "--json")  # same DB, same cache: only train is left
    assert result.code == 0, result.err
    assert {j["name"]: j["result"] for j in json.loads(result.out)["jobs"]} == {
        "clean": "cached", "list": "cached", "run": "cached", "info": "cached", "train": "ran"}
    assert "[4/5] train: started" in result.err  # ml shows job names, never task names
    assert {j["job"] for j in json.loads(ml("listjob", "--json").out)} == {"clean", "list", "run", "info", "train"}
    assert "all 5 jobs up to date" in ml("runpipe", "toy/pipe/names.yaml", "-n").out
    assert "5 jobs up to date, nothing to do" in ml("runpipe", "toy/pipe/names.yaml").err


def test_the_reserved_names_are_doits_commands():
    ask = "from doit.doit_cmd import DoitMain; print(*(cmd.get_name() for cmd in DoitMain.DOIT_CMDS))"
    commands = subprocess.run([sys.executable, "-c", ask], capture_output=True, text=True, check=True).stdout
    assert set(commands.split()) <= DOIT_COMMANDS
    assert all(task_name(name) != name for name in DOIT_COMMANDS)
    assert task_name("bow_model") == "bow_model"
