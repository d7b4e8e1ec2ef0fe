"""`ml joblog ID`: a finished job's logs, one stream, a running job, and `--follow` until it ends."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from conftest import ml_process, write_tree

TALK = '''
"""Print numbered lines to stdout and stderr, pausing between them."""
import argparse, sys, time

parser = argparse.ArgumentParser()
parser.add_argument("--lines", type=int, default=2)
parser.add_argument("--pause", type=float, default=0)
parser.add_argument("--wait_for", default="")
parser.add_argument("output")
args = parser.parse_args()
for i in range(args.lines):
    print(f"out {i}", flush=True)
    print(f"err {i}", file=sys.stderr, flush=True)
    time.sleep(args.pause)
while args.wait_for and not __import__("os").path.exists(args.wait_for):
    time.sleep(0.05)
print("done: caf\\u00e9", flush=True)
open(args.output, "w").write("ok\\n")
'''

TALK_YAML = """
output: {output: {type: text}}
parameters:
  lines: {type: int, default: 2}
  pause: {type: float, default: 0}
  wait_for: {type: str, default: ""}
cmd: python -m toy.module.talk --lines lines --pause pause --wait_for wait_for output
"""


def talk_pipe(toy, **params) -> str:
    write_tree(toy, {"module/talk.py": TALK, "module/talk.yaml": TALK_YAML,
                     "pipe/talk.yaml": "jobs: {talk: {module: toy/module/talk, output: {output: said},"
                                       f" parameters: {json.dumps(params)}}}}}"})
    return "toy/pipe/talk.yaml"


def job_id_of(ml, pipe: str) -> str:
    return json.loads(ml("listjob", "--json", "--pipe", pipe).out)[0]["job_id"]


def test_both_logs_with_headers(env, ml, toy):
    pipe = talk_pipe(toy)
    assert ml("runpipe", pipe).code == 0
    result = ml("joblog", job_id_of(ml, pipe)[:8])
    assert result.code == 0
    assert result.out == "==> stdout.log <==\nout 0\nout 1\ndone: café\n\n==> stderr.log <==\nerr 0\nerr 1\n"


def test_one_stream_only(env, ml, toy):
    pipe = talk_pipe(toy, lines=1)
    ml("runpipe", pipe)
    job_id = job_id_of(ml, pipe)
    assert ml("joblog", job_id, "--stdout").out == "out 0\ndone: café\n"
    assert ml("joblog", job_id, "--stderr").out == "err 0\n"
    assert ml("joblog", job_id, "--stdout", "--stderr").code == 2


def test_empty_logs_say_so(env, ml, toy):
    ml("runpipe", "toy/pipe/chain.yaml")
    result = ml("joblog", job_id_of(ml, "toy/pipe/chain.yaml"))
    assert result.out == "==> stdout.log <==\n(empty)\n\n==> stderr.log <==\n(empty)\n"


def test_running_job_without_follow_prints_what_is_there(env, ml, toy, tmp_path):
    release = tmp_path / "release"
    pipe = talk_pipe(toy, lines=1, wait_for=str(release))
    proc = subprocess.Popen([sys.executable, "-m", "mlpipe", "runpipe", pipe], stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: ml("listjob", "--status", "running", "--json").out.count("job_id") == 1)
        job_id = job_id_of(ml, pipe)
        _wait_for(lambda: "err 0" in ml("joblog", job_id).out)
        assert ml("joblog", job_id, "--stdout").out == "out 0\n"
    finally:
        release.touch()
        proc.wait(timeout=30)


def test_follow_tails_a_running_job_until_it_ends(env, ml, toy, tmp_path):
    release = tmp_path / "release"
    pipe = talk_pipe(toy, lines=5, pause=0.1, wait_for=str(release))
    runner = subprocess.Popen([sys.executable, "-m", "mlpipe", "runpipe", pipe], stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: ml("listjob", "--status", "running", "--json").out.count("job_id") == 1)
        job_id = job_id_of(ml, pipe)
        follower = subprocess.Popen([sys.executable, "-m", "mlpipe", "joblog", job_id, "--follow"],
                                    stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        assert follower.poll() is None  # still following: the job waits for `release`
    finally:
        release.touch()
    out, _ = follower.communicate(timeout=30)
    assert runner.wait(timeout=30) == 0
    assert follower.returncode == 0
    assert [line for line in out.splitlines() if line.startswith("out ")] == [f"out {i}" for i in range(5)]
    assert [line for line in out.splitlines() if line.startswith("err ")] == [f"err {i}" for i in range(5)]
    assert "done: café\n" in out  # written after `release`: read before following stopped
    assert "==> stdout.log <==" in out and "==> stderr.log <==" in out


def test_follow_of_a_finished_job_returns_at_once(env, ml, toy):
    pipe = talk_pipe(toy, lines=1)
    ml("runpipe", pipe)
    result = ml_process("joblog", job_id_of(ml, pipe), "--follow", "--stderr", timeout=60)  # a hang guard
    assert result.returncode == 0 and result.stdout == "err 0\n"


def test_unknown_job_exits_2(env, ml):
    result = ml("joblog", "ffffffff")
    assert result.code == 2 and "no job record" in result.err


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
