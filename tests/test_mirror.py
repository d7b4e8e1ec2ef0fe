"""The S3 mirror as a shared job cache, against a real SeaweedFS server: two homes, one mirror."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

# Test arguments named like the imported fixtures are how pytest injects them, not redefinitions.
from conftest import Env, results, write_tree
from s3fixture import S3Server

from mlpipe.core.errors import UsageError
from mlpipe.core.hashing import md5_manifest
from mlpipe.home.settings import load_settings
from mlpipe.remote import open_mirror
from mlpipe.remote.mirror import S3Mirror
from mlpipe.remote.mirror_entry import (
    FILE,
    FOLDER,
    Corrupt,
    Sidecar,
    parse_mirror_url,
    parse_sidecar,
    sidecar_from_metadata,
)
from mlpipe.store.cache import LocalCache

CHAIN = "toy/pipe/chain.yaml"

TREE = '''
"""Write a folder with files at two depths; record the execution in $TOY_LOG."""
import os, pathlib, sys
with open(os.environ["TOY_LOG"], "a") as log:
    log.write("tree\\n")
out = pathlib.Path(sys.argv[1])
(out / "sub").mkdir(parents=True)
(out / "a.txt").write_text("A\\n")
(out / "sub" / "b.bin").write_bytes(bytes(range(256)) * 40)
'''

TREE_YAML = """
output:
  tree: {type: folder}
cmd: python -m toy.module.tree tree
"""


@pytest.fixture
def mirror_url(env: Env, s3_env: dict[str, str], s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Home A (the `env` home) and any other home in this test share this mirror."""
    url = f"s3://{s3_bucket}/team"
    monkeypatch.setenv("MLPIPE_S3_MIRROR", url)
    return url


def use_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("MLPIPE_HOME", str(home))


def run_report(ml: Callable, *args: str) -> tuple[dict, str]:
    result = ml("runpipe", *args, "--json")
    assert result.code == 0, result.err
    return json.loads(result.out), result.err


def outputs(report: dict) -> dict[str, bytes]:
    return {job["name"]: Path(job["outputs"]["output"]).read_bytes() for job in report["jobs"]}


def mirror_keys(s3_server: S3Server, bucket: str) -> list[str]:
    pages = s3_server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "warning" in line]


# -- pure parts -------------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "expected"), [
    ("s3://bkt/team", ("bkt", "team/")), ("s3://bkt/team/", ("bkt", "team/")), ("s3://bkt", ("bkt", "")),
    ("s3://bkt/a/b", ("bkt", "a/b/")),
])
def test_parse_mirror_url(url: str, expected: tuple[str, str]) -> None:
    assert parse_mirror_url(url) == expected


@pytest.mark.parametrize("url", ["https://bkt/team", "s3://Bad_Bucket/x", "bkt/team"])
def test_bad_mirror_url_is_a_usage_error(url: str) -> None:
    with pytest.raises(UsageError, match="S3_MIRROR"):
        parse_mirror_url(url)


def test_folder_sidecar_round_trips() -> None:
    manifest = {"a.txt": (2, "m1"), "sub/b.bin": (3, "m2")}
    sidecar = Sidecar("h" * 32, FOLDER, md5_manifest([("a.txt", "m1"), ("sub/b.bin", "m2")]), 5, "j" * 32, 1.5,
                      manifest)
    assert parse_sidecar("h" * 32, sidecar.to_json()) == sidecar


def test_file_sidecar_travels_as_object_metadata() -> None:
    sidecar = Sidecar("h" * 32, FILE, "m" * 32, 3, "j" * 32, 1.5)
    assert sidecar_from_metadata("h" * 32, sidecar.to_metadata()) == sidecar
    with pytest.raises(Corrupt, match="no MLPipe metadata"):
        sidecar_from_metadata("h" * 32, {})


@pytest.mark.parametrize("rel", ["../escape", "/abs", "a//b", "a/./b", "a/.."])
def test_sidecar_paths_cannot_leave_the_folder(rel: str) -> None:
    raw = json.dumps({"kind": "folder", "md5": "x", "size": 1, "job_hash": "j", "created": 0,
                      "manifest": {rel: {"md5": "m", "size": 1}}}).encode()
    with pytest.raises(Corrupt, match="unsafe path"):
        parse_sidecar("h" * 32, raw)


def test_no_mirror_without_setting_or_with_s3_sync_off(tmp_path: Path) -> None:
    home = {"MLPIPE_HOME": str(tmp_path)}
    assert open_mirror(load_settings(env=home)) is None
    assert open_mirror(load_settings(env={**home, "MLPIPE_S3_MIRROR": "s3://bkt/x", "MLPIPE_S3_SYNC": "false"})) is None
    assert open_mirror(load_settings(env={**home, "MLPIPE_S3_MIRROR": "s3://bkt/x"})) is not None


# -- two homes, one mirror --------------------------------------------------------------------
def test_second_home_pulls_every_job_and_runs_none(env, ml, toy, mirror_url, s3_server, s3_bucket,
                                                   tmp_path, monkeypatch):
    first, _ = run_report(ml, CHAIN)
    assert results(first) == {"a": "ran", "b": "ran", "c": "ran"}
    job_ids = sorted(job["job_id"] for job in first["jobs"])
    data_hashes = sorted(Path(job["outputs"]["output"]).name for job in first["jobs"])
    assert mirror_keys(s3_server, s3_bucket) == sorted(
        [f"team/data/{h}" for h in data_hashes] + [f"team/jobs/{j}.json" for j in job_ids])

    use_home(monkeypatch, tmp_path / "home_b")
    env.reset_log()
    second, err = run_report(ml, CHAIN)

    assert results(second) == {"a": "pulled", "b": "pulled", "c": "pulled"}
    assert env.executed() == []
    assert not (tmp_path / "home_b" / "jobs").exists() or not any(
        p.is_dir() for p in (tmp_path / "home_b" / "jobs").iterdir())  # no job ran here, so no record
    assert outputs(second) == outputs(first)
    assert [job["job_id"] for job in second["jobs"]] == [job["job_id"] for job in first["jobs"]]
    assert warnings(err) == []
    record = json.loads(s3_server.client().get_object(Bucket=s3_bucket, Key=f"team/jobs/{job_ids[0]}.json")
                        ["Body"].read())
    assert record["status"] == "succeeded" and record["job_id"] == job_ids[0]
    env.reset_log()
    again, _ = run_report(ml, CHAIN)
    assert results(again) == {"a": "cached", "b": "cached", "c": "cached"}


def test_deleted_local_entries_are_pulled_back_not_rerun(env, ml, toy, mirror_url):
    first, _ = run_report(ml, CHAIN)
    cache = LocalCache(env.home / "cache" / "data", env.home / "cache" / "tmp")
    for job in first["jobs"]:
        if job["name"] in ("a", "c"):
            cache.remove(Path(job["outputs"]["output"]).name)
    env.reset_log()
    second, _ = run_report(ml, CHAIN)
    assert results(second) == {"a": "pulled", "b": "cached", "c": "pulled"}
    assert env.executed() == []
    assert outputs(second) == outputs(first)


def test_a_cache_uri_input_only_the_mirror_still_has_is_pulled(env, ml, toy, mirror_url):
    first, _ = run_report(ml, CHAIN)
    a_out = Path(next(job for job in first["jobs"] if job["name"] == "a")["outputs"]["output"])
    LocalCache(env.home / "cache" / "data", env.home / "cache" / "tmp").remove(a_out.name)
    write_tree(toy, {"pipe/reuse.yaml": f"""
        jobs:
          again:
            module: toy/module/step
            input: {{inputs: "cache://{a_out.name}"}}
            output: {{output: again_out}}
            parameters: {{name: again}}
        """})
    env.reset_log()
    report, _ = run_report(ml, "toy/pipe/reuse.yaml")
    assert env.executed() == ["again"]
    assert a_out.read_bytes() == outputs(first)["a"]  # back in the local cache, from the mirror
    assert Path(report["jobs"][0]["outputs"]["output"]).read_bytes() == outputs(first)["a"] + b"again \n"


@pytest.mark.parametrize("damage", ["overwritten", "truncated", "foreign"])
def test_corrupt_object_is_not_cached_and_the_job_runs_locally(env, ml, toy, mirror_url, s3_server, s3_bucket,
                                                               tmp_path, monkeypatch, damage):
    first, _ = run_report(ml, CHAIN)
    b_hash = Path(first["jobs"][1]["outputs"]["output"]).name
    key = f"team/data/{b_hash}"
    client = s3_server.client()
    good = client.get_object(Bucket=s3_bucket, Key=key)
    body, metadata = good["Body"].read(), good["Metadata"]
    bad = {"overwritten": (b"X" * len(body), metadata), "truncated": (body[:-3], metadata),
           "foreign": (b"someone else's bytes", {})}[damage]
    client.put_object(Bucket=s3_bucket, Key=key, Body=bad[0], Metadata=bad[1])

    use_home(monkeypatch, tmp_path / "home_b")
    env.reset_log()
    second, err = run_report(ml, CHAIN)

    assert results(second) == {"a": "pulled", "b": "ran", "c": "pulled"}  # b's bytes are the same again
    assert env.executed() == ["b"]
    assert outputs(second) == outputs(first)  # the corrupt bytes were never cached
    assert len(warnings(err)) == 1
    assert f"mirror {mirror_url}: entry {b_hash} is corrupt" in err and "the job runs locally" in err
    assert not any((tmp_path / "home_b" / "cache" / "tmp").iterdir())
    assert client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == body  # repaired by B's push


def test_dry_run_says_pull_for_outputs_only_in_the_mirror(env, ml, toy, mirror_url, tmp_path, monkeypatch):
    run_report(ml, CHAIN)
    use_home(monkeypatch, tmp_path / "home_b")
    result = ml("runpipe", CHAIN, "--dry-run", "--json")
    jobs = {job["name"]: job for job in json.loads(result.out)["jobs"]}
    assert jobs["a"]["status"] == "stale" and jobs["a"]["action"] == "pull"
    assert jobs["b"]["action"] == "run" and jobs["b"]["job_id"] is None  # known once a's output is here
    assert not (tmp_path / "home_b" / "cache" / "data").exists() or not any(
        (tmp_path / "home_b" / "cache" / "data").iterdir())  # a dry run writes nothing


def test_s3_sync_false_turns_automatic_push_and_pull_off(env, ml, toy, mirror_url, s3_server, s3_bucket,
                                                         tmp_path, monkeypatch):
    monkeypatch.setenv("MLPIPE_S3_SYNC", "false")
    run_report(ml, CHAIN)
    assert mirror_keys(s3_server, s3_bucket) == []
    monkeypatch.setenv("MLPIPE_S3_SYNC", "true")
    assert ml("sync", "push").code == 0  # `ml sync` works whatever S3_SYNC says
    monkeypatch.setenv("MLPIPE_S3_SYNC", "false")
    use_home(monkeypatch, tmp_path / "home_b")
    env.reset_log()
    second, _ = run_report(ml, CHAIN)
    assert results(second) == {"a": "ran", "b": "ran", "c": "ran"}


# -- folders ------------------------------------------------------------------------------------
@pytest.fixture
def tree_pipe(toy: Path) -> str:
    write_tree(toy, {"module/tree.py": TREE, "module/tree.yaml": TREE_YAML, "pipe/tree.yaml": """
        jobs:
          make: {module: toy/module/tree, output: {tree: tree_out}}
          read:
            module: toy/module/step
            input: {inputs: file://toy/data/seed.txt}
            output: {output: read_out}
            parameters: {name: read}
        """})
    return "toy/pipe/tree.yaml"


def test_folder_output_syncs_as_prefix_plus_manifest(env, ml, tree_pipe, mirror_url, s3_server, s3_bucket,
                                                     tmp_path, monkeypatch):
    first, _ = run_report(ml, tree_pipe)
    folder = Path(first["jobs"][0]["outputs"]["tree"])
    h = folder.name
    keys = mirror_keys(s3_server, s3_bucket)
    assert {f"team/data/{h}/a.txt", f"team/data/{h}/sub/b.bin", f"team/data/{h}.json"} <= set(keys)
    sidecar = json.loads(s3_server.client().get_object(Bucket=s3_bucket, Key=f"team/data/{h}.json")["Body"].read())
    assert sidecar["kind"] == "folder" and set(sidecar["manifest"]) == {"a.txt", "sub/b.bin"}
    assert sidecar["size"] == 2 + 10240

    use_home(monkeypatch, tmp_path / "home_b")
    env.reset_log()
    second, _ = run_report(ml, tree_pipe)
    assert results(second)["make"] == "pulled" and env.executed() == []
    pulled = Path(second["jobs"][0]["outputs"]["tree"])
    assert sorted(p.relative_to(pulled).as_posix() for p in pulled.rglob("*")) == ["a.txt", "sub", "sub/b.bin"]
    assert (pulled / "sub" / "b.bin").read_bytes() == (folder / "sub" / "b.bin").read_bytes()


def test_pulled_folder_is_complete_or_absent(env, ml, tree_pipe, mirror_url, s3_server, s3_bucket,
                                             tmp_path, monkeypatch):
    first, _ = run_report(ml, tree_pipe)
    h = Path(first["jobs"][0]["outputs"]["tree"]).name
    s3_server.client().delete_object(Bucket=s3_bucket, Key=f"team/data/{h}/sub/b.bin")  # a lost file
    use_home(monkeypatch, tmp_path / "home_b")
    settings = load_settings()
    problems: list[str] = []
    with S3Mirror(settings, on_problem=problems.append) as mirror:
        assert mirror.pull([h]) is False
    cache = LocalCache(settings.data_dir, settings.scratch_dir)
    assert not cache.exists(h) and not cache.path(h).exists()
    assert not any(settings.scratch_dir.iterdir())
    assert len(problems) == 1 and f"team/data/{h}/sub/b.bin is missing" in problems[0]


def test_interrupted_folder_push_resumes_without_uploading_twice(env, ml, tree_pipe, mirror_url, s3_server,
                                                                 s3_bucket, monkeypatch):
    monkeypatch.setenv("MLPIPE_S3_SYNC", "false")
    first, _ = run_report(ml, tree_pipe)
    folder = Path(first["jobs"][0]["outputs"]["tree"])
    client = s3_server.client()
    for rel in ("a.txt", "sub/b.bin"):  # what a push killed before the sidecar left behind
        client.put_object(Bucket=s3_bucket, Key=f"team/data/{folder.name}/{rel}", Body=(folder / rel).read_bytes())
    settings = load_settings()
    with S3Mirror(settings) as mirror:
        assert folder.name not in mirror.remote()  # no sidecar: not complete
        calls: list[str] = []
        mirror.client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
        entry = LocalCache(settings.data_dir, settings.scratch_dir).get(folder.name)
        result = mirror.push_entries([entry], lambda job_hash: None)
    assert result.entries == 1 and result.problems == []
    assert calls == ["ListObjectsV2", "PutObject"]  # the folder's own listing, then only the sidecar


# -- the mirror goes away -----------------------------------------------------------------------
def test_unreachable_mirror_warns_once_and_the_pipe_runs_locally(env, ml, toy, mirror_url, s3_server, s3_env):
    s3_server.stop()
    try:
        report, err = run_report(ml, CHAIN)
        push = ml("sync", "push")
    finally:
        s3_server.start()
    assert results(report) == {"a": "ran", "b": "ran", "c": "ran"}
    assert len(warnings(err)) == 1
    assert f"S3 mirror {mirror_url} failed" in err and "cannot reach S3 endpoint" in err
    assert push.code == 1
    assert push.err.startswith("ml sync: s3://") and "cannot reach S3 endpoint" in push.err
    assert "Traceback" not in push.err
    for secret in (s3_env["AWS_SECRET_ACCESS_KEY"], s3_env["AWS_ACCESS_KEY_ID"]):
        assert secret not in err + push.err + push.out


def test_server_stopped_mid_run_leaves_one_warning_and_a_finished_pipe(env, toy, mirror_url, s3_server):
    proc = subprocess.Popen([sys.executable, "-m", "mlpipe", "runpipe", CHAIN, "--set", "a.sleep=2", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while env.executed() != ["a"] and time.monotonic() < deadline:
            time.sleep(0.05)
        s3_server.stop()  # a is running; its push and everything after it find no server
        out, err = proc.communicate(timeout=120)
    finally:
        s3_server.start()
    assert proc.returncode == 0, err
    assert results(json.loads(out)) == {"a": "ran", "b": "ran", "c": "ran"}
    assert len(warnings(err)) == 1 and f"S3 mirror {mirror_url} failed" in err
