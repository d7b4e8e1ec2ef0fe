"""`ml sync push|pull|status [PIPE]`: mirror the cache to or from S3 by hand, whatever S3_SYNC says.

Without PIPE the whole local cache (push, status) or the whole mirror (pull, status) is meant;
with PIPE only the data its jobs reach at their current hashes. A job whose inputs are not known
until an upstream job runs cannot be resolved; `pull` resolves again after each round, so a
chain whose outputs are all in the mirror comes down in one command.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from mlpipe.cli.commands import add_json_flag, home_settings

if TYPE_CHECKING:
    from mlpipe.engine.build import Builder
    from mlpipe.home.settings import Settings
    from mlpipe.remote.mirror import S3Mirror, Transfer

ACTIONS = ("push", "pull", "status")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="push: upload what the mirror lacks; pull: download "
                        "what the cache lacks; status: count what is only local, only remote, on both")
    parser.add_argument("pipe", nargs="?", help="only the data this pipe reaches (a pipe id or a path to its YAML)")
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from mlpipe.remote.mirror import S3Mirror

    settings = home_settings()
    builder = pipe_builder(settings, args.pipe) if args.pipe else None
    with S3Mirror(settings) as mirror:
        if args.action == "status":
            return _status(mirror, builder, args.json)
        started = time.monotonic()
        result = _push(mirror, builder) if args.action == "push" else _pull(mirror, builder)
        return _report(mirror, builder, args.action, result, time.monotonic() - started, args.json)


def pipe_builder(settings: Settings, pipe: str) -> Builder:
    """A Builder for `pipe`, to compute the hashes its jobs reach now."""
    from mlpipe.engine.build import Builder
    from mlpipe.home.loader import load_plan

    plan, apps = load_plan(settings, pipe)
    return Builder(settings, plan, apps)


def reached(builder: Builder) -> tuple[set[str], list[str]]:
    """The data hashes of the pipe's jobs that resolve now, and the names of those that do not."""
    from mlpipe.engine.build import Unresolved

    hashes: set[str] = set()
    unresolved = []
    for name in builder.plan.jobs:
        try:
            hashes.update(builder.identity(name, fetch=False).outputs.values())
        except Unresolved:
            unresolved.append(name)
    builder.digests.save()
    return hashes, unresolved


def _push(mirror: S3Mirror, builder: Builder | None) -> Transfer:
    from mlpipe.store import records

    wanted = reached(builder)[0] if builder else None
    local = [h for h in mirror.cache.list() if wanted is None or h in wanted]
    remote = mirror.remote()
    todo = sorted(h for h in local if h not in remote)  # only these need their local sidecar read
    entries = [e for e in map(mirror.cache.get, todo) if e is not None and e.path.exists()]
    jobs_dir = mirror.settings.jobs_dir

    def record_of(job_hash: str) -> records.JobRecord | None:
        record = records.read_record(jobs_dir, job_hash)
        return record if record is not None and record.status == records.SUCCEEDED else None

    result = mirror.push_entries(entries, record_of)
    result.present += len(local) - len(todo)
    return result


def _pull(mirror: S3Mirror, builder: Builder | None) -> Transfer:
    from mlpipe.remote.mirror import Transfer

    remote = mirror.remote()
    local = set(mirror.cache.list())
    if builder is None:
        result = mirror.pull_entries(sorted(remote - local))
        result.present = len(remote & local)
        return result
    from mlpipe.engine.build import Builder

    result, tried = Transfer(), set()
    while True:  # each round resolves the jobs whose upstream outputs the last round brought in
        builder = Builder(builder.settings, builder.plan, builder.apps)  # a fresh one forgets "unresolved"
        wanted = reached(builder)[0]
        todo = sorted(h for h in wanted & remote if h not in tried and not mirror.cache.exists(h))
        if not todo:
            result.present = len(wanted & remote & local)
            return result
        tried.update(todo)
        result.add(mirror.pull_entries(todo))


def _report(mirror: S3Mirror, builder: Builder | None, action: str, result: Transfer, seconds: float,
            as_json: bool) -> int:
    from mlpipe.cli.report import print_json
    from mlpipe.ops.gc import human_size

    for problem in result.problems:
        print(f"ml sync: {problem}", file=sys.stderr)
    verb, where, there = (("pushed", "to", "already in the mirror") if action == "push"
                          else ("pulled", "from", "already in the cache"))
    if as_json:
        print_json({"mirror": mirror.url, "pipe": builder.plan.pipe_id if builder else None, "action": action,
                    "entries": result.entries, "bytes": result.bytes, "present": result.present,
                    "seconds": round(seconds, 3), "problems": result.problems})
    else:
        rate = f", {human_size(int(result.bytes / seconds))}/s" if result.bytes and seconds > 0 else ""
        print(f"{verb} {result.entries} entries ({human_size(result.bytes)}) {where} {mirror.url} "
              f"in {seconds:.2f}s{rate}; {result.present} {there}")
    if result.problems:
        print(f"ml sync: {len(result.problems)} entries could not be {verb}", file=sys.stderr)
        return 1
    return 0


def _status(mirror: S3Mirror, builder: Builder | None, as_json: bool) -> int:
    from mlpipe.cli.report import print_json, print_table

    local, remote = set(mirror.cache.list()), mirror.remote()
    unresolved: list[str] = []
    if builder is not None:
        wanted, unresolved = reached(builder)
        local, remote = local & wanted, remote & wanted
    groups = {"only_local": sorted(local - remote), "only_remote": sorted(remote - local),
              "both": sorted(local & remote)}
    if as_json:
        report: dict[str, Any] = {"mirror": mirror.url, "pipe": builder.plan.pipe_id if builder else None,
                                  "counts": {name: len(hashes) for name, hashes in groups.items()}, **groups,
                                  "unresolved_jobs": unresolved}
        print_json(report)
        return 0
    print(f"mirror {mirror.url}" + (f", data reached by {builder.plan.pipe_id}" if builder else ", whole cache"))
    print_table(([name.replace("_", " "), len(hashes)] for name, hashes in groups.items()), ["entries", "count"])
    if unresolved:
        print(f"{len(unresolved)} jobs not resolved yet (an upstream output is not in the local cache): "
              f"{', '.join(unresolved)}")
    return 0
