"""`ml runjob ID [--force]` (or `--job_id ID`): run one recorded job again from its record."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from mlpipe.cli.commands import add_json_flag, home_settings

if TYPE_CHECKING:
    from mlpipe.engine.build import Builder, JobResult
    from mlpipe.store.records import JobRecord


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", nargs="?", metavar="ID",
                        help="a job id from `ml listjob`, or a unique prefix of 6+ characters")
    parser.add_argument("--job_id", "--job-id", dest="job_id", metavar="ID", help="the same, as an option")
    parser.add_argument("--force", action="store_true", help="run it even if its outputs are cached")
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from mlpipe.core.errors import UsageError
    from mlpipe.engine.build import Builder
    from mlpipe.ops.rerun import record_plan, require_cached_inputs
    from mlpipe.remote import open_mirror
    from mlpipe.store import records

    if (args.id is None) == (args.job_id is None):
        raise UsageError("give one job id: `ml runjob ID` or `ml runjob --job_id ID`, not both"
                         if args.id else "give a job id: `ml runjob ID` (see `ml listjob`)")
    settings = home_settings()
    job_id = records.find_job_id(settings.jobs_dir, args.id or args.job_id)
    record = records.read_record(settings.jobs_dir, job_id)
    if record is None:
        raise UsageError(f"job {job_id}: cannot read its record {records.job_dir(settings.jobs_dir, job_id)}/job.json")
    plan, apps = record_plan(settings, record)
    echo = sys.stderr if sys.stderr.isatty() and not args.json else None
    builder = Builder(settings, plan, apps, force=args.force, mirror=open_mirror(settings), echo=echo,
                      progress=sys.stderr.isatty())
    builder.check_local_inputs()
    require_cached_inputs(builder, record)
    return _run(builder, record, args)


def _run(builder: Builder, record: JobRecord, args: argparse.Namespace) -> int:
    from mlpipe.core.errors import FetchError
    from mlpipe.engine.build import CACHED, FAILED, JobResult, Unresolved
    from mlpipe.engine.doit_tasks import run_tasks
    from mlpipe.ops.rerun import describe_change
    from mlpipe.store.runs import running_pipe

    started = time.monotonic()
    with running_pipe(builder.settings.locks_dir, record.pipe):
        try:
            identity = builder.identity(record.job)
        except Unresolved as exc:
            raise FetchError(f"job '{record.job}': {exc}") from None
        note = describe_change(record, identity)
        if note:
            print(note, file=sys.stderr)
        if not args.force and not builder.missing(record.job, identity):
            outputs = {out: str(builder.cache.path(h)) for out, h in identity.outputs.items()}
            result = JobResult(record.job, identity.job_hash, CACHED, 0.0, outputs)
        else:
            run_tasks(builder, jobs=1, keep_going=False)
            result = builder.results[record.job]
    _report(builder, result, args.json, time.monotonic() - started)
    return 1 if result.result == FAILED or builder.errors else 0


def _report(builder: Builder, result: JobResult, as_json: bool, elapsed: float) -> None:
    from mlpipe.cli.report import print_json, short
    from mlpipe.engine.build import CACHED, FAILED

    pipe_id = builder.plan.pipe_id
    if as_json:
        print_json({"pipe": pipe_id, "jobs": [
            {"name": result.name, "job_id": result.job_id, "result": result.result, "duration_s": result.duration_s,
             "outputs": result.outputs, **({"error": result.error} if result.error else {})}]})
    head = f"{pipe_id}: job '{result.name}' ({short(result.job_id)})"
    if result.result == CACHED:
        print(f"{head} is up to date, its outputs are cached; --force runs it again", file=sys.stderr)
    elif result.result == FAILED and result.job_id:
        print(f"{head} failed in {elapsed:.2f}s; its log: ml joblog {short(result.job_id)}", file=sys.stderr)
    else:
        print(f"{head} {result.result} in {elapsed:.2f}s", file=sys.stderr)
    for name, path in result.outputs.items():
        print(f"  {name}: {path}", file=sys.stderr)
