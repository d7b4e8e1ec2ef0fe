"""`ml runjob --job_id ID`: rerun a recorded job by id or prefix, from the cache, with clear errors."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from pathlib import Path

import pytest
from conftest import write_tree

from mlpipe.core.errors import UriError
from mlpipe.core.uri import parse_uri
from mlpipe.store import records
from mlpipe.store.cache import LocalCache
from mlpipe.store.lock import lock_path

CHAIN = "toy/pipe/chain.yaml"


def run_chain(ml, *args: str) -> dict[str, dict]:
    report = json.loads(ml("runpipe", CHAIN, "--json", *args).out)
    return {job["name"]: job for job in report["jobs"]}


def test_listjob_then_runjob_by_prefix_reports_cached_outputs(env, ml, toy):
    jobs = run_chain(ml)
    env.reset_log()
    table = ml("listjob").out.splitlines()
    b_id = next(line.split()[0] for line in table[2:] if line.split()[2] == "b")  # pick an id, as the README says
    result = ml("runjob", "--job_id", b_id[:8])
    assert result.code == 0, result.err
    assert env.executed() == []
    assert f"job 'b' ({b_id}) is up to date" in result.err
    assert jobs["b"]["outputs"]["output"] in result.err


def test_force_runs_the_same_job_again_from_its_record(env, ml, toy):
    jobs = run_chain(ml, "--set", "b.tag=special")
    env.reset_log()
    result = ml("runjob", "--job_id", jobs["b"]["job_id"], "--force", "--json")
    assert result.code == 0, result.err
    assert env.executed() == ["b"]  # only b, with its recorded parameters, reading a's cached output
    report = json.loads(result.out)
    assert report["pipe"] == CHAIN
    [job] = report["jobs"]
    assert job["name"] == "b" and job["result"] == "ran"
    assert job["job_id"] == jobs["b"]["job_id"]  # same module, inputs, parameters: same job hash
    assert Path(job["outputs"]["output"]).read_text() == "seed\na \nb special\n"
    record = records.read_record(env.home / "jobs", job["job_id"])
    assert record.status == "succeeded" and record.pipe == CHAIN and record.parameters["tag"] == "special"
    env.reset_log()
    assert "nothing to do" in ml("runpipe", CHAIN, "--set", "b.tag=special").err
    assert env.executed() == []


def test_job_with_an_external_input_refetches_it(env, ml, toy):
    jobs = run_chain(ml)
    env.reset_log()
    (toy / "data" / "seed.txt").write_text("new seed\n")
    result = ml("runjob", "--job_id", jobs["a"]["job_id"][:10], "--json")
    assert result.code == 0, result.err
    assert env.executed() == ["a"]
    assert "is a new job now (input inputs changed)" in result.err
    [job] = json.loads(result.out)["jobs"]
    assert job["job_id"] != jobs["a"]["job_id"]
    assert Path(job["outputs"]["output"]).read_text() == "new seed\na \n"


def test_changed_module_source_is_a_new_job(env, ml, toy):
    jobs = run_chain(ml)
    env.reset_log()
    script = toy / "module" / "step.py"
    script.write_text(script.read_text() + "\n# changed\n")
    result = ml("runjob", "--job_id", jobs["c"]["job_id"][:6])
    assert result.code == 0, result.err
    assert "is a new job now (module toy/module/step changed since)" in result.err
    assert env.executed() == ["c"]


def test_failing_job_exits_1_and_points_at_its_log(env, ml, toy):
    jobs = run_chain(ml, "--set", "b.fail=true")
    env.reset_log()
    result = ml("runjob", "--job_id", jobs["b"]["job_id"][:8])
    assert result.code == 1
    assert env.executed() == ["b"]
    assert f"ml joblog {jobs['b']['job_id'][:12]}" in result.err


@pytest.mark.parametrize("prefix, message", [
    ("abc", "too short: give at least 6 characters"),
    ("0123456789", "no job record has an id starting with '0123456789'"),
])
def test_bad_ids_exit_2(env, ml, toy, prefix, message):
    run_chain(ml)
    result = ml("runjob", "--job_id", prefix)
    assert result.code == 2
    assert message in result.err
    assert "Traceback" not in result.err


def test_ambiguous_prefix_lists_the_candidates(env, ml, toy):
    jobs_dir = env.home / "jobs"
    for suffix, job in (("1" * 26, "first"), ("2" * 26, "second")):
        records.write_record(jobs_dir, records.JobRecord("abcdef" + suffix, CHAIN, job, "toy/module/step", {}, {}, {}))
    result = ml("runjob", "--job_id", "abcdef")
    assert result.code == 2
    assert "job id 'abcdef' is ambiguous" in result.err
    assert f"abcdef{'1' * 26}  {CHAIN} first" in result.err and f"abcdef{'2' * 26}  {CHAIN} second" in result.err
    assert ml("joblog", "abcdef1").code == 0  # a longer prefix is unique


def test_missing_input_names_the_pipe_and_job_that_produce_it(env, ml, toy):
    jobs = run_chain(ml)
    a_output = Path(jobs["a"]["outputs"]["output"]).name
    LocalCache(env.home / "cache" / "data", env.home / "cache" / "tmp").remove(a_output)
    env.reset_log()
    result = ml("runjob", "--job_id", jobs["b"]["job_id"][:8], "--force")
    assert result.code == 2
    assert f"input 'inputs' (data {a_output[:12]}) is no longer in the cache" in result.err
    assert f"output 'output' of job 'a' in pipe {CHAIN}" in result.err
    assert f"ml runjob --job_id {jobs['a']['job_id'][:12]}" in result.err
    assert env.executed() == []
    assert ml("runjob", "--job_id", jobs["a"]["job_id"][:8]).code == 0  # the way out it suggests
    assert ml("runjob", "--job_id", jobs["b"]["job_id"][:8]).code == 0


def test_unknown_module_is_a_clear_error(env, ml, toy):
    jobs = run_chain(ml)
    (toy / "module" / "step.yaml").rename(toy / "module" / "renamed.yaml")
    result = ml("runjob", "--job_id", jobs["a"]["job_id"][:8])
    assert result.code == 2
    assert "unknown module 'toy/module/step'" in result.err


def test_list_input_mixing_data_names_and_uris_gets_the_same_job_id(env, ml, toy):
    write_tree(toy, {"pipe/mix.yaml": """
        jobs:
          a: {module: toy/module/step, input: {inputs: file://toy/data/seed.txt}, output: {output: a_out},
              parameters: {name: a}}
          m: {module: toy/module/step, input: {inputs: [a_out, file://toy/data/seed.txt]}, output: {output: m_out},
              parameters: {name: m}}
        """})
    report = json.loads(ml("runpipe", "toy/pipe/mix.yaml", "--json").out)
    merged = report["jobs"][-1]
    env.reset_log()
    result = ml("runjob", "--job_id", merged["job_id"], "--force", "--json")
    assert result.code == 0, result.err
    [job] = json.loads(result.out)["jobs"]
    assert job["job_id"] == merged["job_id"] and env.executed() == ["m"]
    assert Path(job["outputs"]["output"]).read_text() == "seed\na \nseed\nm \n"


@pytest.mark.parametrize("raw, ok", [("cache://" + "0a" * 16, True), ("cache://0A" + "0" * 30, False),
                                     ("cache://abc", False), ("cache://" + "0" * 32 + "/x", False)])
def test_cache_uri_names_one_data_hash(raw, ok):
    if ok:
        assert parse_uri(raw).root == raw.removeprefix("cache://")
    else:
        with pytest.raises(UriError, match="expected cache://DATA_HASH"):
            parse_uri(raw)


def test_waits_while_its_pipe_runs(env, ml, toy):
    jobs = run_chain(ml)
    lock = lock_path(env.home / "locks", "pipe", CHAIN)
    fd = os.open(lock, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a running `ml runpipe` holds it
    threading.Timer(0.5, os.close, [fd]).start()
    started = time.monotonic()
    result = ml("runjob", "--job_id", jobs["a"]["job_id"][:8])
    assert result.code == 0 and time.monotonic() - started >= 0.4
    assert f"waiting for another run of {CHAIN} to finish" in result.err  # the same words as ml runpipe


def test_job_id_may_be_positional_like_joblog(env, ml, toy):
    jobs = run_chain(ml)
    env.reset_log()
    result = ml("runjob", jobs["b"]["job_id"][:8], "--force")
    assert result.code == 0, result.err
    assert env.executed() == ["b"]
    assert ml("runjob").code == 2  # an id is still required, one way or the other
    both = ml("runjob", jobs["b"]["job_id"][:8], "--job_id", jobs["a"]["job_id"][:8])
    assert both.code == 2 and "not both" in both.err
