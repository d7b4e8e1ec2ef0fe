"""`ml cron PIPE`: the printed crontab line, run the way cron runs it (`/bin/sh -c`, an almost empty env)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlpipe.cli.commands import cron
from mlpipe.cli.commands.cron import ml_command

CHAIN = "toy/pipe/chain.yaml"
ISO_PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d ")


def cron_line(ml, *args: str) -> str:
    result = ml("cron", *args)
    assert result.code == 0, result.err
    [line] = result.out.splitlines()
    return line


def run_like_cron(line: str, home: Path, toy_log: Path) -> subprocess.CompletedProcess:
    """What cron does with a crontab line: `\\%` becomes `%`, the command goes to /bin/sh."""
    command = line.split(None, 1)[1] if line.startswith("@") else line.split(None, 5)[5]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "SHELL": "/bin/sh", "TOY_LOG": str(toy_log)}
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["/bin/sh", "-c", command.replace("\\%", "%")], env=env, cwd=home, capture_output=True,
                          text=True, timeout=120)


def test_printed_line_runs_under_cron_and_appends_to_the_log(env, ml, toy, tmp_path):
    line = cron_line(ml, CHAIN)
    assert line.startswith("*/15 * * * * ")
    assert "--no-wait" in line and f"MLPIPE_HOME={env.home}" in line and f"MLPIPE_APPS={env.apps}" in line
    assert "MLPIPE_LOG_TIMESTAMPS=1" in line
    log = env.home / "logs" / "toy__pipe__chain.log"
    assert log.parent.is_dir()

    first = run_like_cron(line, tmp_path / "user", env.log)
    assert first.returncode == 0, first.stderr
    assert first.stdout == first.stderr == ""  # everything went to the log
    assert env.executed() == ["a", "b", "c"]
    text = log.read_text()
    assert "toy/pipe/chain.yaml: 3 ran" in text and "\x1b[" not in text  # no colour or progress bars
    assert all(ISO_PREFIX.match(line) for line in text.splitlines()), text  # every line says when

    second = run_like_cron(line, tmp_path / "user", env.log)
    assert second.returncode == 0, second.stderr
    assert env.executed() == ["a", "b", "c"]
    added = log.read_text()[len(text):]
    assert added.count("\n") == 1 and "3 jobs up to date, nothing to do" in added
    assert ISO_PREFIX.match(added)


def test_values_with_spaces_and_percent_signs_survive(env, ml, toy, tmp_path, monkeypatch):
    home = tmp_path / "my home 100%"
    monkeypatch.setenv("MLPIPE_HOME", str(home))
    monkeypatch.setenv("MLPIPE_JOBS", "2")
    line = cron_line(ml, CHAIN, "--every", "0  3 * *   mon-fri")
    assert line.startswith("0 3 * * mon-fri ")
    assert "100\\%" in line and "MLPIPE_JOBS=2" in line
    result = run_like_cron(line, tmp_path / "user", env.log)
    assert result.returncode == 0, result.stderr
    assert env.executed() == ["a", "b", "c"]
    assert (home / "logs" / "toy__pipe__chain.log").exists()


def test_pipe_given_as_a_path_outside_the_apps_path(env, ml, toy, tmp_path, monkeypatch):
    monkeypatch.setenv("MLPIPE_APPS", "")
    monkeypatch.chdir(toy)
    line = cron_line(ml, "pipe/chain.yaml", "--every", "@hourly")
    assert line.startswith("@hourly ") and str(toy / "pipe" / "chain.yaml") in line
    assert run_like_cron(line, tmp_path / "user", env.log).returncode == 0
    assert env.executed() == ["a", "b", "c"]


@pytest.mark.parametrize("args, message", [
    (["toy/pipe/chian.yaml"], "did you mean 'toy/pipe/chain.yaml'"),
    ([CHAIN, "--every", "* * * *"], "expected five cron fields"),
    ([CHAIN, "--every", "@often"], "expected five cron fields"),
    ([CHAIN, "--every", "* * * * * ; rm -rf /"], "expected five cron fields"),
])
def test_bad_pipe_or_schedule_exits_2(env, ml, toy, args, message):
    result = ml("cron", *args)
    assert result.code == 2 and message in result.err and result.out == ""


def test_the_ml_script_next_to_python_is_preferred(tmp_path, monkeypatch):
    python = tmp_path / "bin" / "python3"
    python.parent.mkdir()
    python.symlink_to(sys.executable)
    monkeypatch.setattr(sys, "executable", str(python))
    assert ml_command() == [str(python), "-P", "-m", "mlpipe"]
    script = python.parent / "ml"
    script.write_text("#!/bin/sh\n")
    os.chmod(script, 0o755)
    assert ml_command() == [str(script)]


def test_without_an_ml_script_python_m_mlpipe_runs_from_home(env, ml, toy, tmp_path, monkeypatch):
    monkeypatch.setattr(cron.os, "access", lambda path, mode: False)  # as if no `ml` script were installed
    line = cron_line(ml, CHAIN)
    assert f"{sys.executable} -P -m mlpipe runpipe" in line
    (tmp_path / "user" / "mlpipe" / "cache").mkdir(parents=True)  # cron starts in $HOME, by the default home
    result = run_like_cron(line, tmp_path / "user", env.log)
    assert result.returncode == 0, (env.home / "logs" / "toy__pipe__chain.log").read_text()
    assert env.executed() == ["a", "b", "c"]
