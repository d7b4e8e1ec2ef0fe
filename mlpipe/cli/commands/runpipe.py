"""`ml runpipe PIPE`: run what is stale, like make; `--dry-run` says what and why."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import TYPE_CHECKING

from mlpipe.cli.commands import add_json_flag, home_settings

if TYPE_CHECKING:
    from mlpipe.engine.build import Builder


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipe", help="a pipe id (APP/pipe/NAME.yaml) or a path to a pipe YAML")
    parser.add_argument("-n", "--dry-run", "--dry_run", action="store_true",
                        help="say what would run and why; change nothing")
    parser.add_argument("-j", "--jobs", type=int, help="run up to N jobs at once (default: setting JOBS)")
    parser.add_argument("--force", action="store_true", help="rerun every job even if its outputs are cached")
    parser.add_argument("--keep-going", action="store_true", help="after a failure, run every branch that can")
    parser.add_argument("--set", action="append", default=[], metavar="JOB.PARAM=VALUE",
                        help="override a parameter (repeatable)")
    parser.add_argument("--grid", action="append", default=[], metavar="JOB.PARAM=A,B,C",
                        help="sweep JOB over these values of PARAM (repeatable; replaces that axis of its sweep:)")
    parser.add_argument("--max-jobs", type=int, metavar="N",
                        help="refuse a pipe whose sweeps expand to more than N jobs (default: setting MAX_JOBS)")
    parser.add_argument("--no-wait", action="store_true", help="exit 75 at once if this pipe is already running")
    parser.add_argument("--executor", choices=("local", "dask"), help="where jobs run (default: setting EXECUTOR)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT|local:N",
                        help="the Dask scheduler, or local:N for a local cluster (default: setting DASK_SCHEDULER)")
    parser.add_argument("--fetch", choices=("none", "final", "all"), default="final",
                        help="with --executor dask: which outputs to pull into the local cache (default: final ="
                             " exported and leaf outputs)")
    add_json_flag(parser)


def runpipe_args(argv: list[str]) -> argparse.Namespace:
    """The arguments of `ml runpipe ARGV...` (for the commands that are runs of it: startpipe, runall)."""
    parser = argparse.ArgumentParser(prog="ml runpipe")
    configure(parser)
    return parser.parse_args(argv)


def parse_overrides(items: list[str], flag: str = "--set") -> dict[str, dict[str, str]]:
    """`["train.lr=0.1"]` -> `{"train": {"lr": "0.1"}}` (typed later, by the module)."""
    from mlpipe.core.errors import UsageError

    overrides: dict[str, dict[str, str]] = {}
    for item in items:
        target, sep, value = item.partition("=")
        job, dot, param = target.rpartition(".")
        if not sep or not dot or not job or not param:
            raise UsageError(f"{flag} {item!r}: expected JOB.PARAM=VALUE")
        overrides.setdefault(job, {})[param] = value
    return overrides


def parse_grid(items: list[str]) -> dict[str, dict[str, list[str]]]:
    """`["train.n=5,10"]` -> `{"train": {"n": ["5", "10"]}}` (typed later, by the module)."""
    return {job: {param: value.split(",") if value else [] for param, value in axes.items()}
            for job, axes in parse_overrides(items, "--grid").items()}


def run(args: argparse.Namespace) -> int:
    from mlpipe.core.errors import Problem, UsageError
    from mlpipe.engine.build import Builder
    from mlpipe.engine.executor import open_executor
    from mlpipe.home.loader import load_plan
    from mlpipe.remote import open_mirror

    if args.jobs is not None and args.jobs < 1:
        raise UsageError("-j/--jobs must be at least 1")
    if args.max_jobs is not None and args.max_jobs < 1:
        raise UsageError("--max-jobs must be at least 1")
    settings = home_settings({"JOBS": args.jobs, "MAX_JOBS": args.max_jobs, "EXECUTOR": args.executor,
                              "DASK_SCHEDULER": args.scheduler})
    if settings["LOG_TIMESTAMPS"]:
        from mlpipe.cli.logstamp import stamp_stderr

        stamp_stderr()
    problems: list[Problem] = []  # every validation problem, reported together by check_local_inputs
    plan, apps = load_plan(settings, args.pipe, parse_overrides(args.set), problems, parse_grid(args.grid))
    jobs = settings["JOBS"]
    echo = sys.stderr if jobs == 1 and sys.stderr.isatty() and not args.json else None
    mirror = open_mirror(settings)
    executor = open_executor(settings, plan, mirror, args.fetch, dry_run=args.dry_run)
    if executor.name != "local":
        echo = None
    builder = Builder(settings, plan, apps, force=args.force, mirror=mirror, echo=echo,
                      progress=sys.stderr.isatty(), executor=executor)
    builder.check_local_inputs(problems)
    if args.dry_run:
        return _dry_run(builder, args.json)
    try:
        return _run(builder, args, jobs, default_jobs=args.jobs is None and settings.sources["JOBS"] == "default")
    finally:
        executor.close()


def _dry_run(builder: Builder, as_json: bool) -> int:
    from mlpipe.cli.report import print_json, print_table, short
    from mlpipe.ops.pipe_status import DryRun, explain

    statuses = explain(builder)
    remote = builder.executor.name != "local"
    in_mirror = {s.name: _in_mirror(builder, s.name) for s in statuses} if remote else {}
    if as_json:
        report = DryRun(builder.plan, statuses).as_json()
        if remote:  # where each job would run, and which of its outputs the cluster already has
            report["executor"] = builder.executor.name
            for job in report["jobs"]:
                job.update(remote=job["action"] == "run", in_mirror=in_mirror[job["name"]])
        print_json(report)
        return 0
    stale = [s for s in statuses if s.status == "stale"]
    if not stale:
        print(f"{builder.plan.pipe_id}: all {len(statuses)} jobs up to date, nothing to do")
        return 0
    where = f" on {builder.executor.name}" if remote else ""
    rows = [[s.name, s.status, s.action + (where if s.action == "run" else ""), short(s.job_id),
             "; ".join(s.reasons), *([", ".join(in_mirror[s.name])] if remote else [])] for s in statuses]
    print_table(rows, ["job", "status", "action", "job_id", "reasons", *(["in mirror"] if remote else [])])
    stale_names = {s.name for s in stale}
    for sweep, members in builder.plan.sweeps.items():  # members are grouped under their sweep
        print(f"sweep {sweep}: {len(members)} members, {len(stale_names.intersection(members))} stale")
    print(f"{len(stale)} of {len(statuses)} jobs stale")
    return 0


def _in_mirror(builder: Builder, name: str) -> list[str]:
    """The job's outputs the executor's workers already find in the mirror (none while its hash is unknown)."""
    from mlpipe.engine.resolve import Unresolved

    try:
        identity = builder.identity(name, fetch=False)
    except Unresolved:
        return []
    return [out for out, h in identity.outputs.items() if builder.executor.in_remote(h)]


def _run(builder: Builder, args: argparse.Namespace, jobs: int, default_jobs: bool) -> int:
    from mlpipe.engine.build import FAILED
    from mlpipe.engine.doit_tasks import nothing_to_do, run_tasks
    from mlpipe.store.runs import running_pipe

    pipe_id = builder.plan.pipe_id
    started = time.monotonic()
    with running_pipe(builder.settings.locks_dir, pipe_id, wait=not args.no_wait):
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            executor = builder.executor
            if executor.name != "local" and not nothing_to_do(builder):  # a no-op rerun needs no cluster
                executor.start(builder)
                jobs = executor.workers if default_jobs else jobs  # as many at once as the cluster has workers
            run_tasks(builder, jobs=jobs, keep_going=args.keep_going)
        except KeyboardInterrupt:
            from mlpipe.engine.execute import terminate_all  # (and subprocess) only when jobs may be running

            builder.executor.cancel()  # a cluster's workers stop their jobs' process groups
            terminate_all()
            builder.wait_idle(10.0)
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
    elapsed = time.monotonic() - started
    results = [builder.results[name] for name in builder.plan.jobs]
    if args.json:
        from mlpipe.cli.report import print_json

        print_json({"pipe": pipe_id, "jobs": [
            {"name": r.name, "job_id": r.job_id, "result": r.result, "duration_s": r.duration_s,
             "outputs": r.outputs, **({"error": r.error} if r.error else {})} for r in results]})
    counts: dict[str, int] = {}
    for r in results:
        counts[r.result] = counts.get(r.result, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in counts.items())
    if set(counts) == {"cached"}:  # no job executed or was pulled
        print(f"{pipe_id}: {len(results)} jobs up to date, nothing to do ({elapsed:.2f}s)", file=sys.stderr)
    else:
        _print_summary(builder, results)
        print(f"{pipe_id}: {summary} in {elapsed:.2f}s", file=sys.stderr)
    failed = any(r.result == FAILED for r in results) or builder.errors
    return 1 if failed else 0


def _print_summary(builder: Builder, results: list) -> None:
    from mlpipe.cli.report import render_table

    consumed = {ref.value for job in builder.plan.jobs.values() for b in job.inputs.values() for ref in b.refs}
    rows = []
    for r in results:
        job = builder.plan.jobs[r.name]
        final = [f"{out}: {r.outputs[out]}" for out, value in job.outputs.items()
                 if out in r.outputs and value not in consumed]
        rows.append([r.name, r.result, f"{r.duration_s:.2f}s", "\n".join(final)])
    print(render_table(rows, ["job", "result", "time", "final outputs"]), file=sys.stderr)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
