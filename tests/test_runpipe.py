"""`ml runpipe` as make: what reruns, what is reused, failures, dry-run, locking, signals."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TOY_STEP_YAML, ml_process, results, run_json, write_tree

from mlpipe.store.records import job_ids, read_record

CHAIN = "toy/pipe/chain.yaml"


def test_first_run_executes_everything_and_publishes_outputs(env, ml, toy):
    report = run_json(ml, CHAIN)
    assert results(report) == {"a": "ran", "b": "ran", "c": "ran"}
    assert env.executed() == ["a", "b", "c"]
    final = Path(report["jobs"][-1]["outputs"]["output"])
    assert final.read_text() == "seed\na \nb \nc \n"
    assert final.is_relative_to(env.home / "cache" / "data")
    assert final.parent.name == final.name[:2]
    sidecar = json.loads(final.with_name(final.name + ".json").read_text())
    assert sidecar["job_hash"] == report["jobs"][-1]["job_id"]
    assert not os.access(final, os.W_OK) or os.geteuid() == 0  # published bytes are read-only


def test_rerun_executes_nothing_and_prints_one_line(env, ml, toy):
    ml("runpipe", CHAIN)
    env.reset_log()
    result = ml("runpipe", CHAIN)
    assert result.code == 0
    assert env.executed() == []
    assert result.err.strip().count("\n") == 0
    assert "nothing to do" in result.err


def test_parameter_change_reruns_job_and_dependants_and_revert_is_a_cache_hit(env, ml, toy):
    ml("runpipe", CHAIN)
    env.reset_log()
    report = run_json(ml, CHAIN, "--set", "b.tag=new")
    assert results(report) == {"a": "cached", "b": "ran", "c": "ran"}
    assert env.executed() == ["b", "c"]
    env.reset_log()
    report = run_json(ml, CHAIN)  # back to the original parameters
    assert env.executed() == []
    assert set(results(report).values()) == {"cached"}


def test_editing_module_source_reruns_its_jobs(env, ml, toy):
    ml("runpipe", CHAIN)
    env.reset_log()
    script = toy / "module" / "step.py"
    script.write_text(script.read_text() + "\n# a comment changes the source md5\n")
    run_json(ml, CHAIN)
    assert env.executed() == ["a", "b", "c"]


def test_version_pin_ignores_cosmetic_source_edits(env, ml, toy):
    yaml_path = toy / "module" / "step.yaml"
    yaml_path.write_text(yaml_path.read_text() + 'version: "2"\n')
    ml("runpipe", CHAIN)
    env.reset_log()
    script = toy / "module" / "step.py"
    script.write_text(script.read_text() + "\n# cosmetic\n")
    run_json(ml, CHAIN)
    assert env.executed() == []


def test_byte_identical_upstream_output_does_not_rerun_downstream(env, ml, toy):
    write_tree(toy, {"pipe/cutoff.yaml": """
        jobs:
          a:
            module: toy/module/step
            input: {inputs: file://toy/data/seed.txt}
            output: {output: a_out}
            parameters: {name: a, constant: true}
          b:
            module: toy/module/step
            input: {inputs: a_out}
            output: {output: b_out}
            parameters: {name: b}
        """})
    ml("runpipe", "toy/pipe/cutoff.yaml")
    env.reset_log()
    (toy / "data" / "seed.txt").write_text("a different seed\n")
    report = run_json(ml, "toy/pipe/cutoff.yaml")
    assert env.executed() == ["a"]  # a reran, wrote the same bytes: b is a cache hit
    assert results(report) == {"a": "ran", "b": "cached"}


def test_changed_external_input_reruns_readers(env, ml, toy):
    ml("runpipe", CHAIN)
    env.reset_log()
    dry = json.loads(ml("runpipe", CHAIN, "--dry-run", "--json").out)
    assert {j["status"] for j in dry["jobs"]} == {"up-to-date"}
    (toy / "data" / "seed.txt").write_text("new seed\n")
    dry = json.loads(ml("runpipe", CHAIN, "--dry-run", "--json").out)
    assert [j["reasons"] for j in dry["jobs"]] == [["input inputs changed"], ["upstream a stale"], ["upstream a stale"]]
    run_json(ml, CHAIN)
    assert env.executed() == ["a", "b", "c"]


def test_cross_pipe_reuse(env, ml, toy):
    ml("runpipe", CHAIN)
    write_tree(toy, {"pipe/longer.yaml": (toy / "pipe" / "chain.yaml").read_text() + """
  d:
    module: toy/module/step
    input: {inputs: c_out}
    output: {output: d_out}
    parameters: {name: d}
"""})
    env.reset_log()
    report = run_json(ml, "toy/pipe/longer.yaml")
    assert results(report) == {"a": "cached", "b": "cached", "c": "cached", "d": "ran"}
    assert env.executed() == ["d"]


def test_failing_job_caches_nothing_records_failure_and_skips_downstream(env, ml, toy):
    report = run_json(ml, CHAIN, "--set", "b.fail=true")
    assert results(report) == {"a": "ran", "b": "failed", "c": "skipped"}
    assert ml("runpipe", CHAIN, "--set", "b.fail=true").code == 1
    failed = next(j for j in report["jobs"] if j["name"] == "b")
    record = json.loads((env.home / "jobs" / failed["job_id"] / "job.json").read_text())
    assert record["status"] == "failed" and record["exit_code"] == 3
    assert record["pipe"] == CHAIN and record["job"] == "b" and record["module"] == "toy/module/step"
    cached = [p for p in (env.home / "cache" / "data").rglob("*.json")]
    assert len(cached) == 1  # only a's output
    assert not list((env.home / "cache" / "tmp").iterdir())  # no scratch left behind


def test_keep_going_runs_independent_branches(env, ml, toy):
    write_tree(toy, {"pipe/branches.yaml": """
        jobs:
          bad:
            module: toy/module/step
            output: {output: bad_out}
            parameters: {name: bad, fail: true}
          after_bad:
            module: toy/module/step
            input: {inputs: bad_out}
            output: {output: x}
            parameters: {name: after_bad}
          good:
            module: toy/module/step
            output: {output: good_out}
            parameters: {name: good}
        """})
    report = run_json(ml, "toy/pipe/branches.yaml", "--keep-going")
    assert results(report) == {"bad": "failed", "after_bad": "skipped", "good": "ran"}


def test_job_without_its_output_fails(env, ml, toy):
    write_tree(toy, {"module/lazy.py": "print('I write nothing')\n", "module/lazy.yaml": """
        output: {result: {type: text}}
        cmd: python -m toy.module.lazy
        """, "pipe/lazy.yaml": """
        jobs:
          lazy: {module: toy/module/lazy, output: {result: r}}
        """})
    result = ml("runpipe", "toy/pipe/lazy.yaml")
    assert result.code == 1
    assert "did not write output(s): result" in result.err


@pytest.mark.parametrize("form", ["argv", "shell"])
def test_shell_metacharacters_in_values_run_nothing(env, ml, toy, tmp_path, form):
    if form == "shell":  # the same module as a shell template (docs/compat.md): values stay data
        write_tree(toy, {"module/step.yaml": TOY_STEP_YAML.replace("cmd: ", "cmd: true && ")})
        assert json.loads(ml("listmodule", "toy", "--json").out)[0]["shell"] is True
    marker = tmp_path / "pwned"
    for value in (f"; touch {marker}", f"$(touch {marker})", f"`touch {marker}`", f"| touch {marker}",
                  f"' ; touch {marker} '", f'" && touch {marker} "'):
        report = run_json(ml, CHAIN, "--set", f"a.tag={value}")
        assert results(report)["a"] == "ran"
        output = Path(report["jobs"][0]["outputs"]["output"]).read_text()
        assert value in output  # passed through as one literal argument
        argv = json.loads((env.home / "jobs" / report["jobs"][0]["job_id"] / "job.json").read_text())["argv"]
        assert (argv[:2] == ["/bin/sh", "-c"]) == (form == "shell")
    assert not marker.exists()


@pytest.mark.parametrize("pipe, message", [
    ("jobs: {a: {module: toy/module/step, output: {output: o}, parameters: {sleep: fast}}}",
     "parameters.sleep: expected float"),
    ("jobs: {a: {module: toy/module/nope, output: {output: o}}}", "unknown module 'toy/module/nope'"),
    ("jobs: {a: {module: toy/module/step, output: {result: o}}}", "has no output 'result'"),
    ("jobs: {a: {module: toy/module/step, output: {output: o}, input: {inputs: missing_name}}}",
     "unknown data name 'missing_name'"),
    ("jobs: {a: {module: toy/module/step, output: {output: o}, input: {inputs: 'file://toy/../../etc/passwd'}}}",
     "'..' is not allowed"),
    ("jobs: {a: {module: toy/module/step, output: {output: o}, input: {inputs: 'file://toy/data/none.txt'}}}",
     "no such file"),
    ("jobs: {a: {module: toy/module/step, output: {output: o}}, b: {module: toy/module/step, output: {output: o}}}",
     "data name 'o' is already an output of job 'a'"),
    ("jobs: {a: {module: toy/module/step, output: {output: x}, input: {inputs: y}},"
     " b: {module: toy/module/step, output: {output: y}, input: {inputs: x}}}", "cycle"),
    ("jobs: [unclosed", "invalid YAML"),
])
def test_invalid_pipes_exit_2_before_anything_runs(env, ml, toy, pipe, message):
    write_tree(toy, {"pipe/bad.yaml": pipe})
    result = ml("runpipe", "toy/pipe/bad.yaml")
    assert result.code == 2
    assert message in result.err
    assert "bad.yaml" in result.err
    assert "Traceback" not in result.err
    assert env.executed() == []
    assert not (env.home / "jobs").exists() or not list((env.home / "jobs").iterdir())


def test_invalid_pipe_reports_every_problem_at_once(env, ml, toy):
    write_tree(toy, {"pipe/bad.yaml": """
        jobs:
          a: {module: toy/module/step, output: {output: o}, parameters: {nme: x}}
          b: {module: toy/module/step, output: {outptu: p}}
        """})
    err = ml("runpipe", "toy/pipe/bad.yaml").err
    assert "job 'a': parameters.nme: module 'toy/module/step' has no parameter 'nme' (did you mean 'name'?)" in err
    assert "job 'b': output.outptu" in err and "has no output 'outptu' (did you mean 'output'?)" in err


def test_an_unknown_key_hides_no_other_problem(env, ml, toy):
    write_tree(toy, {"pipe/bad.yaml": """
        jobs:
          a: {module: toy/module/step, output: {output: o}, paramters: {name: a}}
          b: {module: toy/module/nope, output: {output: p}}
          c: {module: toy/module/step, input: {inputs: oo}, output: {output: q}}
          d: {module: toy/module/step, output: {output: r}, parameters: {sleep: fast}}
          e: {module: toy/module/step, input: {inputs: file://toy/data/none.txt}, output: {output: s}}
        """})
    result = ml("runpipe", "toy/pipe/bad.yaml")
    assert result.code == 2
    expected = ["job 'a': job: unknown key 'paramters' (did you mean 'parameters'?)",
                "job 'b': module: unknown module 'toy/module/nope'",
                "job 'c': input.inputs: unknown data name 'oo' (did you mean 'o'?)",
                "job 'd': parameters.sleep: expected float",
                "job 'e': input.inputs: file://toy/data/none.txt: no such file"]
    for message in expected:
        assert message in result.err
    assert len(result.err.strip().splitlines()) == len(expected), result.err  # each once, nothing spurious
    assert env.executed() == [] and not list((env.home / "jobs").iterdir())
    assert ml("runpipe", "toy/pipe/bad.yaml", "-n").err == result.err


def test_broken_job_fields_are_not_reported_again_as_missing(env, ml, toy):
    write_tree(toy, {"pipe/bad.yaml": """
        jobs:
          a: {output: {output: o}}
          b: {module: toy/module/step, input: {inputs: o}, output: {output: [x]}, parameters: [1]}
        """})
    result = ml("runpipe", "toy/pipe/bad.yaml")
    assert result.code == 2
    assert "job 'a': module: missing module id" in result.err
    assert "job 'b': output.output: expected a data name or a URI" in result.err
    assert "job 'b': parameters: expected a mapping" in result.err
    assert "unknown data name" not in result.err and "is not given" not in result.err
    assert len(result.err.strip().splitlines()) == 3, result.err


def test_unknown_pipe_and_bad_usage_exit_2(env, ml, toy):
    assert ml("runpipe", "toy/pipe/chian.yaml").code == 2
    assert "did you mean 'toy/pipe/chain.yaml'" in ml("runpipe", "toy/pipe/chian.yaml").err
    assert ml("runpipe", CHAIN, "--set", "nodot=1").code == 2
    assert ml("runpipe", CHAIN, "--set", "zz.tag=1").code == 2


def test_pipe_given_as_a_path(env, ml, toy, monkeypatch):
    monkeypatch.setenv("MLPIPE_APPS", "")
    report = run_json(ml, str(toy / "pipe" / "chain.yaml"))
    assert report["pipe"] == CHAIN
    assert set(results(report).values()) == {"ran"}


def test_dry_run_explains_and_writes_nothing(env, ml, toy):
    dry = json.loads(ml("runpipe", CHAIN, "-n", "--json").out)
    assert [(j["name"], j["status"], j["action"]) for j in dry["jobs"]] == [
        ("a", "stale", "run"), ("b", "stale", "run"), ("c", "stale", "run")]
    assert dry["jobs"][0]["reasons"] == ["never run"] and dry["jobs"][0]["job_id"]
    assert dry["jobs"][1]["job_id"] is None and dry["jobs"][1]["reasons"] == ["upstream a stale"]
    assert env.executed() == []
    assert not list((env.home / "cache" / "data").rglob("*.json"))
    ml("runpipe", CHAIN)
    dry = json.loads(ml("runpipe", CHAIN, "-n", "--json", "--set", "b.tag=x").out)
    assert dry["jobs"][1]["reasons"] == ["parameter tag changed ('' -> 'x')"]
    assert dry["jobs"][2] == {"name": "c", "job_id": None, "status": "stale", "action": "run",
                              "reasons": ["upstream b stale"]}
    text = ml("runpipe", CHAIN, "-n").out
    assert "all 3 jobs up to date" in text


def test_dry_run_says_output_missing_after_cache_loss(env, ml, toy):
    report = run_json(ml, CHAIN)
    final = Path(report["jobs"][-1]["outputs"]["output"])
    final.with_name(final.name + ".json").unlink()
    dry = json.loads(ml("runpipe", CHAIN, "-n", "--json").out)
    assert dry["jobs"][2]["reasons"] == ["output output missing from the cache"]
    env.reset_log()
    run_json(ml, CHAIN)
    assert env.executed() == ["c"]


def test_force_reruns_everything(env, ml, toy):
    ml("runpipe", CHAIN)
    env.reset_log()
    report = run_json(ml, CHAIN, "--force")
    assert env.executed() == ["a", "b", "c"]
    assert set(results(report).values()) == {"ran"}


def test_parallel_jobs_overlap(env, ml, toy):
    write_tree(toy, {"pipe/wide.yaml": """
        jobs:
          s1: {module: toy/module/step, output: {output: o1}, parameters: {name: s1, sleep: 1.0}}
          s2: {module: toy/module/step, output: {output: o2}, parameters: {name: s2, sleep: 1.0}}
        """})
    # the baseline: the same two jobs one after the other, measured here (a loaded machine slows both)
    serial, report = _timed(lambda: run_json(ml, "toy/pipe/wide.yaml", "-j", "1"))
    assert set(results(report).values()) == {"ran"}
    parallel, report = _timed(lambda: run_json(ml, "toy/pipe/wide.yaml", "-j", "2", "--force"))
    assert set(results(report).values()) == {"ran"}
    assert parallel < serial - 0.5, f"-j 2 took {parallel:.2f}s, -j 1 {serial:.2f}s: the 1 s jobs did not overlap"


def _timed(call):
    started = time.monotonic()
    value = call()
    return time.monotonic() - started, value


def test_concurrent_runs_of_one_pipe_execute_each_job_once(env, toy):
    write_tree(toy, {"pipe/slow.yaml": """
        jobs:
          a: {module: toy/module/step, output: {output: o1}, parameters: {name: a, sleep: 0.5}}
          b: {module: toy/module/step, input: {inputs: o1}, output: {output: o2}, parameters: {name: b}}
        """})
    procs = [subprocess.Popen([sys.executable, "-m", "mlpipe", "runpipe", "toy/pipe/slow.yaml"],
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errs = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert sorted(env.executed()) == ["a", "b"]
    assert any("waiting for another run" in e for e in errs)


def test_no_wait_exits_75_while_the_pipe_runs(env, toy):
    write_tree(toy, {"pipe/slow.yaml": """
        jobs:
          a: {module: toy/module/step, output: {output: o1}, parameters: {name: a, sleep: 3}}
        """})
    first = subprocess.Popen([sys.executable, "-m", "mlpipe", "runpipe", "toy/pipe/slow.yaml"],
                             stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: env.executed() == ["a"])
    second = ml_process("runpipe", "toy/pipe/slow.yaml", "--no-wait", timeout=30)
    assert second.returncode == 75
    assert "already running" in second.stderr
    first.communicate(timeout=60)
    assert first.returncode == 0


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_leaves_no_partial_output_and_rerun_recovers(env, ml, toy, sig):
    write_tree(toy, {"pipe/slow.yaml": """
        jobs:
          a: {module: toy/module/step, output: {output: o1}, parameters: {name: a}}
          b: {module: toy/module/step, input: {inputs: o1}, output: {output: o2}, parameters: {name: b, sleep: 30}}
        """})
    proc = subprocess.Popen([sys.executable, "-m", "mlpipe", "runpipe", "toy/pipe/slow.yaml"],
                            stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: env.executed() == ["a", "b"])
    proc.send_signal(sig)
    proc.communicate(timeout=30)
    assert proc.returncode == (-9 if sig == signal.SIGKILL else 130)
    assert len(list((env.home / "cache" / "data").rglob("*.json"))) == 1  # a's output only
    jobs = env.home / "jobs"
    b_records = [vars(r) for r in (read_record(jobs, j) for j in job_ids(jobs)) if r is not None and r.job == "b"]
    if sig == signal.SIGTERM:
        assert b_records[0]["status"] == "failed"
        assert not any((env.home / "cache" / "tmp").iterdir())
    else:  # the orphaned job may still run; kill its group so the rerun is clean
        os.killpg(b_records[0]["pid"], signal.SIGKILL) if _alive(b_records[0]["pid"]) else None
    env.reset_log()
    report = run_json(ml, "toy/pipe/slow.yaml", "--set", "b.sleep=0")
    assert results(report) == {"a": "cached", "b": "ran"}
    assert env.executed() == ["b"]


def test_dodo_template_lists_the_same_tasks(env, ml, toy):
    repo = Path(__file__).resolve().parent.parent
    doit = [sys.executable, "-m", "doit", "-f", str(repo / "dodo_template.py"), f"pipe={CHAIN}"]
    listed = subprocess.run([*doit, "list", "--all", "--quiet"], capture_output=True, text=True, cwd=repo)
    assert listed.returncode == 0, listed.stderr
    names = set(listed.stdout.split())
    assert {"a", "b", "c"} <= names
    assert len([n for n in names if n.startswith("fetch:")]) == 1
    ran = subprocess.run([*doit, "run"], capture_output=True, text=True, cwd=repo)
    assert ran.returncode == 0, ran.stderr
    assert env.executed() == ["a", "b", "c"]
    env.reset_log()
    assert "nothing to do" in ml("runpipe", CHAIN).err  # same DB, same cache
    assert env.executed() == []


def test_the_doit_db_keeps_each_jobs_manifest_once(env, ml, toy):
    report = run_json(ml, CHAIN)
    with sqlite3.connect(env.home / "doit" / "toy__pipe__chain.sqlite3") as db:
        rows = {task: json.loads(data) for task, data in db.execute("select task_id, task_data from doit")}
    for job in report["jobs"]:
        row = rows[job["name"]]
        assert row["_values_:"]["job_hash"] == job["job_id"]
        assert "result:" not in row  # the same manifest again, which doubled every row


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_job_output_is_streamed_with_a_prefix_on_a_terminal(env, toy):
    import pty

    write_tree(toy, {"module/chatty.py": "import sys\nprint('hello from the job')\nopen(sys.argv[1], 'w')\n",
                     "module/chatty.yaml": "output: {o: {type: text}}\ncmd: python -m toy.module.chatty o\n",
                     "pipe/chatty.yaml": "jobs:\n  talk: {module: toy/module/chatty, output: {o: x}}\n"})
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "mlpipe", "runpipe", "toy/pipe/chatty.yaml"],
                            stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=30) == 0
    assert b"[talk] hello from the job" in seen
    record = next((env.home / "jobs").glob("*/stdout.log"))
    assert record.read_text() == "hello from the job\n"  # the log keeps the output too


def test_captured_stderr_gets_no_streamed_job_output(env, toy):
    result = ml_process("runpipe", CHAIN)
    assert result.returncode == 0
    assert "\r" not in result.stderr and "[a] " not in result.stderr


def test_two_pipes_sharing_a_job_run_at_once_and_execute_it_once(env, toy):
    shared = "  shared: {module: toy/module/step, output: {output: s}, parameters: {name: shared, sleep: 1.0}}\n"
    write_tree(toy, {
        "pipe/one.yaml": "jobs:\n" + shared
        + "  one: {module: toy/module/step, input: {inputs: s}, output: {output: o}, parameters: {name: one}}\n",
        "pipe/two.yaml": "jobs:\n" + shared
        + "  two: {module: toy/module/step, input: {inputs: s}, output: {output: o}, parameters: {name: two}}\n",
    })
    procs = [subprocess.Popen([sys.executable, "-m", "mlpipe", "runpipe", f"toy/pipe/{name}.yaml", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in ("one", "two")]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    assert sorted(env.executed()) == ["one", "shared", "two"]
    shared_results = sorted(results(json.loads(out))["shared"] for out, _err in outs)
    assert shared_results == ["cached", "ran"]


def test_editing_a_file_listed_in_source_reruns_the_module(env, ml, toy):
    yaml_path = toy / "module" / "step.yaml"
    yaml_path.write_text(yaml_path.read_text() + "source: [lib/*.py]\n")
    write_tree(toy, {"lib/helpers.py": "X = 1\n"})
    ml("runpipe", CHAIN)
    env.reset_log()
    (toy / "lib" / "helpers.py").write_text("X = 2\n")
    dry = json.loads(ml("runpipe", CHAIN, "-n", "--json").out)
    assert dry["jobs"][0]["reasons"] == ["module source changed"]
    run_json(ml, CHAIN)
    assert env.executed() == ["a", "b", "c"]
