"""Remote inputs and exports through `ml runpipe`, against real servers on loopback.

Each scheme goes through the same life a cron job sees: the first run downloads and runs, the
next downloads and runs nothing, a changed remote makes `--dry-run` name the input and a run
re-executes exactly its readers. Errors exit 1 (2 when the pipe itself is wrong) with one line
that names the URI, no traceback, nothing cached and nothing downstream run.
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import git
import pytest
from conftest import Env, Result, ml_process, write_tree
from gitremote import GitRemote
from pytest_httpserver import HTTPServer
from s3fixture import S3Server
from werkzeug import Response

from mlpipe.sources.http import HttpSource

MlRunner = Callable[..., Result]

PIPE = "toy/pipe/remote.yaml"

# A module for folder inputs (an S3 prefix, a git folder): "relpath: content" for every file.
CATDIR = '''
"""Write "relpath: content" for every file under a folder; record the execution in $TOY_LOG."""
import argparse, os

parser = argparse.ArgumentParser()
parser.add_argument("--name", default="catdir")
parser.add_argument("folder")
parser.add_argument("output")
args = parser.parse_args()
with open(os.environ["TOY_LOG"], "a") as log:
    log.write(args.name + "\\n")
found = []
for root, _dirs, files in os.walk(args.folder):
    for name in files:
        path = os.path.join(root, name)
        found.append((os.path.relpath(path, args.folder), open(path).read()))
with open(args.output, "w") as out:
    for rel, text in sorted(found):
        out.write(f"{rel}: {text}")
'''

CATDIR_YAML = """
input:
  folder: {type: folder}
output:
  output: {type: text}
parameters:
  name: {type: str, default: catdir}
cmd: python -m toy.module.catdir --name name folder output
"""


def reader_pipe(toy: Path, value: str | dict[str, str], module: str = "step") -> None:
    """`toy/pipe/remote.yaml`: reader (the remote input) -> after, and a bystander on a local file."""
    field = "folder" if module == "catdir" else "inputs"
    write_tree(toy, {
        "module/catdir.py": CATDIR,
        "module/catdir.yaml": CATDIR_YAML,
        "pipe/remote.yaml": f"""
            jobs:
              reader:
                module: toy/module/{module}
                input: {{{field}: {json.dumps(value)}}}
                output: {{output: read_out}}
                parameters: {{name: reader}}
              after:
                module: toy/module/step
                input: {{inputs: read_out}}
                output: {{output: after_out}}
                parameters: {{name: after}}
              bystander:
                module: toy/module/step
                input: {{inputs: file://toy/data/seed.txt}}
                output: {{output: other_out}}
                parameters: {{name: bystander}}
            """,
    })


def run_json(ml: MlRunner, *args: str) -> tuple[Result, dict[str, Any]]:
    result = ml("runpipe", PIPE, *args, "--json")
    return result, json.loads(result.out)


def by_name(report: dict[str, Any], key: str) -> dict[str, Any]:
    return {job["name"]: job[key] for job in report["jobs"]}


def output_of(report: dict[str, Any], job: str) -> str:
    return Path(by_name(report, "outputs")[job]["output"]).read_text()


def cache_entries(env: Env) -> list[Path]:
    data = env.home / "cache" / "data"
    return [p for p in data.rglob("*") if p.is_file()] if data.exists() else []


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def assert_lifecycle(ml: MlRunner, env: Env, uri: str, change: Callable[[], None], downloads: Callable[[], int],
                     requests: Callable[[], int], first: str, second: str) -> None:
    """First run downloads once and runs; a rerun makes one small request (HEAD, listing,
    ls-remote) and runs nothing; after `change` only the readers rerun."""
    dry = json.loads(ml("runpipe", PIPE, "--dry-run", "--json").out)
    assert by_name(dry, "reasons") == {"reader": ["never run"], "after": ["upstream reader stale"],
                                       "bystander": ["never run"]}
    assert downloads() == 0
    result, report = run_json(ml)
    assert result.code == 0, result.err
    assert sorted(env.executed()) == ["after", "bystander", "reader"]
    assert output_of(report, "reader").startswith(first)
    assert downloads() == 1

    env.reset_log()
    before = requests()
    result = ml("runpipe", PIPE)
    assert (result.code, env.executed(), downloads(), requests() - before) == (0, [], 1, 1)
    assert "nothing to do" in result.err

    change()
    dry = json.loads(ml("runpipe", PIPE, "--dry-run", "--json").out)
    status = {job["name"]: (job["status"], job["reasons"]) for job in dry["jobs"]}
    assert status["reader"][0] == "stale"
    assert any(r.startswith("input ") and uri in r for r in status["reader"][1]), status["reader"]
    assert status["after"] == ("stale", ["upstream reader stale"])
    assert status["bystander"] == ("up-to-date", [])
    assert downloads() == 1  # --dry-run looks, it never downloads

    result, report = run_json(ml)
    assert result.code == 0, result.err
    assert env.executed() == ["reader", "after"]
    assert by_name(report, "result") == {"reader": "ran", "after": "ran", "bystander": "cached"}
    assert output_of(report, "reader").startswith(second)
    assert downloads() == 2


def assert_clean_failure(result: Result, env: Env, *needles: str, code: int = 1) -> None:
    """Exit `code`, a line naming each needle, no traceback, no job executed, nothing cached."""
    assert result.code == code, result.err
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if all(n in line for n in needles)]
    assert lines, result.err
    assert env.executed() == []
    assert cache_entries(env) == []


# -- HTTP ------------------------------------------------------------------------------------


def gets(server: HTTPServer, path: str = "/data.tsv") -> int:
    return sum(1 for req, _resp in server.log if req.method == "GET" and req.path == path)


def serve(server: HTTPServer, body: bytes, headers: dict[str, str] | None = None, status: int = 200) -> None:
    server.clear_all_handlers()
    server.expect_request("/data.tsv").respond_with_data(body, status=status, headers=headers or {})


def test_http_input_is_downloaded_once_and_a_new_etag_reruns_its_readers(env, ml, toy, httpserver: HTTPServer):
    serve(httpserver, b"http v1\n", {"ETag": '"v1"'})
    uri = httpserver.url_for("/data.tsv")
    reader_pipe(toy, uri)

    assert_lifecycle(ml, env, uri, lambda: serve(httpserver, b"http v2\n", {"ETag": '"v2"'}),
                     lambda: gets(httpserver), lambda: len(httpserver.log), first="http v1\n", second="http v2\n")


def test_http_server_without_version_headers_is_downloaded_each_run_and_compared_by_md5(
    env, ml, toy, httpserver: HTTPServer
):
    body = [b"no validators\n"]
    # a streamed body: no ETag, no Last-Modified, no Content-Length
    httpserver.expect_request("/data.tsv").respond_with_handler(lambda _req: Response(iter(list(body))))
    uri = httpserver.url_for("/data.tsv")
    reader_pipe(toy, uri)
    assert ml("runpipe", PIPE).code == 0
    env.reset_log()

    dry = json.loads(ml("runpipe", PIPE, "--dry-run", "--json").out)
    assert by_name(dry, "reasons")["reader"] == [
        f"input inputs may have changed ({uri}: no version to compare, downloaded again by every run)"]
    result = ml("runpipe", PIPE)
    assert (result.code, env.executed(), gets(httpserver)) == (0, [], 2)  # same md5: nothing reruns

    body[0] = b"new content\n"
    result, report = run_json(ml)
    assert (result.code, env.executed()) == (0, ["reader", "after"])
    assert output_of(report, "reader").startswith("new content\n")


def test_http_content_change_of_the_same_length_without_etag_reruns_its_readers(
    env, ml, toy, httpserver: HTTPServer
):
    serve(httpserver, b"day 1\n")  # a dynamic endpoint: Content-Length, but no ETag or Last-Modified
    uri = httpserver.url_for("/data.tsv")
    reader_pipe(toy, uri)
    assert ml("runpipe", PIPE).code == 0
    env.reset_log()

    serve(httpserver, b"day 2\n")
    result, report = run_json(ml)

    assert (result.code, env.executed()) == (0, ["reader", "after"])
    assert output_of(report, "reader").startswith("day 2\n")


# -- S3 --------------------------------------------------------------------------------------


@pytest.fixture
def s3(env: Env, s3_env: dict[str, str], s3_server: S3Server, s3_bucket: str) -> S3Server:
    """The test S3 server, with `env` set up first (it clears AWS_* and MLPIPE_* variables)."""
    return s3_server


class S3Calls(list[tuple[str, str | None]]):
    """(operation, key) of every S3 request sent by any botocore client in this process."""

    def count_of(self, operation: str, key: str | None = None) -> int:
        return sum(1 for op, k in self if op == operation and (key is None or k == key))


@pytest.fixture
def s3_calls(monkeypatch: pytest.MonkeyPatch) -> S3Calls:
    from botocore.client import BaseClient

    calls = S3Calls()
    original = BaseClient._make_api_call

    def counting(self: Any, operation: str, params: dict[str, Any]) -> Any:
        calls.append((operation, params.get("Key")))
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    return calls


def test_s3_object_input_is_downloaded_once_and_an_overwrite_reruns_its_readers(
    env, ml, toy, s3: S3Server, s3_bucket: str, s3_calls: S3Calls
):
    client = s3.client()
    client.put_object(Bucket=s3_bucket, Key="data/train.tsv", Body=b"s3 v1\n")
    uri = f"s3://{s3_bucket}/data/train.tsv"
    reader_pipe(toy, uri)

    assert_lifecycle(ml, env, uri, lambda: client.put_object(Bucket=s3_bucket, Key="data/train.tsv", Body=b"s3 v2\n"),
                     lambda: s3_calls.count_of("GetObject"), lambda: len(s3_calls), first="s3 v1\n", second="s3 v2\n")


def test_s3_prefix_input_is_a_folder_and_changing_one_object_reruns_its_readers(
    env, ml, toy, s3: S3Server, s3_bucket: str, s3_calls: S3Calls
):
    client = s3.client()
    for key, body in {"set/a.txt": b"alpha\n", "set/sub/b.txt": b"beta\n", "other/c.txt": b"not mine\n"}.items():
        client.put_object(Bucket=s3_bucket, Key=key, Body=body)
    uri = f"s3://{s3_bucket}/set/"
    reader_pipe(toy, uri, module="catdir")

    assert_lifecycle(ml, env, uri, lambda: client.put_object(Bucket=s3_bucket, Key="set/sub/b.txt", Body=b"BETA\n"),
                     lambda: s3_calls.count_of("GetObject", "set/sub/b.txt"), lambda: len(s3_calls),
                     first="a.txt: alpha\nsub/b.txt: beta\n", second="a.txt: alpha\nsub/b.txt: BETA\n")
    assert s3_calls.count_of("GetObject", "other/c.txt") == 0


def test_s3_endpoint_and_keys_fall_back_to_s3cfg_in_home(
    env, ml, toy, s3: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
):
    s3.client().put_object(Bucket=s3_bucket, Key="data/x.tsv", Body=b"via s3cfg\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLPIPE_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name)
    write_tree(Path.home(), {".s3cfg": f"""
        [default]
        access_key = {s3.access_key}
        secret_key = {s3.secret_key}
        host_base = 127.0.0.1:{s3.ports["s3"]}
        host_bucket = 127.0.0.1:{s3.ports["s3"]}
        use_https = False
        """})
    reader_pipe(toy, f"s3://{s3_bucket}/data/x.tsv")

    result, report = run_json(ml)

    assert result.code == 0, result.err
    assert output_of(report, "reader").startswith("via s3cfg\n")


# -- git -------------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> GitRemote:
    return GitRemote(tmp_path / "git")


@pytest.fixture
def git_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The git subcommand of every git process GitPython starts in this process."""
    calls: list[str] = []
    original = git.cmd.Git.execute

    def recording(self: git.cmd.Git, command: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(command, list | tuple):
            calls.append(next((c for c in command[1:] if not str(c).startswith("-")), ""))
        return original(self, command, *args, **kwargs)

    monkeypatch.setattr(git.cmd.Git, "execute", recording)
    return calls


def fetch_heads(env: Env) -> dict[Path, tuple[int, bytes]]:
    """The mirror's FETCH_HEAD files (mtime, content): rewritten by every `git fetch`."""
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in env.home.rglob("FETCH_HEAD")}


def test_git_branch_input_is_fetched_once_and_a_new_commit_reruns_its_readers(
    env, ml, toy, repo: GitRemote, git_calls: list[str]
):
    repo.commit({"data/x.tsv": "git v1\n", "README": "not read\n"})
    uri = repo.uri("main", "data/x.tsv")
    reader_pipe(toy, uri)

    def remote_calls() -> int:
        return sum(1 for c in git_calls if c in ("ls-remote", "fetch"))

    heads: list[dict[Path, tuple[int, bytes]]] = []

    def downloads() -> int:
        heads.append(fetch_heads(env))
        return git_calls.count("fetch")

    assert_lifecycle(ml, env, uri, lambda: repo.commit({"data/x.tsv": "git v2\n"}), downloads, remote_calls,
                     first="git v1\n", second="git v2\n")
    assert heads[0] == {}  # --dry-run fetched nothing
    assert heads[1] and heads[1] == heads[2] == heads[3]  # untouched until the branch moved
    assert heads[4] != heads[3]


def test_git_folder_input(env, ml, toy, repo: GitRemote, git_calls: list[str]):
    repo.commit({"data/a.txt": "alpha\n", "data/sub/b.txt": "beta\n", "other.txt": "not mine\n"})
    uri = repo.uri("main", "data")
    reader_pipe(toy, uri, module="catdir")

    assert_lifecycle(ml, env, uri, lambda: repo.commit({"data/sub/b.txt": "BETA\n"}),
                     lambda: git_calls.count("fetch"), lambda: git_calls.count("ls-remote"),
                     first="a.txt: alpha\nsub/b.txt: beta\n", second="a.txt: alpha\nsub/b.txt: BETA\n")


def test_git_tag_that_stays_is_not_fetched_again_when_the_branch_moves(
    env, ml, toy, repo: GitRemote, git_calls: list[str]
):
    repo.commit({"data/x.tsv": "tagged\n"})
    repo.tag("v1")
    reader_pipe(toy, repo.uri("v1", "data/x.tsv"))
    result, report = run_json(ml)
    assert result.code == 0, result.err
    assert output_of(report, "reader").startswith("tagged\n")
    heads = fetch_heads(env)
    git_calls.clear()
    env.reset_log()

    repo.commit({"data/x.tsv": "moved on\n"})
    dry = json.loads(ml("runpipe", PIPE, "--dry-run", "--json").out)
    result = ml("runpipe", PIPE)

    assert {job["status"] for job in dry["jobs"]} == {"up-to-date"}
    assert (result.code, env.executed()) == (0, [])
    assert "fetch" not in git_calls
    assert fetch_heads(env) == heads


def test_git_commit_sha_needs_no_request_at_all(env, ml, toy, repo: GitRemote, git_calls: list[str]):
    sha = repo.commit({"data/x.tsv": "pinned by sha\n"})
    reader_pipe(toy, repo.uri(sha, "data/x.tsv"))
    assert ml("runpipe", PIPE).code == 0
    git_calls.clear()
    env.reset_log()

    result = ml("runpipe", PIPE)

    assert (result.code, env.executed(), git_calls) == (0, [], [])


# -- integrity pins --------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_pinned_input_runs_when_the_checksum_matches_and_fails_cleanly_when_it_does_not(
    env, ml, toy, httpserver: HTTPServer, algorithm: str
):
    serve(httpserver, b"pinned\n", {"ETag": '"v1"'})
    uri = httpserver.url_for("/data.tsv")
    reader_pipe(toy, {"uri": uri, algorithm: hashlib.new(algorithm, b"pinned\n").hexdigest()})
    result, report = run_json(ml)
    assert result.code == 0, result.err
    assert output_of(report, "reader").startswith("pinned\n")
    env.reset_log()
    assert (ml("runpipe", PIPE).code, env.executed(), gets(httpserver)) == (0, [], 1)

    serve(httpserver, b"tampered\n", {"ETag": '"v2"'})
    result, report = run_json(ml)

    assert result.code == 1
    assert "Traceback" not in result.err
    assert [line for line in result.err.splitlines() if uri in line and f"{algorithm} mismatch" in line], result.err
    assert env.executed() == []
    assert by_name(report, "result") == {"reader": "failed", "after": "skipped", "bystander": "skipped"}


# -- errors ----------------------------------------------------------------------------------


def assert_fetch_failed(ml: MlRunner, env: Env, *needles: str) -> dict[str, str]:
    """The run exits 1 with one line naming the URI and the cause; the reader fails, `after` is skipped."""
    result, report = run_json(ml)
    assert_clean_failure(result, env, *needles)
    outcome = by_name(report, "result")
    assert (outcome["reader"], outcome["after"]) == ("failed", "skipped")
    assert all(needle in by_name(report, "error")["reader"] for needle in needles)
    return outcome


def error_pipe(toy: Path, uri: str) -> None:
    """reader -> after, without the bystander (whose run would put an entry in the cache)."""
    reader_pipe(toy, uri)
    path = toy / "pipe" / "remote.yaml"
    path.write_text(path.read_text().split("  bystander:")[0])


@pytest.mark.parametrize(("status", "shown"), [(404, "HTTP 404 Not Found"), (500, "HTTP 500 Internal Server Error")])
def test_http_error_status_fails_the_run(env, ml, toy, httpserver: HTTPServer, status: int, shown: str):
    serve(httpserver, b"oops", status=status)
    uri = httpserver.url_for("/data.tsv")
    error_pipe(toy, uri)

    assert_fetch_failed(ml, env, uri, shown)
    if status == 500:  # retried, and only within one check: not again for the download
        assert len(httpserver.log) == 1 + len(HttpSource.retry_delays)


def test_http_5xx_is_retried_with_back_off_once(env, ml, toy, httpserver: HTTPServer):
    """Each retry waits its delay, and one round of them: timed against the same failure without
    retries (a 404), measured here, so that a loaded machine cannot fail it."""
    uri = httpserver.url_for("/data.tsv")
    error_pipe(toy, uri)
    serve(httpserver, b"gone", status=404)
    started = time.monotonic()
    assert_fetch_failed(ml, env, uri, "HTTP 404 Not Found")
    baseline = time.monotonic() - started
    arrivals: list[float] = []
    httpserver.clear_all_handlers()
    httpserver.expect_request("/data.tsv").respond_with_handler(
        lambda request: arrivals.append(time.monotonic()) or Response(b"oops", status=500))
    started = time.monotonic()
    assert_fetch_failed(ml, env, uri, "HTTP 500 Internal Server Error")
    elapsed = time.monotonic() - started
    delays = HttpSource.retry_delays
    assert len(arrivals) == 1 + len(delays)
    waits = [later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)]
    assert all(wait >= delay for wait, delay in zip(waits, delays, strict=True)), waits
    assert elapsed - baseline < 2 * sum(delays), f"{elapsed:.2f}s against {baseline:.2f}s without retries"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens here once the socket is closed


@pytest.mark.parametrize(("uri", "shown"), [
    ("http://127.0.0.1:{port}/data.tsv", "cannot connect to 127.0.0.1:{port}"),
    ("s3://some-bucket/data.tsv", "cannot reach S3 endpoint http://127.0.0.1:{port}"),
    ("git+http://127.0.0.1:{port}/repo.git@main#data.tsv", "cannot read repository http://127.0.0.1:{port}/repo.git"),
], ids=["http", "s3", "git"])
def test_unreachable_server_fails_the_run(env, ml, toy, monkeypatch: pytest.MonkeyPatch, uri: str, shown: str):
    port = closed_port()
    uri, shown = uri.format(port=port), shown.format(port=port)
    monkeypatch.setenv("MLPIPE_S3_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    error_pipe(toy, uri)

    dry = ml("runpipe", "toy/pipe/remote.yaml", "--dry-run", "--json")
    assert dry.code == 0, dry.err  # a dry run reports the problem instead of failing
    reader = json.loads(dry.out)["jobs"][0]
    assert reader["status"] == "stale" and shown in reader["reasons"][0]
    assert_fetch_failed(ml, env, uri, shown)


@pytest.mark.parametrize(("bucket_suffix", "shown"), [("", "no such key"), ("-gone", "no such bucket")])
def test_missing_s3_key_or_bucket_fails_the_run(
    env, ml, toy, s3: S3Server, s3_bucket: str, bucket_suffix: str, shown: str
):
    uri = f"s3://{s3_bucket}{bucket_suffix}/data/missing.tsv"
    error_pipe(toy, uri)

    assert_fetch_failed(ml, env, uri, shown)


def test_wrong_s3_credentials_fail_the_run_without_showing_the_secret(
    env, ml, toy, s3: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
):
    s3.client().put_object(Bucket=s3_bucket, Key="data/x.tsv", Body=b"x\n")
    secret = "wrong-secret-d41d8cd98f00b204"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    uri = f"s3://{s3_bucket}/data/x.tsv"
    error_pipe(toy, uri)

    assert_fetch_failed(ml, env, uri, "access denied")

    result = ml("runpipe", PIPE)
    assert secret not in result.out + result.err
    leaked = [p for p in env.home.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaked == []


def test_password_in_an_http_uri_is_never_shown_or_recorded(env, ml, toy, httpserver: HTTPServer):
    serve(httpserver, b"private\n", {"ETag": '"v1"'})
    secret = "hunter2-d41d8cd98f00b204"
    uri = httpserver.url_for("/data.tsv").replace("://", f"://reader:{secret}@")
    reader_pipe(toy, uri)
    ran = ml("runpipe", PIPE)
    assert ran.code == 0, ran.err
    serve(httpserver, b"gone", status=404)
    failed = ml("runpipe", PIPE, "--force")
    listed = ml("listjob")

    assert failed.code == 1
    assert [line for line in failed.err.splitlines() if "HTTP 404" in line]
    for result in (ran, failed, listed):
        assert secret not in result.out + result.err
    records = list((env.home / "jobs").rglob("*"))
    assert records and [p for p in records if p.is_file() and secret.encode() in p.read_bytes()] == []


def test_unknown_git_revision_fails_the_run(env, ml, toy, repo: GitRemote):
    repo.commit({"data/x.tsv": "x\n"})
    uri = repo.uri("no-such-branch", "data/x.tsv")
    error_pipe(toy, uri)

    assert_fetch_failed(ml, env, uri, "revision 'no-such-branch' not found")


def test_missing_path_in_git_revision_fails_the_run(env, ml, toy, repo: GitRemote):
    repo.commit({"data/x.tsv": "x\n"})
    uri = repo.uri("main", "data/nope.tsv")
    error_pipe(toy, uri)

    assert_fetch_failed(ml, env, uri, "path 'data/nope.tsv' not found")


@pytest.mark.parametrize("uri", [
    "s3://Not_A_Bucket/x.tsv",
    "git+https://example.com/repo.git#data/x.tsv",  # no @REV
    "http://example.com/../etc/passwd",
    "ftp://example.com/x.tsv",
])
def test_malformed_uri_is_rejected_before_anything_runs(env, ml, toy, uri: str):
    error_pipe(toy, uri)

    result = ml("runpipe", PIPE)

    assert_clean_failure(result, env, "remote.yaml", "job 'reader'", "input.inputs", code=2)
    assert not (env.home / "downloads").exists() or not any((env.home / "downloads").iterdir())


# -- exports ---------------------------------------------------------------------------------

EXPORTS = "toy/pipe/exports.yaml"


def export_pipe(toy: Path, to_s3: str, to_local: str, fail: bool = False) -> None:
    write_tree(toy, {"pipe/exports.yaml": f"""
        jobs:
          train:
            module: toy/module/step
            input: {{inputs: file://toy/data/seed.txt}}
            output: {{output: {json.dumps(to_s3)}}}
            parameters: {{name: train, fail: {json.dumps(fail)}}}
          save:
            module: toy/module/step
            input: {{inputs: file://toy/data/seed.txt}}
            output: {{output: {json.dumps(to_local)}}}
            parameters: {{name: save, fail: {json.dumps(fail)}}}
        """})


def run_exports(ml: MlRunner) -> tuple[Result, dict[str, Any]]:
    result = ml("runpipe", EXPORTS, "--json")
    return result, json.loads(result.out)


def test_outputs_are_exported_after_the_job_and_not_again_on_a_cache_hit(
    env, ml, toy, tmp_path: Path, s3: S3Server, s3_bucket: str, s3_calls: S3Calls
):
    client = s3.client()
    dest = tmp_path / "exported" / "model.txt"
    export_pipe(toy, f"s3://{s3_bucket}/models/x", f"local://{dest}")

    result, report = run_exports(ml)

    assert result.code == 0, result.err
    outputs = {name: Path(paths["output"]).read_bytes() for name, paths in by_name(report, "outputs").items()}
    assert outputs["train"] == b"seed\ntrain \n"
    assert client.get_object(Bucket=s3_bucket, Key="models/x")["Body"].read() == outputs["train"]
    assert dest.read_bytes() == outputs["save"]
    s3_before = client.head_object(Bucket=s3_bucket, Key="models/x")
    local_before = dest.stat()

    s3_calls.clear()
    env.reset_log()
    result, report = run_exports(ml)

    assert result.code == 0, result.err
    assert env.executed() == []
    assert s3_calls.count_of("PutObject") + s3_calls.count_of("CreateMultipartUpload") == 0
    s3_after = client.head_object(Bucket=s3_bucket, Key="models/x")
    assert (s3_after["ETag"], s3_after["LastModified"]) == (s3_before["ETag"], s3_before["LastModified"])
    assert (dest.stat().st_ino, dest.stat().st_mtime_ns) == (local_before.st_ino, local_before.st_mtime_ns)

    # Another pipe with the same jobs: cache hits that do export, and find the same bytes there.
    write_tree(toy, {"pipe/exports_again.yaml": (toy / "pipe" / "exports.yaml").read_text()})
    s3_calls.clear()
    result = ml("runpipe", "toy/pipe/exports_again.yaml", "--json")
    assert result.code == 0, result.err
    assert set(by_name(json.loads(result.out), "result").values()) == {"cached"}
    assert s3_calls.count_of("HeadObject", "models/x") == 1
    assert s3_calls.count_of("PutObject") + s3_calls.count_of("CreateMultipartUpload") == 0
    assert client.head_object(Bucket=s3_bucket, Key="models/x")["LastModified"] == s3_before["LastModified"]
    assert (dest.stat().st_ino, dest.stat().st_mtime_ns) == (local_before.st_ino, local_before.st_mtime_ns)


def test_a_failed_job_exports_nothing(env, ml, toy, tmp_path: Path, s3: S3Server, s3_bucket: str):
    dest = tmp_path / "exported" / "model.txt"
    export_pipe(toy, f"s3://{s3_bucket}/models/x", f"local://{dest}", fail=True)

    result, report = run_exports(ml)

    assert result.code == 1
    assert set(by_name(report, "result").values()) <= {"failed", "skipped"}
    assert s3.client().list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0
    assert not dest.exists()
    assert cache_entries(env) == []


def test_a_new_export_target_is_written_without_rerunning_the_job(
    env, ml, toy, tmp_path: Path, s3: S3Server, s3_bucket: str
):
    client = s3.client()
    export_pipe(toy, f"s3://{s3_bucket}/models/x", f"local://{tmp_path / 'first.txt'}")
    assert run_exports(ml)[0].code == 0
    env.reset_log()

    export_pipe(toy, f"s3://{s3_bucket}/models/y", f"local://{tmp_path / 'second.txt'}")
    dry = json.loads(ml("runpipe", EXPORTS, "--dry-run", "--json").out)
    assert by_name(dry, "status") == {"train": "up-to-date", "save": "up-to-date"}
    assert by_name(dry, "reasons")["train"] == [f"export output to s3://{s3_bucket}/models/y"]
    result, report = run_exports(ml)

    assert result.code == 0, result.err
    assert env.executed() == []
    assert set(by_name(report, "result").values()) == {"cached"}
    assert client.get_object(Bucket=s3_bucket, Key="models/y")["Body"].read() == b"seed\ntrain \n"
    assert (tmp_path / "second.txt").read_bytes() == b"seed\nsave \n"


def test_a_failed_export_fails_the_run_and_is_retried_by_the_next_run(
    env, ml, toy, tmp_path: Path, s3: S3Server, s3_bucket: str
):
    blocker = tmp_path / "exported"
    blocker.write_text("a file where the export wants a folder\n")
    dest = blocker / "model.txt"
    export_pipe(toy, f"s3://{s3_bucket}/models/x", f"local://{dest}")

    result, report = run_exports(ml)

    assert result.code == 1
    assert "Traceback" not in result.err
    assert [line for line in result.err.splitlines() if f"local://{dest}" in line], result.err
    assert by_name(report, "result") == {"train": "ran", "save": "failed"}

    blocker.unlink()
    env.reset_log()
    result, report = run_exports(ml)

    assert result.code == 0, result.err
    assert env.executed() == []  # the job's output was cached: only the export is redone
    assert dest.read_bytes() == b"seed\nsave \n"


# -- progress --------------------------------------------------------------------------------


def run_on_terminal(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run `ml ARGS` with stderr on a pseudo-terminal; its exit code and what the terminal showed."""
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "mlpipe", *args], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=slave, env={**os.environ, **env})
    os.close(slave)
    shown = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    return process.wait(timeout=60), shown.decode(errors="replace")


def test_download_progress_is_drawn_on_a_terminal_only(env, toy, tmp_path: Path, httpserver: HTTPServer):
    serve(httpserver, b"x" * 300_000 + b"\n", {"ETag": '"big"'})
    uri = httpserver.url_for("/data.tsv")
    reader_pipe(toy, uri)

    captured = ml_process("runpipe", PIPE)  # as under cron: stderr is a file or a pipe
    code, terminal = run_on_terminal("runpipe", PIPE, env={"MLPIPE_HOME": str(tmp_path / "tty-home")})

    assert captured.returncode == 0, captured.stderr
    assert "\r" not in captured.stderr
    assert code == 0, terminal
    assert f"\r{uri}: 100%" in terminal  # (a terminal also shows every "\n" as "\r\n")
    assert gets(httpserver) == 2

