"""The Dask executor against a real cluster: `dask scheduler` + 3 `dask worker` processes on
loopback, each with a home of its own, and the real SeaweedFS server as the only shared store."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Env, ml_process, wait_for, write_tree
from daskfixture import Cluster
from s3fixture import free_ports

from mlpipe.store import records

CHAIN = "toy/pipe/chain.yaml"


def run_json(ml: Callable, *args: str, code: int = 0) -> dict:
    result = ml("runpipe", *args, "--json")
    assert result.code == code, result.err
    return json.loads(result.out)


def results(report: dict) -> dict[str, str]:
    return {job["name"]: job["result"] for job in report["jobs"]}


def driver_record(env: Env, report: dict, name: str) -> records.JobRecord:
    job_id = next(job["job_id"] for job in report["jobs"] if job["name"] == name)
    record = records.read_record(env.home / "jobs", job_id)
    assert record is not None
    return record


def mirror_keys(cluster: Cluster) -> list[str]:
    pages = cluster.s3.client().get_paginator("list_objects_v2").paginate(Bucket=cluster.bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def write_pipe(toy: Path, name: str, text: str) -> str:
    write_tree(toy, {f"pipe/{name}.yaml": text})
    return f"toy/pipe/{name}.yaml"


def running_on_workers(cluster: Cluster) -> list[tuple[Path, records.JobRecord]]:
    """(worker home, record) of every job a worker is running right now."""
    found = []
    for worker in cluster.workers:
        for path in (worker.home / "jobs").glob("*/job.json"):
            record = records.read_record(worker.home / "jobs", path.parent.name)
            if record is not None and record.status == records.RUNNING and record.pid:
                found.append((worker.home, record))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its dead parent's reaper) is not running
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


# -- where jobs run, what moves -------------------------------------------------------------

def test_jobs_run_on_workers_with_homes_of_their_own(cluster_env: Cluster, toy: Path, env: Env, ml) -> None:
    report = run_json(ml, CHAIN)
    assert results(report) == {"a": "ran", "b": "ran", "c": "ran"}
    assert sorted(cluster_env.executed()) == ["a", "b", "c"]
    worker_homes = {str(w.home) for w in cluster_env.workers}
    for name in "abc":
        record = driver_record(env, report, name)
        assert record.status == records.SUCCEEDED and record.worker is not None
        assert record.worker["home"] in worker_homes and record.worker["home"] != str(env.home)
        worker = cluster_env.worker_of(record.worker["home"])
        assert record.worker["pid"] == worker.pid and record.runner_pid == worker.pid
        # the worker keeps its own record of the job, in its own home
        assert records.read_record(worker.home / "jobs", record.job_id).status == records.SUCCEEDED
    # --fetch final (the default): only the leaf output came back to the driver
    paths = {job["name"]: Path(job["outputs"]["output"]) for job in report["jobs"]}
    assert paths["c"].read_text() == "seed\na \nb \nc \n"
    assert not paths["a"].exists() and not paths["b"].exists()
    keys = mirror_keys(cluster_env)
    for job in report["jobs"]:
        assert f"team/jobs/{job['job_id']}.json" in keys
        assert f"team/data/{Path(job['outputs']['output']).name}" in keys
    # the input file went by its content md5, the app's code as a bundle (a folder entry)
    seed_md5 = hashlib.md5(b"seed\n").hexdigest()
    assert f"team/data/{seed_md5}" in keys
    bundles = [k for k in keys if k.endswith("/module/step.py")]
    assert len(bundles) == 1 and not any("/data/seed.txt" in k for k in keys)


def test_a_rerun_executes_nothing_and_transfers_nothing(
        cluster_env: Cluster, toy: Path, ml, monkeypatch: pytest.MonkeyPatch) -> None:
    run_json(ml, CHAIN)
    import botocore.client

    calls: list[str] = []
    real = botocore.client.BaseClient._make_api_call

    def spy(self, operation, params):  # noqa: ANN001, ANN202 - botocore's own signature
        calls.append(operation)
        return real(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    result = ml("runpipe", CHAIN)
    assert result.code == 0, result.err
    assert "3 jobs up to date, nothing to do" in result.err
    assert sorted(cluster_env.executed()) == ["a", "b", "c"]  # nothing ran again
    assert calls == [], calls  # what is in the mirror was remembered: not even a listing


@pytest.mark.parametrize(("fetch", "local"), [("all", {"a", "b", "c"}), ("none", set())])
def test_fetch_decides_what_the_driver_pulls(cluster_env: Cluster, toy: Path, ml, fetch: str, local: set) -> None:
    report = run_json(ml, CHAIN, "--fetch", fetch)
    assert {job["name"] for job in report["jobs"] if Path(job["outputs"]["output"]).exists()} == local
    again = ml("runpipe", CHAIN, "--fetch", fetch)
    assert again.code == 0 and "nothing to do" in again.err


def test_another_home_on_the_same_mirror_runs_nothing(cluster_env: Cluster, toy: Path, env: Env, ml,
                                                      monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    run_json(ml, CHAIN)
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "home-b"))
    report = run_json(ml, CHAIN)
    assert results(report) == {"a": "cached", "b": "cached", "c": "pulled"}
    assert sorted(cluster_env.executed()) == ["a", "b", "c"]
    assert Path(report["jobs"][2]["outputs"]["output"]).read_text() == "seed\na \nb \nc \n"


def test_two_drivers_at_once_never_execute_a_job_twice(cluster_env: Cluster, toy: Path, env: Env,
                                                       tmp_path: Path) -> None:
    pipe = write_pipe(toy, "slow", """
        jobs:
          a: {module: toy/module/step, input: {inputs: file://toy/data/seed.txt}, output: {output: a_out},
              parameters: {name: a, sleep: 1.5}}
          b: {module: toy/module/step, input: {inputs: a_out}, output: {output: b_out}, parameters: {name: b}}
        """)
    drivers = [subprocess.Popen([sys.executable, "-m", "mlpipe", "runpipe", pipe], stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "MLPIPE_HOME": str(tmp_path / f"driver-{i}")}) for i in range(2)]
    for driver in drivers:
        _out, err = driver.communicate(timeout=120)
        assert driver.returncode == 0, err
    assert sorted(cluster_env.executed()) == ["a", "b"]


# -- failures -------------------------------------------------------------------------------

def test_a_jobs_own_failure_is_not_retried(cluster_env: Cluster, toy: Path, ml) -> None:
    pipe = write_pipe(toy, "bad", """
        jobs:
          boom: {module: toy/module/step, output: {output: x}, parameters: {name: boom, fail: true}}
        """)
    report = run_json(ml, pipe, code=1)
    job = report["jobs"][0]
    assert job["result"] == "failed" and "exit code 3" in job["error"]
    time.sleep(1.0)  # a retry would have started by now
    assert cluster_env.executed() == ["boom"]


def test_a_lost_worker_is_retried_elsewhere_and_the_mirror_holds_no_partial_object(
        cluster_env: Cluster, toy: Path, env: Env, tmp_path: Path) -> None:
    pipe = write_pipe(toy, "long", """
        jobs:
          long: {module: toy/module/step, input: {inputs: file://toy/data/seed.txt}, output: {output: x},
                 parameters: {name: long, sleep: 3}}
        """)
    driver = subprocess.Popen([sys.executable, "-m", "mlpipe", "runpipe", pipe, "--json"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    wait_for(lambda: running_on_workers(cluster_env), timeout=60)
    home, first = running_on_workers(cluster_env)[0]
    victim = cluster_env.worker_of(str(home))
    cluster_env.kill(victim)
    try:
        out, err = driver.communicate(timeout=120)
    finally:
        from mlpipe.engine.execute import stop_process_group

        stop_process_group(first.pid)  # the killed worker's job, orphaned
    assert driver.returncode == 0, err
    assert "long: its Dask worker was lost; resubmitted (1/2)" in err  # DASK_RETRIES, not Dask's own retry
    job = json.loads(out)["jobs"][0]
    assert job["result"] == "ran"
    record = records.read_record(env.home / "jobs", job["job_id"])
    assert record.worker["home"] != str(victim.home)  # it ran again, on another worker
    assert cluster_env.executed() == ["long", "long"]
    client = cluster_env.s3.client()
    for key in mirror_keys(cluster_env):
        if key.startswith("team/data/") and "/" not in key.removeprefix("team/data/"):
            if key.endswith(".json"):
                continue
            head = client.head_object(Bucket=cluster_env.bucket, Key=key)
            assert head["Metadata"].get("mlpipe-md5") == head["ETag"].strip('"'), key  # complete and whole


def test_a_worker_lost_more_often_than_dask_retries_fails_the_job_in_one_line(
        cluster_env: Cluster, toy: Path, env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = write_pipe(toy, "lost", """
        jobs:
          lost: {module: toy/module/step, input: {inputs: file://toy/data/seed.txt}, output: {output: x},
                 parameters: {name: lost, sleep: 3}}
          after: {module: toy/module/step, input: {inputs: x}, output: {output: y}, parameters: {name: after}}
        """)
    monkeypatch.setenv("MLPIPE_DASK_RETRIES", "0")
    driver = subprocess.Popen([sys.executable, "-m", "mlpipe", "runpipe", pipe, "--json"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    wait_for(lambda: running_on_workers(cluster_env), timeout=60)
    home, first = running_on_workers(cluster_env)[0]
    cluster_env.kill(cluster_env.worker_of(str(home)))
    try:
        out, err = driver.communicate(timeout=120)
    finally:
        from mlpipe.engine.execute import stop_process_group

        stop_process_group(first.pid)  # the killed worker's job, orphaned
    assert driver.returncode == 1, err
    assert "job 'lost': lost its Dask worker once (DASK_RETRIES=0)" in err
    assert "Traceback" not in err and "resubmitted" not in err
    assert results(json.loads(out)) == {"lost": "failed", "after": "skipped"}
    assert cluster_env.executed() == ["lost"]  # not run again, and nothing after it


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT", "cancelpipe"])
def test_stopping_the_run_cancels_the_job_and_the_worker_kills_its_process_group(
        cluster_env: Cluster, toy: Path, env: Env, stop: str) -> None:
    pipe = write_pipe(toy, "forever", """
        jobs:
          forever: {module: toy/module/step, output: {output: x}, parameters: {name: forever, sleep: 120}}
        """)
    driver = subprocess.Popen([sys.executable, "-m", "mlpipe", "runpipe", pipe], stderr=subprocess.PIPE, text=True)
    wait_for(lambda: running_on_workers(cluster_env), timeout=60)
    home, record = running_on_workers(cluster_env)[0]
    if stop == "cancelpipe":
        assert ml_process("cancelpipe", pipe, timeout=60).returncode == 0
    else:
        driver.send_signal(getattr(signal, stop))
    _out, err = driver.communicate(timeout=60)
    assert driver.returncode != 0
    wait_for(lambda: not alive(record.pid), timeout=20)
    wait_for(lambda: records.read_record(home / "jobs", record.job_id).status == records.CANCELED, timeout=10)


def test_dask_cancel_alone_does_not_stop_a_running_subprocess(dask_cluster: Cluster, tmp_path: Path) -> None:
    """Why the worker watches for cancellation: measured on the real cluster."""
    pid_file = tmp_path / "pid"
    with dask_cluster.client() as client:
        future = client.submit(subprocess.run, ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 30"],
                               key="plain-subprocess", pure=False)
        wait_for(pid_file.exists, timeout=30)
        wait_for(lambda: pid_file.read_text().strip() != "", timeout=5)
        pid = int(pid_file.read_text())
        future.cancel()
        time.sleep(2.0)
        try:
            assert alive(pid), "Dask's cancel stopped the subprocess after all"
        finally:
            os.kill(pid, signal.SIGKILL)


def test_an_unreachable_scheduler_exits_1_with_one_line(cluster_env: Cluster, toy: Path) -> None:
    address = f"tcp://127.0.0.1:{free_ports(1)[0]}"
    done = ml_process("runpipe", CHAIN, "--scheduler", address,
                      env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}, timeout=60)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and address in lines[0] and "Traceback" not in done.stderr, done.stderr
    assert cluster_env.executed() == []


def test_a_tcp_scheduler_without_a_mirror_exits_2_naming_the_setting(env: Env, toy: Path, ml) -> None:
    result = ml("runpipe", CHAIN, "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1")
    assert result.code == 2
    assert "S3_MIRROR" in result.err and "Traceback" not in result.err
    assert not (env.home / "jobs").exists() or not list((env.home / "jobs").glob("*/job.json"))


def test_bad_executor_settings_exit_2_before_anything_runs(env: Env, toy: Path, ml,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_EXECUTOR", "ray")
    assert "EXECUTOR" in ml("runpipe", CHAIN).err
    monkeypatch.setenv("MLPIPE_DASK_RETRIES", "-1")
    assert "DASK_RETRIES" in ml("runpipe", CHAIN).err and "at least 0" in ml("runpipe", CHAIN).err
    monkeypatch.setenv("MLPIPE_DASK_RETRIES", "0")  # no retries is a valid choice
    monkeypatch.setenv("MLPIPE_EXECUTOR", "dask")
    for scheduler, named in [("", "--scheduler"), ("local:0", "local:N"), ("somehost", "tcp://HOST:PORT")]:
        result = ml("runpipe", CHAIN, "--scheduler", scheduler)
        assert result.code == 2 and named in result.err, result.err
    write_tree(toy, {"module/gpu.yaml": """
        output: {output: {type: text}}
        resources: {GPU: many}
        cmd: python -m toy.module.step output
        """, "pipe/gpu.yaml": "jobs:\n  g: {module: toy/module/gpu, output: {output: g}}\n"})
    result = ml("runpipe", "toy/pipe/gpu.yaml", "--scheduler", "local:1")
    assert result.code == 2 and "resources.GPU" in result.err and "expected a positive number" in result.err
    assert env.executed() == []


def test_a_worker_refuses_another_mlpipe_or_python_naming_both(dask_cluster: Cluster) -> None:
    from mlpipe.engine.worker import python_version, run_job

    with dask_cluster.client() as client:
        outcome = client.submit(run_job, {"mlpipe": "9.9.9", "python": "3.1", "job": "train"}, pure=False).result()
    assert outcome["result"] == "failed"
    assert "mlpipe 9.9.9 on Python 3.1" in outcome["error"]
    import mlpipe

    assert f"mlpipe {mlpipe.__version__} on Python {python_version()}" in outcome["error"]


def test_resources_send_a_job_to_a_worker_that_has_them(cluster_env: Cluster, toy: Path, env: Env, ml) -> None:
    write_tree(toy, {"module/gpu.yaml": """
        output: {output: {type: text}}
        parameters: {name: {type: str}}
        resources: {GPU: 1}
        cmd: python -m toy.module.step --name name output
        """})
    pipe = write_pipe(toy, "gpus", "jobs:\n" + "".join(
        f"  g{i}: {{module: toy/module/gpu, output: {{output: g{i}}}, parameters: {{name: g{i}}}}}\n"
        for i in range(3)))
    report = run_json(ml, pipe, "-j", "3")
    gpu = next(w for w in cluster_env.workers if w.resources)
    assert {driver_record(env, report, f"g{i}").worker["home"] for i in range(3)} == {str(gpu.home)}


def test_dry_run_says_what_runs_remotely_and_what_the_mirror_has(cluster_env: Cluster, toy: Path, ml) -> None:
    before = json.loads(ml("runpipe", CHAIN, "-n", "--json").out)
    assert before["executor"] == "dask"
    assert [(j["action"], j["remote"], j["in_mirror"]) for j in before["jobs"]] == [("run", True, [])] * 3
    run_json(ml, CHAIN, "--fetch", "none")
    after = json.loads(ml("runpipe", CHAIN, "-n", "--json").out)
    # with --fetch final, c's output must come to the driver: a pull; a and b stay in the mirror
    assert [(j["status"], j["action"], j["in_mirror"]) for j in after["jobs"]] == [
        ("up-to-date", "none", ["output"]), ("up-to-date", "none", ["output"]), ("stale", "pull", ["output"])]
    table = ml("runpipe", CHAIN, "-n", "--fetch", "none")
    assert "all 3 jobs up to date" in table.out
    text = ml("runpipe", "toy/pipe/chain.yaml", "-n", "--set", "c.tag=new")
    assert "run on dask" in text.out and "in mirror" in text.out


def test_local_cluster_shares_the_local_cache_without_a_mirror(env: Env, toy: Path) -> None:
    done = ml_process("runpipe", CHAIN, "--executor", "dask", "--scheduler", "local:2", "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert results(report) == {"a": "ran", "b": "ran", "c": "ran"}
    assert all(Path(job["outputs"]["output"]).exists() for job in report["jobs"])  # one cache: all local
    pids = {driver_record(env, report, name).worker["pid"] for name in "abc"}
    assert pids and all(pid != os.getpid() for pid in pids)
    again = ml_process("runpipe", CHAIN, "--executor", "dask", "--scheduler", "local:2", timeout=120)
    assert again.returncode == 0 and "nothing to do" in again.stderr
    assert sorted(env.executed()) == ["a", "b", "c"]


def spec_of_a(cluster: Cluster, toy: Path, env: Env, report: dict) -> dict:
    """What a driver sends to run job `a` of the chain (see DaskExecutor.spec), after a run of it."""
    import mlpipe
    from mlpipe.engine.worker import python_version
    from mlpipe.remote.bundle import bundle_md5
    from mlpipe.store.digests import DigestCache

    job_a = next(job for job in report["jobs"] if job["name"] == "a")
    seed_md5 = hashlib.md5(b"seed\n").hexdigest()
    return {"mlpipe": mlpipe.__version__, "python": python_version(), "pipe": CHAIN, "job": "a",
            "module": "toy/module/step", "job_hash": job_a["job_id"], "params": {"name": "a"},
            "inputs": {"inputs": {"list": False, "refs": [{"data": seed_md5, "md5": seed_md5}]}},
            "outputs": {"output": Path(job_a["outputs"]["output"]).name}, "force": False, "mirror": cluster.mirror_url,
            "app": {"name": "toy", "bundle": bundle_md5(toy, DigestCache(env.home / "state" / "md5.sqlite"))}}


def test_a_worker_checks_the_mirror_first(cluster_env: Cluster, toy: Path, env: Env, ml) -> None:
    from mlpipe.engine.worker import run_job

    spec = spec_of_a(cluster_env, toy, env, run_json(ml, CHAIN))
    with cluster_env.client() as client:
        outcome = client.submit(run_job, spec, pure=False).result()
    assert outcome["result"] == "cached" and outcome["record"] is None
    assert outcome["entries"] == {spec["outputs"]["output"]: hashlib.md5(b"seed\na \n").hexdigest()}
    assert cluster_env.executed() == ["a", "b", "c"]  # not run again


@pytest.mark.parametrize("tamper", ["input md5", "job hash"])
def test_a_worker_checks_inputs_and_the_job_hash_before_running(cluster_env: Cluster, toy: Path, env: Env, ml,
                                                                tamper: str) -> None:
    from mlpipe.engine.worker import run_job

    spec = spec_of_a(cluster_env, toy, env, run_json(ml, CHAIN))  # the bundle and the input are in the mirror
    spec["force"] = True  # past the mirror check
    if tamper == "input md5":
        spec["inputs"]["inputs"]["refs"][0]["md5"] = "f" * 32
        expected = f"the driver hashed {'f' * 32}"
    else:
        spec["job_hash"] = "e" * 32
        expected = f"{'e' * 32} on the driver"
    with cluster_env.client() as client:
        outcome = client.submit(run_job, spec, pure=False).result()
    assert outcome["result"] == "failed" and expected in outcome["error"], outcome["error"]
    assert cluster_env.executed() == ["a", "b", "c"]  # refused before running anything


def test_a_sweep_runs_on_the_cluster_and_its_select_step_here(cluster_env: Cluster, toy: Path, env: Env, ml) -> None:
    from sweepapp import add_score_module

    add_score_module(toy)
    pipe = write_pipe(toy, "sel", """
        jobs:
          train:
            module: toy/module/score
            output: {model: model, metrics: metrics, result: result}
            sweep:
              grid: {value: [0.5, 0.9, 0.2], label: [a]}
            select: {metric: eval.acc, mode: max}
          use:
            module: toy/module/step
            input: {inputs: model}
            output: {output: used}
            parameters: {name: use}
        """)
    report = run_json(ml, pipe)
    assert set(results(report).values()) == {"ran"}
    use = next(job for job in report["jobs"] if job["name"] == "use")
    assert Path(use["outputs"]["output"]).read_text().splitlines()[0] == "model 0.9 a"
    member = driver_record(env, report, "train__value_0.9__label_a")
    assert member.worker is not None and member.sweep == {"job": "train", "point": {"value": 0.9, "label": "a"}}
    assert driver_record(env, report, "use").worker is not None  # it read the winner from the mirror
    assert "nothing to do" in ml("runpipe", pipe).err
