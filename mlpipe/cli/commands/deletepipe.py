"""`ml deletepipe PIPE [--dry_run]`: forget a pipe's doit DB and job records (cache entries go at
the next `ml gc`)."""

from __future__ import annotations

import argparse

from mlpipe.cli.commands import home_settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipe", help="a pipe id (APP/pipe/NAME.yaml) or a path to a pipe YAML")
    parser.add_argument("-n", "--dry_run", "--dry-run", dest="dry_run", action="store_true",
                        help="list what would be removed; remove nothing")


def run(args: argparse.Namespace) -> int:
    from mlpipe.cli.report import short
    from mlpipe.core.errors import UsageError
    from mlpipe.home.apps import resolve_pipe
    from mlpipe.ops.forget import forget_pipe, pipe_state

    settings = home_settings()
    try:
        pipe_id = resolve_pipe(settings, args.pipe)[0]
    except UsageError:  # its file may be gone already: forget what is kept under that id
        pipe_id = args.pipe
        state = pipe_state(settings, pipe_id)
        if not state.databases and not state.records:
            raise
    state = forget_pipe(settings, pipe_id, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path in state.databases:
        print(f"{verb} doit DB {path}")
    for summary in state.records:
        print(f"{verb} job record {short(summary.job_id)} ({summary.job}, {summary.status})")
    print(f"{pipe_id}: {verb} {len(state.databases)} doit DB file(s) and {len(state.records)} job record(s);"
          " its cache entries go at the next `ml gc`")
    return 0
