"""Benchmark the S3 mirror against `aws s3 sync` on the same data, server and run.

    python -m bench.mirror [--files 1000] [--file-kb 10] [--big-mb 1024] [--repeat 1]

Starts a local SeaweedFS like the tests do (tests/s3fixture.py, with volumes big enough for a
1 GB object), then for each data set times, as separate processes (start-up included for both):

    (a) FILES files of FILE_KB    ml sync push | aws s3 sync DIR s3://...    (into an empty prefix)
                                  ml sync pull | aws s3 sync s3://... DIR    (into an empty home/dir)
                                  the same push again, with nothing to do
    (b) one file of BIG_MB        push and pull as above

MLPipe's side starts from a home whose cache holds the files (made with LocalCache.put). The
`aws` CLI is PyPI's `awscli`, NOT a dependency of MLPipe: `pip install awscli` into the venv to
get the comparison; without it only MLPipe is timed. Results: a table, and bench/mirror_results.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tabulate import tabulate

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "mirror_results.json"
AWS_HINT = "the aws CLI was not found: `pip install awscli` into the venv (for the benchmark only) to compare"


def start_server(workdir: Path) -> Any:
    """tests/s3fixture.py's S3Server, with 1 GB volumes instead of the tests' 16 MB ones."""
    sys.path.insert(0, str(REPO / "tests"))
    from s3fixture import S3Server

    class BenchServer(S3Server):
        def argv(self) -> list[str]:
            return [("-master.volumeSizeLimitMB=1024" if arg.startswith("-master.volumeSizeLimitMB=") else arg)
                    for arg in super().argv()]

    server = BenchServer(workdir)
    server.start()
    return server


def find_aws() -> str | None:
    beside = Path(sys.executable).with_name("aws")
    return str(beside) if beside.is_file() else shutil.which("aws")


def make_files(folder: Path, count: int, size: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        path = folder / f"f{i:05d}.bin"
        with open(path, "wb") as out:
            left = size
            while left:
                chunk = os.urandom(min(left, 1 << 24))
                out.write(chunk)
                left -= len(chunk)
        paths.append(path)
    return paths


def fill_cache(home: Path, files: list[Path]) -> None:
    """Put copies of `files` into the home's cache, as jobs would have left them."""
    from mlpipe.core.hashing import md5_file
    from mlpipe.store.cache import LocalCache

    cache = LocalCache(home / "cache" / "data", home / "cache" / "tmp")
    for path in files:
        scratch = cache.new_scratch("bench-")
        shutil.copyfile(path, scratch / "f")
        data_hash = hashlib.md5(path.name.encode()).hexdigest()
        cache.put(data_hash, scratch / "f", md5=md5_file(path), job_hash="0" * 32)
        scratch.rmdir()


def timed(argv: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if result.returncode != 0:
        raise SystemExit(f"$ {' '.join(argv[:4])} ... failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return seconds


def run_case(name: str, files: list[Path], server: Any, bucket: str, work: Path, aws: str | None,
             env: dict[str, str]) -> list[dict[str, Any]]:
    """One data set, one round: push, pull and an incremental push by each tool."""
    size = sum(p.stat().st_size for p in files)
    home_a, home_b = work / f"{name}-home-a", work / f"{name}-home-b"
    fill_cache(home_a, files)
    ml = [sys.executable, "-m", "mlpipe", "sync"]
    ml_env = {**env, "MLPIPE_S3_MIRROR": f"s3://{bucket}/{name}-ml", "MLPIPE_S3_ENDPOINT_URL": server.endpoint_url}
    rows = []

    def row(tool: str, op: str, seconds: float, moved: int) -> None:
        rows.append({"case": name, "tool": tool, "op": op, "files": len(files) if moved else 0, "bytes": moved,
                     "seconds": round(seconds, 3)})

    ml_a, ml_b = {**ml_env, "MLPIPE_HOME": str(home_a)}, {**ml_env, "MLPIPE_HOME": str(home_b)}
    cli = [aws or "aws", "--endpoint-url", server.endpoint_url, "s3", "sync"]
    remote, local, source = f"s3://{bucket}/{name}-aws/", str(work / f"{name}-aws-dst"), str(files[0].parent)
    steps = [  # the tools take turns, so a slow moment of the machine hits both alike
        ("push", size, [*ml, "push"], ml_a, [*cli, source, remote]),
        ("pull", size, [*ml, "pull"], ml_b, [*cli, remote, local]),
        ("push, nothing to do", 0, [*ml, "push"], ml_a, [*cli, source, remote]),
    ]
    for op, moved, ml_argv, ml_env_op, aws_argv in steps:
        row("ml sync", op, timed(ml_argv, ml_env_op), moved)
        if aws:
            row("aws s3 sync", op, timed(aws_argv, env), moved)
    shutil.rmtree(local, ignore_errors=True)
    for home in (home_a, home_b):
        subprocess.run(["chmod", "-R", "u+w", str(home)], check=False)
        shutil.rmtree(home)
    return rows


def summarize(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The median of the rounds for each (case, tool, op), with throughput."""
    keys = list(dict.fromkeys((r["case"], r["tool"], r["op"]) for r in rounds))
    table = []
    for case, tool, op in keys:
        same = [r for r in rounds if (r["case"], r["tool"], r["op"]) == (case, tool, op)]
        seconds = statistics.median(r["seconds"] for r in same)
        moved, files = same[0]["bytes"], same[0]["files"]
        table.append({"case": case, "tool": tool, "op": op, "seconds": round(seconds, 3),
                      "MB/s": round(moved / seconds / 1e6, 1) if moved else None,
                      "files/s": round(files / seconds, 1) if files else None, "rounds": len(same)})
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mirror", description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000, help="number of small files in case (a)")
    parser.add_argument("--file-kb", type=int, default=10, help="size of each small file, KB")
    parser.add_argument("--big-mb", type=int, default=1024, help="size of the one file of case (b), MB (0: skip)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of everything (the median is reported)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    aws = find_aws()
    if aws is None:
        print(AWS_HINT, file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="mlpipe-bench-mirror-"))
    server = start_server(work / "seaweedfs")
    try:
        empty = work / "empty-aws-config"
        empty.write_text("")
        env = {**os.environ, **server.env(), "AWS_CONFIG_FILE": str(empty), "AWS_SHARED_CREDENTIALS_FILE": str(empty)}
        env.pop("MLPIPE_S3_SYNC", None)
        cases = {"a": make_files(work / "src-a", args.files, args.file_kb * 1024)}
        if args.big_mb:
            cases["b"] = make_files(work / "src-b", 1, args.big_mb * 1024 * 1024)
        rounds: list[dict[str, Any]] = []
        for _ in range(args.repeat):
            for name, files in cases.items():
                bucket = server.make_bucket()  # a fresh, empty bucket per round
                rounds += run_case(name, files, server, bucket, work, aws, env)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    table = summarize(rounds)
    labels = {"a": f"(a) {args.files} x {args.file_kb} KB", "b": f"(b) 1 x {args.big_mb} MB"}
    print(tabulate([[labels[r["case"]], r["tool"], r["op"], r["seconds"], r["MB/s"], r["files/s"]] for r in table],
                   headers=["data", "tool", "operation", "seconds", "MB/s", "files/s"]))
    args.out.write_text(json.dumps({
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "system": platform.system()},
        "settings": {"files": args.files, "file_kb": args.file_kb, "big_mb": args.big_mb, "repeat": args.repeat},
        "aws_cli": aws is not None, "results": table, "rounds": rounds}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
