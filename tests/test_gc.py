"""`ml gc`: remove exactly the old entries and records no pipe reaches; never what a pipe needs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from conftest import ml_unprivileged, write_tree

from mlpipe.store import records
from mlpipe.store.lock import hold_lock, lock_path

CHAIN = "toy/pipe/chain.yaml"
DAY = 86400


def run_chain(ml, *args: str) -> dict[str, dict]:
    result = ml("runpipe", CHAIN, "--json", *args)
    assert result.code == 0, result.err
    return {job["name"]: job for job in json.loads(result.out)["jobs"]}


def age_everything(home: Path, days: float) -> None:
    """Make every cache entry and job record `days` older (as if written back then)."""
    shift = days * DAY
    for sidecar in (home / "cache" / "data").rglob("*.json"):
        meta = json.loads(sidecar.read_text())
        meta["created"] -= shift
        sidecar.write_text(json.dumps(meta))
    for path in (home / "jobs").glob("*/job.json"):
        record = json.loads(path.read_text())
        record["started"] -= shift
        record["ended"] = record["ended"] - shift if record["ended"] else None
        path.write_text(json.dumps(record))
    (home / "jobs" / records.INDEX_NAME).unlink()  # rebuilt from job.json on the next listing


def cached(home: Path) -> set[str]:
    return {p.stem for p in (home / "cache" / "data").rglob("*.json")}


def recorded(home: Path) -> set[str]:
    return records.job_ids(home / "jobs")


def outputs(jobs: dict[str, dict]) -> set[str]:
    return {Path(p).name for job in jobs.values() for p in job["outputs"].values()}


def ids(jobs: dict[str, dict]) -> set[str]:
    return {job["job_id"] for job in jobs.values()}


def test_removes_exactly_the_old_unreachable_entries_and_records(env, ml, toy):
    current = run_chain(ml)
    old = run_chain(ml, "--set", "b.tag=old")  # b and c at other parameters: no longer reached
    old = {name: job for name, job in old.items() if name != "a"}  # a is shared
    age_everything(env.home, 40)

    dry = ml("gc", "--dry-run")
    assert dry.code == 0, dry.err
    assert "would remove 2 cache entries" in dry.out and "2 job records" in dry.out
    assert "output 'output' of job 'b' in toy/pipe/chain.yaml" in dry.out
    assert cached(env.home) == outputs(current) | outputs(old)  # a dry run deletes nothing
    assert recorded(env.home) == ids(current) | ids(old)

    result = ml("gc")
    assert result.code == 0, result.err
    assert "removed 2 cache entries" in result.out and "kept 6 that pipes reach" in result.out
    assert cached(env.home) == outputs(current)
    assert recorded(env.home) == ids(current)
    assert {j["job_id"] for j in json.loads(ml("listjob", "--json").out)} == ids(current)
    env.reset_log()
    assert "nothing to do" in ml("runpipe", CHAIN).err  # nothing the pipe needs was removed
    assert env.executed() == []


def test_keeps_what_is_younger_than_keep_days(env, ml, toy):
    run_chain(ml)
    run_chain(ml, "--set", "b.tag=old")
    age_everything(env.home, 10)
    before = (cached(env.home), recorded(env.home))
    result = ml("gc")
    assert "removed 0 cache entries (0 B) and 0 job records (0 B)" in result.out
    assert "4 younger than 30 days" in result.out
    assert (cached(env.home), recorded(env.home)) == before
    assert "removed 2 cache entries" in ml("gc", "--keep-days", "5").out
    assert ml("gc", "--keep-days", "-1").code == 2


def test_a_removed_pipe_releases_everything(env, ml, toy):
    run_chain(ml)
    age_everything(env.home, 40)
    (toy / "pipe" / "chain.yaml").unlink()
    result = ml("gc")
    assert "removed 3 cache entries" in result.out and "3 job records" in result.out
    assert cached(env.home) == set() and recorded(env.home) == set()
    assert ml("listjob", "--json").out.strip() == "[]"


def test_jobs_whose_hash_is_unknown_keep_their_newest_record(env, ml, toy):
    jobs = run_chain(ml)
    age_everything(env.home, 40)
    (toy / "data" / "seed.txt").unlink()  # a's input is gone: no job hash can be computed
    result = ml("gc")
    assert "removed 0 cache entries" in result.out
    assert cached(env.home) == outputs(jobs) and recorded(env.home) == ids(jobs)


def test_a_running_pipe_keeps_everything_it_recorded(env, ml, toy):
    run_chain(ml)
    run_chain(ml, "--set", "b.tag=old")
    age_everything(env.home, 40)
    before = (cached(env.home), recorded(env.home))
    with hold_lock(lock_path(env.home / "locks", "pipe", CHAIN)):  # as `ml runpipe` does while it runs
        result = ml("gc")
    assert f"note: {CHAIN} is running: kept everything recorded for it" in result.err
    assert (cached(env.home), recorded(env.home)) == before
    assert "removed 2 cache entries" in ml("gc").out  # once it is done


def test_a_running_job_keeps_its_inputs_even_from_another_pipe(env, ml, toy):
    old = run_chain(ml, "--set", "a.tag=old")
    run_chain(ml)
    age_everything(env.home, 40)
    old_a = Path(old["a"]["outputs"]["output"]).name
    running = records.JobRecord("f" * 32, "other/pipe/elsewhere.yaml", "reader", "toy/module/step", {}, {},
                                {"output": "e" * 32}, started=time.time(), pid=os.getpid(),
                                input_refs={"inputs": [f"data:{old_a}"]})
    records.write_record(env.home / "jobs", running)
    result = ml("gc")
    assert "removed 2 cache entries" in result.out  # old b and c; old a is read by the running job
    assert old_a in cached(env.home) and "f" * 32 in recorded(env.home)


def test_an_invalid_pipe_keeps_everything_it_recorded(env, ml, toy):
    jobs = run_chain(ml)
    age_everything(env.home, 40)
    write_tree(toy, {"pipe/chain.yaml": "jobs: [broken"})
    result = ml("gc")
    assert f"{CHAIN} does not load" in result.err
    assert cached(env.home) == outputs(jobs) and recorded(env.home) == ids(jobs)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_mode, p.stat().st_mtime_ns) for p in [root, *root.rglob("*")]}


def test_dry_run_works_on_a_read_only_home_and_writes_nothing(env, ml, toy):
    run_chain(ml, "--set", "b.tag=old")  # b and c at other parameters: unreachable now
    run_chain(ml)
    age_everything(env.home, 40)
    ml("listjob")  # rebuild the index, as any listing would
    os.utime(toy / "data" / "seed.txt")  # same bytes, new mtime: its md5 is computed again, not memoised
    for path in [env.home, *env.home.rglob("*")]:  # every file and folder read-only, as on a read-only mount
        path.chmod(path.stat().st_mode & ~0o222)
    before = snapshot(env.home)
    try:
        dry = ml_unprivileged("gc", "--dry-run")
        after = snapshot(env.home)
    finally:
        for path, (mode, _mtime) in before.items():
            os.chmod(path, mode)
    assert dry.returncode == 0, dry.stderr
    assert "would remove 2 cache entries" in dry.stdout and "2 job records" in dry.stdout
    assert after == before
