"""`ml listjob`: records after success, failure and SIGKILL; filters, JSON, the index file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import write_tree

from mlpipe.store import records

CHAIN = "toy/pipe/chain.yaml"
SLOW = """
jobs:
  a: {module: toy/module/step, output: {output: o1}, parameters: {name: a}}
  b: {module: toy/module/step, input: {inputs: o1}, output: {output: o2}, parameters: {name: b, sleep: 30}}
"""


def listing(ml, *args: str) -> list[dict]:
    result = ml("listjob", "--json", *args)
    assert result.code == 0, result.err
    return json.loads(result.out)


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_succeeded_jobs_are_listed_newest_first(env, ml, toy):
    report = json.loads(ml("runpipe", CHAIN, "--json").out)
    jobs = listing(ml)
    assert [j["job"] for j in jobs] == ["c", "b", "a"]
    assert {j["status"] for j in jobs} == {"succeeded"}
    assert [j["job_id"] for j in jobs] == [j["job_id"] for j in reversed(report["jobs"])]
    assert set(jobs[0]) >= {"job_id", "pipe", "job", "module", "status", "started", "duration_s", "outputs"}
    assert jobs[0]["pipe"] == CHAIN and jobs[0]["module"] == "toy/module/step"
    assert jobs[0]["outputs"] == report["jobs"][-1]["outputs"]
    assert Path(jobs[0]["outputs"]["output"]).read_text().endswith("c \n")
    assert jobs[0]["duration_s"] >= 0 and jobs[0]["started"].startswith(time.strftime("%Y-"))

    table = ml("listjob")
    assert table.code == 0
    lines = table.out.splitlines()
    assert lines[0].split() == ["job_id", "pipe", "job", "module", "status", "started", "duration"]
    rows = [line.split() for line in lines[2:]]
    assert [row[0] for row in rows] == [j["job_id"][:12] for j in jobs]
    assert [row[2] for row in rows] == ["c", "b", "a"] and {row[4] for row in rows} == {"succeeded"}


def test_failed_job_is_listed_failed(env, ml, toy):
    ml("runpipe", CHAIN, "--set", "b.fail=true")
    jobs = {j["job"]: j for j in listing(ml)}
    assert set(jobs) == {"a", "b"}  # c never started
    assert jobs["b"]["status"] == "failed" and jobs["b"]["exit_code"] == 3
    assert jobs["b"]["outputs"] == {"output": None}  # declared, but nothing in the cache: no path
    assert Path(jobs["a"]["outputs"]["output"]).is_file()
    ml("runpipe", CHAIN)  # b succeeds now (another job id); its failed record still has no output
    again = [j for j in listing(ml) if j["job"] == "b"]
    assert [j["status"] for j in again] == ["succeeded", "failed"]
    assert Path(again[0]["outputs"]["output"]).is_file() and again[1]["outputs"] == {"output": None}


def test_a_killed_run_reads_failed_not_running(env, ml, toy):
    write_tree(toy, {"pipe/slow.yaml": SLOW})
    proc = subprocess.Popen([sys.executable, "-m", "mlpipe", "runpipe", "toy/pipe/slow.yaml"],
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: env.executed() == ["a", "b"])
    running = listing(ml, "--status", "running")
    assert [j["job"] for j in running] == ["b"]
    assert "running" in ml("listjob").out
    proc.send_signal(signal.SIGKILL)  # the runner dies; then the job too, as after a reboot
    proc.wait(timeout=30)
    pid = records.read_record(env.home / "jobs", running[0]["job_id"]).pid
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: {j["job"]: j["status"] for j in listing(ml)} == {"a": "succeeded", "b": "failed"})
    assert listing(ml, "--status", "running") == []
    assert [j["job"] for j in listing(ml, "--status", "failed")] == ["b"]


def test_filters_by_pipe_status_and_limit(env, ml, toy):
    write_tree(toy, {"pipe/single.yaml": "jobs: {only: {module: toy/module/step, output: {output: x}}}"})
    ml("runpipe", CHAIN, "--set", "c.fail=true")
    ml("runpipe", "toy/pipe/single.yaml")
    assert len(listing(ml)) == 4
    assert [j["job"] for j in listing(ml, "--pipe", "toy/pipe/single.yaml")] == ["only"]
    assert [j["job"] for j in listing(ml, "--pipe", "toy/pipe/single")] == ["only"]  # .yaml may be left out
    assert [j["job"] for j in listing(ml, "--pipe", str(toy / "pipe" / "chain.yaml"))] == ["c", "b", "a"]
    assert [j["job"] for j in listing(ml, "--pipe", CHAIN, "--status", "succeeded")] == ["b", "a"]
    assert [j["job"] for j in listing(ml, "--status", "failed")] == ["c"]
    assert [j["job"] for j in listing(ml, "--limit", "2")] == ["only", "c"]
    table = ml("listjob", "--limit", "1")
    assert len(table.out.splitlines()) == 3 and "newest 1 of 4 jobs" in table.err
    write_tree(toy, {"pipe/never.yaml": "jobs: {only: {module: toy/module/step, output: {output: x}}}"})
    assert ml("listjob", "--pipe", "toy/pipe/never.yaml").out.strip() == "(none)"  # a pipe, never run
    assert ml("listjob", "--status", "done").code == 2
    assert ml("listjob", "--limit", "-1").code == 2


def test_empty_home_lists_nothing(env, ml):
    assert ml("listjob").out.strip() == "(none)"
    assert listing(ml) == []


def test_index_has_a_line_per_write_and_is_rebuilt_when_missing(env, ml, toy):
    ml("runpipe", CHAIN)
    index = env.home / "jobs" / records.INDEX_NAME
    assert len(index.read_text().splitlines()) >= 2 * 3  # start (with its pid) and end, for each job
    before = listing(ml)
    index.unlink()  # a home written before the index existed
    assert listing(ml) == before
    assert len(index.read_text().splitlines()) == 3
    with index.open("a") as handle:
        handle.write('["cut short by a cra')  # a crash mid-write damages one line only
    assert listing(ml) == before


def test_a_deleted_record_folder_is_not_listed(env, ml, toy):
    ml("runpipe", CHAIN)
    first = listing(ml)[-1]
    shutil.rmtree(env.home / "jobs" / first["job_id"])  # removed by hand: the index still has it
    assert [j["job"] for j in listing(ml)] == ["c", "b"]


def test_index_is_compacted_when_mostly_superseded(env, ml, toy):
    ml("runpipe", CHAIN)
    jobs_dir = env.home / "jobs"
    record = records.read_record(jobs_dir, listing(ml)[0]["job_id"])
    for _ in range(records.COMPACT_SLACK + 10):
        records.write_record(jobs_dir, record)
    assert len((jobs_dir / records.INDEX_NAME).read_text().splitlines()) > records.COMPACT_SLACK
    assert [j["job"] for j in listing(ml)] == ["c", "b", "a"]
    assert len((jobs_dir / records.INDEX_NAME).read_text().splitlines()) == 3


def test_unknown_pipe_is_exit_2_with_a_hint(env, ml, toy):
    ml("runpipe", CHAIN)
    (toy / "pipe" / "chain.yaml").rename(toy / "pipe" / "renamed.yaml")  # its records stay listable
    assert [j["job"] for j in listing(ml, "--pipe", CHAIN)] == ["c", "b", "a"]
    for args in (["--pipe", "toy/pipe/chian"], ["--pipe", "toy/pipe/chian.yaml", "--json"]):
        result = ml("listjob", *args)
        assert result.code == 2 and result.out == ""
        assert "unknown pipe 'toy/pipe/chian.yaml'" in result.err
        assert "did you mean 'toy/pipe/chain.yaml'?" in result.err
