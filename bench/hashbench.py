"""Hashing figures on a 1 GB random file: md5 throughput next to `md5sum`, and the stat-keyed memo.

    throughput   `mlpipe.core.hashing.md5_file` in a fresh process vs `md5sum`, same file, interleaved
    memo         DigestCache (a new instance per check, as a new `ml` process would):
                 first sight = one read; unchanged = a stat; after `touch` = one read; then a stat
    end to end   `ml runpipe` on a pipe whose job takes the 1 GB file as a local:// input

Bytes read are counted from /proc/self/io (`rchar`), so "a stat, not a read" is checked, not assumed.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench.measure import BenchError, Run, Stats, run_timed

GB = 1 << 30
_CHUNK = 1 << 24


def make_random_file(path: Path, size: int = GB) -> None:
    with open(path, "wb") as out:
        for _ in range(size // _CHUNK):
            out.write(os.urandom(_CHUNK))


def _rchar() -> int:
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def _measured(fn: Callable[[], str]) -> tuple[float, int, str]:
    before = _rchar()
    started = time.perf_counter()
    digest = fn()
    elapsed = time.perf_counter() - started
    return elapsed, _rchar() - before, digest


def throughput(big: Path, repeats: int, env: Mapping[str, str]) -> dict[str, Any]:
    """MB/s of `md5_file` and of `md5sum`, interleaved; best and median of `repeats`.

    md5_file is timed around the call (in this process: the hashing, not Python's start-up);
    md5sum as a whole process (its start-up is a millisecond).
    """
    from mlpipe.core.hashing import md5_file

    ours, theirs = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        digest = md5_file(big)
        ours.append(Run(time.perf_counter() - started, 0, 0, ""))
        theirs.append(run_timed(["md5sum", str(big)], env=env))
    check = subprocess.run(["md5sum", str(big)], capture_output=True, text=True, check=True).stdout.split()[0]
    if check != digest:
        raise BenchError("md5_file and md5sum disagree")
    mb = big.stat().st_size / 1e6
    result: dict[str, Any] = {}
    for name, runs in (("md5_file", ours), ("md5sum", theirs)):
        stats = Stats.of(runs)
        result[name] = {**stats.as_json(), "mb_per_s_best": round(mb / stats.min),
                        "mb_per_s_median": round(mb / stats.median)}
    result["ratio_best"] = round(result["md5_file"]["mb_per_s_best"] / result["md5sum"]["mb_per_s_best"], 3)
    result["ratio_median"] = round(result["md5_file"]["mb_per_s_median"] / result["md5sum"]["mb_per_s_median"], 3)
    return result


def memo(big: Path, db: Path) -> dict[str, Any]:
    """Time and bytes read by DigestCache.file_md5 through first sight, unchanged, touch, unchanged."""
    from mlpipe.store.digests import DigestCache

    steps: dict[str, Any] = {}

    def check(label: str) -> str:
        cache = DigestCache(db)  # a fresh memo object, as in a new process
        elapsed, read, digest = _measured(lambda: cache.file_md5(big))
        cache.save()
        steps[label] = {"seconds": round(elapsed, 4), "bytes_read": read}
        return digest

    first = check("first sight (hash)")
    same = check("unchanged (stat)")
    os.utime(big)  # touch: new mtime, same bytes
    touched = check("after touch (one hash)")
    again = check("after touch, next check (stat)")
    if not first == same == touched == again:
        raise BenchError("DigestCache returned different digests for the same bytes")
    return steps


def end_to_end(big: Path, root: Path, ml: str, base_env: Mapping[str, str]) -> dict[str, Any]:
    """`ml runpipe` with the 1 GB file as a local:// input: first run, no-op, after touch, no-op."""
    app = root / "apps" / "bigin"
    (app / "module").mkdir(parents=True)
    (app / "pipe").mkdir()
    (app / "module" / "mark.yaml").write_text(
        "input:\n  big: {type: file}\noutput:\n  output: {type: text}\n"
        "cmd: sh -c 'echo marked > \"$1\"' mark output big\n"
    )
    (app / "pipe" / "big.yaml").write_text(
        f"jobs:\n  mark:\n    module: bigin/module/mark\n    input: {{big: 'local://{big}'}}\n"
        "    output: {output: marked}\n"
    )
    env = {**base_env, "MLPIPE_HOME": str(root / "home"), "MLPIPE_APPS": str(root / "apps")}
    argv = [ml, "runpipe", "bigin/pipe/big.yaml"]
    steps = {}
    steps["first run (hash + job)"] = run_timed(argv, env=env).wall_s
    steps["no-op rerun (stat)"] = run_timed(argv, env=env).wall_s
    os.utime(big)
    touched = run_timed(argv, env=env)
    if "nothing to do" not in touched.stderr:
        raise BenchError(f"a touch without a content change reran the job:\n{touched.stderr}")
    steps["rerun after touch (one hash)"] = touched.wall_s
    steps["next rerun (stat)"] = run_timed(argv, env=env).wall_s
    return {k: round(v, 4) for k, v in steps.items()}
