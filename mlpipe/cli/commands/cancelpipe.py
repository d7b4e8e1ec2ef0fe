"""`ml cancelpipe PIPE`: stop the running `ml runpipe` of a pipe and its jobs (recorded `canceled`)."""

from __future__ import annotations

import argparse

from mlpipe.cli.commands import home_settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipe", help="a pipe id (APP/pipe/NAME.yaml) or a path to a pipe YAML")


def run(args: argparse.Namespace) -> int:
    from mlpipe.home.apps import resolve_pipe
    from mlpipe.ops.cancel import cancel_pipe

    settings = home_settings()
    pipe_id = resolve_pipe(settings, args.pipe)[0]
    run, jobs = cancel_pipe(settings, pipe_id)
    if run is not None:
        print(f"{pipe_id}: stopped its run (pid {run.pid})")
    for record in jobs:
        print(f"job {record.job_id[:12]} ({record.job}): {record.status}")
    return 0
