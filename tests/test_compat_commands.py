"""The original product's commands and spellings: addapp, viewjob, viewmodule, canceljob,
cancelpipe, cleanjob, deletepipe, getmd5, startpipe, runall; --dry_run, --job_id, --directory.
Cancel tests stop real `ml runpipe` processes and their real jobs."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ml_process, wait_for, write_tree

from mlpipe.store.records import job_ids, read_record

CHAIN = "toy/pipe/chain.yaml"
SLOW = """
jobs:
  a: {module: toy/module/step, output: {output: o1}, parameters: {name: a}}
  b: {module: toy/module/step, input: {inputs: o1}, output: {output: o2}, parameters: {name: b, sleep: 60}}
  c: {module: toy/module/step, input: {inputs: o2}, output: {output: o3}, parameters: {name: c}}
"""


def records(home: Path) -> dict[str, dict]:
    """job name -> its record (the newest, for one pipe per test)."""
    # as MLPipe reads them: a record being written at this instant (in place, at job start) is absent
    found = [vars(r) for r in (read_record(home / "jobs", j) for j in job_ids(home / "jobs")) if r is not None]
    return {r["job"]: r for r in sorted(found, key=lambda r: r["started"] or 0)}


def start_run(pipe: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mlpipe", "runpipe", pipe], stderr=subprocess.PIPE, text=True)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def cached_entries(home: Path) -> int:
    return len(list((home / "cache" / "data").rglob("*.json")))


# -- addapp, viewmodule, getmd5, spellings ------------------------------------------------------

def test_addapp_mounts_under_app_name(env, ml, tmp_path):
    app = write_tree(tmp_path / "elsewhere" / "core", {"module/m.yaml": "cmd: true\n", "pipe/p.yaml": "jobs: {}\n"})
    result = ml("addapp", str(app), "--app_name", "mlpipe")
    assert result.code == 0, result.err
    assert (env.home / "apps" / "mlpipe").resolve() == app.resolve()
    assert [r["module"] for r in json.loads(ml("listmodule", "mlpipe", "--json").out)] == ["mlpipe/module/m"]
    assert ml("addapp", str(tmp_path / "nothing")).code == 2
    assert ml("addapp", str(app), "--app_name", "a/b").code == 2


def test_viewmodule_shows_yaml_and_interface(env, ml, toy):
    result = ml("viewmodule", "toy/module/step")
    assert result.code == 0
    assert "cmd: python -m toy.module.step" in result.out and str(toy / "module" / "step.yaml") in result.out
    assert "an argument list (no shell)" in result.out
    shown = json.loads(ml("viewmodule", "toy/module/step", "--json").out)
    assert shown["shell"] is False and shown["outputs"] == {"output": {"type": "text", "optional": False,
                                                                       "datafile": True}}
    unknown = ml("viewmodule", "toy/module/nope")
    assert unknown.code == 2 and "unknown module" in unknown.err


def test_getmd5_is_the_fingerprint_mlpipe_uses(env, ml, tmp_path):
    file = tmp_path / "f.txt"
    file.write_text("hello\n")
    folder = write_tree(tmp_path / "d", {"x.txt": "1", "sub/y.txt": "2"})
    md5 = {rel: hashlib.md5(text.encode()).hexdigest() for rel, text in (("sub/y.txt", "2"), ("x.txt", "1"))}
    manifest = "".join(f"{rel}\0{md5[rel]}\n" for rel in sorted(md5))
    assert ml("getmd5", str(file)).out.strip() == hashlib.md5(b"hello\n").hexdigest()
    assert ml("getmd5", str(folder)).out.strip() == hashlib.md5(manifest.encode()).hexdigest()
    assert ml("getmd5", "--string", "abc").out.strip() == hashlib.md5(b"abc").hexdigest()
    assert ml("getmd5").code == 2 and ml("getmd5", str(tmp_path / "none")).code == 2


def test_original_flag_spellings(env, ml, toy):
    dry = ml("runpipe", CHAIN, "--dry_run", "--json")
    assert dry.code == 0 and {j["status"] for j in json.loads(dry.out)["jobs"]} == {"stale"}
    assert env.executed() == []
    report = json.loads(ml("runpipe", CHAIN, "--json").out)
    job_id = report["jobs"][0]["job_id"]
    assert ml("joblog", "--job_id", job_id).out == ml("joblog", job_id).out
    assert ml("joblog").code == 2
    assert [r["pipe"] for r in json.loads(ml("listpipe", "--directory", "toy", "--json").out)] == [CHAIN]


def test_startpipe_plans_without_running(env, ml, toy):
    planned = ml("startpipe", CHAIN, "--json")
    assert planned.code == 0
    assert json.loads(planned.out) == json.loads(ml("runpipe", CHAIN, "--dry-run", "--json").out)
    assert env.executed() == [] and not list((env.home / "jobs").glob("*/job.json"))
    write_tree(toy, {"pipe/bad.yaml": "jobs: {a: {module: toy/module/nope}}\n"})
    assert ml("startpipe", "toy/pipe/bad.yaml").code == 2


# -- viewjob, deletepipe --------------------------------------------------------------------------

def test_viewjob_shows_record_outputs_and_logs(env, ml, toy):
    report = json.loads(ml("runpipe", CHAIN, "--json").out)
    job_id, output = report["jobs"][0]["job_id"], report["jobs"][0]["outputs"]["output"]
    shown = ml("viewjob", job_id[:8])
    assert shown.code == 0
    for text in (job_id, CHAIN, "toy/module/step", "succeeded", output, "stdout.log", "stderr.log", "--name a"):
        assert text in shown.out
    data = json.loads(ml("viewjob", "--job_id", job_id, "--json").out)
    assert data["status"] == "succeeded" and data["output_paths"]["output"] == {"path": output, "cached": True}
    assert Path(data["files"]["stdout"]).is_file()
    assert ml("viewjob", "ffffffff").code == 2


def test_deletepipe_forgets_db_and_records_keeps_cache(env, ml, toy):
    ml("runpipe", CHAIN)
    db = env.home / "doit" / "toy__pipe__chain.sqlite3"
    assert db.exists() and len(records(env.home)) == 3
    dry = ml("deletepipe", CHAIN, "--dry_run")
    assert dry.code == 0 and "would remove" in dry.out and "3 job record(s)" in dry.out
    assert db.exists() and len(records(env.home)) == 3
    done = ml("deletepipe", CHAIN)
    assert done.code == 0 and "removed" in done.out
    assert not db.exists() and records(env.home) == {}
    assert json.loads(ml("listjob", "--json").out) == []
    assert cached_entries(env.home) == 3  # `ml gc` decides about the cache
    env.reset_log()
    again = json.loads(ml("runpipe", CHAIN, "--json").out)  # forgotten, but its outputs are still cached
    assert {j["result"] for j in again["jobs"]} == {"cached"} and env.executed() == []


def test_deletepipe_refuses_a_running_pipe(env, toy):
    write_tree(toy, {"pipe/slow.yaml": SLOW})
    runner = start_run("toy/pipe/slow.yaml")
    try:
        wait_for(lambda: env.executed() == ["a", "b"])
        refused = ml_process("deletepipe", "toy/pipe/slow.yaml")
        assert refused.returncode == 2 and "is running" in refused.stderr
    finally:
        runner.send_signal(signal.SIGTERM)
        runner.communicate(timeout=30)


# -- canceljob, cancelpipe, cleanjob ----------------------------------------------------------------

def test_canceljob_stops_a_sleeping_job_for_real(env, toy):
    write_tree(toy, {"pipe/slow.yaml": SLOW})
    runner = start_run("toy/pipe/slow.yaml")
    wait_for(lambda: env.executed() == ["a", "b"] and records(env.home).get("b", {}).get("pid"))
    b = records(env.home)["b"]
    assert group_alive(b["pid"])
    result = ml_process("canceljob", b["job_id"][:10], timeout=60)
    assert result.returncode == 0, result.stderr
    assert "canceled" in result.stdout
    _out, err = runner.communicate(timeout=60)
    assert runner.returncode == 1  # the run failed: a job of it did not finish
    assert not group_alive(b["pid"])
    final = records(env.home)
    assert final["b"]["status"] == "canceled" and "c" not in final  # c never started
    assert cached_entries(env.home) == 1  # a's output only: nothing partial of b
    assert not any((env.home / "cache" / "tmp").iterdir())
    listing = {j["job"]: j["status"] for j in json.loads(ml_process("listjob", "--json").stdout)}
    assert listing == {"a": "succeeded", "b": "canceled"}
    assert [j["job"] for j in json.loads(ml_process("listjob", "--status", "canceled", "--json").stdout)] == ["b"]
    again = ml_process("canceljob", b["job_id"])
    assert again.returncode == 2 and "is not running (status: canceled)" in again.stderr


def test_canceljob_stops_the_whole_process_group_of_a_shell_job(env, toy, tmp_path):
    done = tmp_path / "finished"
    write_tree(toy, {"module/nap.yaml": f"""
        output: {{out: {{type: text}}}}
        cmd: sleep 60 && touch {done} && echo x > out
        """, "pipe/nap.yaml": "jobs: {nap: {module: toy/module/nap, output: {out: napped}}}\n"})
    runner = start_run("toy/pipe/nap.yaml")
    wait_for(lambda: records(env.home).get("nap", {}).get("pid"))
    pid = records(env.home)["nap"]["pid"]
    wait_for(lambda: len(_group_members(pid)) >= 2)  # /bin/sh and its sleep
    assert ml_process("canceljob", records(env.home)["nap"]["job_id"], timeout=60).returncode == 0
    runner.communicate(timeout=60)
    assert _group_members(pid) == [] and not done.exists()
    assert records(env.home)["nap"]["status"] == "canceled" and cached_entries(env.home) == 0


def _group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def test_canceljob_of_a_job_whose_run_was_killed(env, toy):
    """No `ml runpipe` is left to record the end: canceljob stops the orphan and records it."""
    write_tree(toy, {"pipe/slow.yaml": SLOW})
    runner = start_run("toy/pipe/slow.yaml")
    wait_for(lambda: env.executed() == ["a", "b"] and records(env.home).get("b", {}).get("pid"))
    runner.kill()
    runner.communicate(timeout=30)
    b = records(env.home)["b"]
    assert group_alive(b["pid"])  # the job lives on in its own process group
    assert ml_process("canceljob", b["job_id"], timeout=60).returncode == 0
    wait_for(lambda: not group_alive(b["pid"]))
    assert records(env.home)["b"]["status"] == "canceled"


def test_cancelpipe_stops_the_run_and_its_jobs(env, ml, toy):
    write_tree(toy, {"pipe/slow.yaml": SLOW})
    assert ml_process("cancelpipe", "toy/pipe/slow.yaml").returncode == 2  # not running
    runner = start_run("toy/pipe/slow.yaml")
    wait_for(lambda: env.executed() == ["a", "b"] and records(env.home).get("b", {}).get("pid"))
    b = records(env.home)["b"]
    result = ml_process("cancelpipe", "toy/pipe/slow.yaml", timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"stopped its run (pid {runner.pid})" in result.stdout and "b): canceled" in result.stdout
    runner.communicate(timeout=30)
    assert runner.returncode == 130  # interrupted
    assert not group_alive(b["pid"])
    assert records(env.home)["b"]["status"] == "canceled"
    assert cached_entries(env.home) == 1 and not any((env.home / "cache" / "tmp").iterdir())
    env.reset_log()
    report = json.loads(ml("runpipe", "toy/pipe/slow.yaml", "--set", "b.sleep=0", "--json").out)
    assert {j["name"]: j["result"] for j in report["jobs"]} == {"a": "cached", "b": "ran", "c": "ran"}


def test_cleanjob_cancels_every_running_job_of_this_home(env, toy):
    write_tree(toy, {"pipe/slow.yaml": SLOW, "pipe/nap.yaml": """
        jobs:
          z: {module: toy/module/step, output: {output: z1}, parameters: {name: z, sleep: 60}}
        """})
    runners = [start_run("toy/pipe/slow.yaml"), start_run("toy/pipe/nap.yaml")]
    wait_for(lambda: {"b", "z"} <= set(env.executed())
             and all(records(env.home).get(n, {}).get("pid") for n in ("b", "z")))
    result = ml_process("cleanjob", timeout=90)
    assert result.returncode == 0, result.stderr
    for runner in runners:
        runner.communicate(timeout=30)
    final = records(env.home)
    assert final["b"]["status"] == final["z"]["status"] == "canceled"
    assert not group_alive(final["b"]["pid"]) and not group_alive(final["z"]["pid"])
    assert "no job is running" in ml_process("cleanjob").stdout


# -- runall -----------------------------------------------------------------------------------------

def test_runall_runs_every_pipe_and_reports_the_worst(env, ml, toy):
    write_tree(toy, {"pipe/other.yaml": """
        jobs:
          solo: {module: toy/module/step, output: {output: solo_out}, parameters: {name: solo}}
        """})
    result = ml("runall")
    assert result.code == 0, result.err
    assert sorted(env.executed()) == ["a", "b", "c", "solo"]
    assert "== toy/pipe/chain.yaml" in result.err and "== toy/pipe/other.yaml" in result.err
    write_tree(toy, {"pipe/broken.yaml": "jobs: {x: {module: toy/module/nope}}\n"})
    env.reset_log()
    again = ml("runall", "toy", "--keep-going")
    assert again.code == 2 and "broken.yaml" in again.err and env.executed() == []
    write_tree(toy, {"pipe/broken.yaml": """
        jobs:
          bad: {module: toy/module/step, output: {output: bad_out}, parameters: {name: bad, fail: true}}
        """})
    assert ml("runall").code == 1 and env.executed() == ["bad"]


@pytest.mark.parametrize("command", ["canceljob", "viewjob"])
def test_job_commands_need_an_id(env, ml, command):
    result = ml(command)
    assert result.code == 2 and "job id is required" in result.err
