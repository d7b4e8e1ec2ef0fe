"""`ml sync push|pull|status [PIPE]` against a real SeaweedFS server."""

from __future__ import annotations

import gc
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest

# Test arguments named like the imported fixtures are how pytest injects them, not redefinitions.
from conftest import Env, write_tree
from s3fixture import S3Server

from mlpipe.remote import s3
from mlpipe.store.cache import LocalCache

CHAIN = "toy/pipe/chain.yaml"


@pytest.fixture
def mirror_url(env: Env, s3_env: dict[str, str], s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"s3://{s3_bucket}/team"
    monkeypatch.setenv("MLPIPE_S3_MIRROR", url)
    return url


class Requests:
    """Counts the S3 operations of every client MLPipe makes, and how many PUTs overlap."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-call.s3", self._before)
        client.meta.events.register("after-call.s3", self._after)
        return client

    def _before(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls.append(model.name)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _after(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.in_flight -= 1

    def count(self, name: str) -> int:
        return self.calls.count(name)

    def reset(self) -> None:
        self.calls, self.max_in_flight = [], 0


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> Requests:
    seen = Requests()
    make_client = s3.make_client
    monkeypatch.setattr(s3, "make_client", lambda *args, **kwargs: seen.attach(make_client(*args, **kwargs)))
    return seen


def fill_cache(home: Path, count: int, size: int = 100) -> list[str]:
    """`count` small entries made directly in the cache (no jobs): their data hashes."""
    cache = LocalCache(home / "cache" / "data", home / "cache" / "tmp")
    hashes = []
    for i in range(count):
        data = f"entry {i}\n".encode().ljust(size, b".")
        scratch = cache.new_scratch("fill-")
        (scratch / "f").write_bytes(data)
        data_hash = hashlib.md5(f"data {i}".encode()).hexdigest()
        cache.put(data_hash, scratch / "f", md5=hashlib.md5(data).hexdigest(), job_hash=hashlib.md5(b"j").hexdigest())
        scratch.rmdir()
        hashes.append(data_hash)
    return hashes


def sync_json(ml, *args: str) -> dict:
    result = ml("sync", *args, "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_push_of_1000_entries_lists_once_uploads_in_parallel_and_then_has_nothing_to_do(env, ml, mirror_url,
                                                                                         requests):
    fill_cache(env.home, 1000)

    first = ml("sync", "push")

    assert first.code == 0, first.err
    assert first.out.startswith(f"pushed 1000 entries (97.7 kB) to {mirror_url} in ")
    assert requests.count("ListObjectsV2") == 1  # one listing for 1,000 entries, no HEAD per object
    assert requests.count("HeadObject") == 0
    assert requests.count("PutObject") == 1000  # one object per file entry, its sidecar in its metadata
    assert requests.max_in_flight > 4  # in parallel
    requests.reset()

    second = sync_json(ml, "push")

    assert second["entries"] == 0 and second["present"] == 1000 and second["bytes"] == 0
    assert requests.calls in (["ListObjectsV2"], ["ListObjectsV2"] * 2)  # 1,000 keys: one or two pages
    assert sync_json(ml, "status")["counts"] == {"only_local": 0, "only_remote": 0, "both": 1000}


def test_pull_fills_an_empty_home_and_status_tells_the_difference(env, ml, mirror_url, tmp_path, monkeypatch):
    hashes = fill_cache(env.home, 30)
    assert sync_json(ml, "push")["entries"] == 30
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "home_b"))
    fill_cache(tmp_path / "home_b", 35)[30:]  # 30 the same, 5 only here

    status = sync_json(ml, "status")
    assert status["counts"] == {"only_local": 5, "only_remote": 0, "both": 30}
    assert status["mirror"] == mirror_url and status["pipe"] is None
    cache = LocalCache(tmp_path / "home_b" / "cache" / "data", tmp_path / "home_b" / "cache" / "tmp")
    for data_hash in hashes[:10]:
        cache.remove(data_hash)

    pulled = sync_json(ml, "pull")

    assert (pulled["entries"], pulled["present"], pulled["bytes"], pulled["problems"]) == (10, 20, 1000, [])
    assert all(cache.exists(h) for h in hashes)
    assert sync_json(ml, "pull")["entries"] == 0
    table = ml("sync", "status")
    assert "only local" in table.out and "both" in table.out


def test_sync_with_a_pipe_moves_only_the_data_it_reaches(env, ml, toy, mirror_url, tmp_path, monkeypatch):
    monkeypatch.setenv("MLPIPE_S3_SYNC", "false")  # no automatic push: `ml sync` does it all
    ml("runpipe", CHAIN)
    fill_cache(env.home, 2)  # not reached by the pipe

    pushed = sync_json(ml, "push", CHAIN)
    assert (pushed["entries"], pushed["pipe"]) == (3, CHAIN)
    assert sync_json(ml, "status")["counts"] == {"only_local": 2, "only_remote": 0, "both": 3}

    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "home_b"))
    before = sync_json(ml, "status", CHAIN)
    assert before["counts"] == {"only_local": 0, "only_remote": 1, "both": 0}  # b and c wait on a's output
    assert before["unresolved_jobs"] == ["b", "c"]
    pulled = sync_json(ml, "pull", CHAIN)  # resolves again after each round: the whole chain comes down
    assert pulled["entries"] == 3
    env.reset_log()
    result = ml("runpipe", CHAIN, "--json")
    assert {job["result"] for job in json.loads(result.out)["jobs"]} == {"cached"}
    assert env.executed() == []


def test_pull_reports_a_corrupt_entry_and_exits_1(env, ml, mirror_url, s3_server: S3Server, s3_bucket, tmp_path,
                                                   monkeypatch):
    hashes = fill_cache(env.home, 3)
    ml("sync", "push")
    s3_server.client().put_object(Bucket=s3_bucket, Key=f"team/data/{hashes[1]}", Body=b"garbage")
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "home_b"))

    result = ml("sync", "pull")

    assert result.code == 1
    assert result.out.startswith("pulled 2 entries")
    assert f"entry {hashes[1]} is corrupt" in result.err and "1 entries could not be pulled" in result.err
    assert "Traceback" not in result.err
    assert not LocalCache(tmp_path / "home_b" / "cache" / "data", tmp_path / "home_b" / "cache" / "tmp").exists(
        hashes[1])
    gc.collect()  # the corrupt entry's GET left no connection open (its socket would warn here: an error)


def test_push_refuses_a_local_entry_whose_bytes_changed_since_it_was_cached(env, ml, mirror_url, s3_server: S3Server,
                                                                            s3_bucket):
    hashes = fill_cache(env.home, 3)
    damaged = env.home / "cache" / "data" / hashes[1][:2] / hashes[1]
    damaged.chmod(0o644)
    damaged.write_bytes(damaged.read_bytes().replace(b"entry", b"ENTRY"))  # same size: only an md5 tells

    result = ml("sync", "push")

    assert result.code == 1
    assert f"local cache entry {hashes[1]}" in result.err and "not pushed" in result.err
    assert "Traceback" not in result.err
    keys = {item["Key"] for item in s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert f"team/data/{hashes[1]}" not in keys
    assert {f"team/data/{hashes[0]}", f"team/data/{hashes[2]}"} <= keys  # the good ones still go


def test_push_of_a_pipe_uploads_job_records_with_the_data(env, ml, toy, mirror_url, s3_server, s3_bucket,
                                                          monkeypatch):
    monkeypatch.setenv("MLPIPE_S3_SYNC", "false")
    report = json.loads(ml("runpipe", CHAIN, "--json").out)
    ml("sync", "push")
    keys = {item["Key"] for item in s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert {f"team/jobs/{job['job_id']}.json" for job in report["jobs"]} <= keys


def test_sync_without_a_mirror_is_a_usage_error(env, ml):
    result = ml("sync", "status")
    assert result.code == 2
    assert "S3_MIRROR is not set" in result.err


def test_sync_needs_an_action(env, ml):
    assert ml("sync").code == 2
    assert ml("sync", "upload").code == 2


def test_folder_entries_round_trip_through_sync(env, ml, toy, mirror_url, tmp_path, monkeypatch):
    write_tree(toy, {"data/folder/x.txt": "x\n", "data/folder/deep/y.txt": "y\n"})
    cache = LocalCache(env.home / "cache" / "data", env.home / "cache" / "tmp")
    scratch = cache.new_scratch("fill-")
    source = toy / "data" / "folder"
    (scratch / "out").mkdir()
    for rel in ("x.txt", "deep/y.txt"):
        (scratch / "out" / rel).parent.mkdir(parents=True, exist_ok=True)
        (scratch / "out" / rel).write_bytes((source / rel).read_bytes())
    from mlpipe.core.hashing import md5_file, md5_manifest

    md5 = md5_manifest([(rel, md5_file(source / rel)) for rel in ("x.txt", "deep/y.txt")])
    cache.put("f" * 32, scratch / "out", md5=md5, job_hash="0" * 32)
    assert sync_json(ml, "push")["entries"] == 1

    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "home_b"))
    assert sync_json(ml, "pull")["entries"] == 1
    pulled = LocalCache(tmp_path / "home_b" / "cache" / "data", tmp_path / "home_b" / "cache" / "tmp").get("f" * 32)
    assert pulled is not None and pulled.md5 == md5
    assert (pulled.path / "deep" / "y.txt").read_text() == "y\n"


def test_large_entries_go_multipart_and_are_hashed_as_their_ranges_land(env, ml, mirror_url, s3_server, s3_bucket,
                                                                        tmp_path, monkeypatch, requests):
    from mlpipe.remote import mirror

    monkeypatch.setattr(mirror, "LARGE", 8 * 1024)  # "large" from 8 KB, in ranges of 3,000 bytes
    monkeypatch.setattr(mirror, "LARGE_PART", 3000)
    hashes = fill_cache(env.home, 2, size=20_000)
    assert sync_json(ml, "push")["entries"] == 2
    assert requests.count("CreateMultipartUpload") == 2 and requests.count("PutObject") == 0
    client = s3_server.client()
    good = client.get_object(Bucket=s3_bucket, Key=f"team/data/{hashes[1]}")
    client.put_object(Bucket=s3_bucket, Key=f"team/data/{hashes[1]}", Body=good["Body"].read()[:-1],
                      Metadata=good["Metadata"])  # truncated by one byte, its metadata intact
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "home_b"))
    requests.reset()

    result = ml("sync", "pull", "--json")

    assert result.code == 1
    assert json.loads(result.out)["entries"] == 1
    assert f"team/data/{hashes[1]} has 19999 bytes, expected 20000" in result.err
    assert requests.count("GetObject") == 7  # ceil(20,000 / 3,000) ranges of the good one; none of the bad
    cache = LocalCache(tmp_path / "home_b" / "cache" / "data", tmp_path / "home_b" / "cache" / "tmp")
    pulled = cache.get(hashes[0])
    assert pulled is not None and pulled.path.read_bytes() == (
        LocalCache(env.home / "cache" / "data", env.home / "cache" / "tmp").path(hashes[0]).read_bytes())
    assert not cache.exists(hashes[1])
