"""`ml runall [APP]`: every pipe on the apps path (or of one app), one `ml runpipe` each, one lock each.

Exit code: 1 when a job of any pipe failed, else the first other non-zero code (2: a pipe is
invalid, 75: busy with --no-wait), else 0. An invalid pipe does not stop the others.
"""

from __future__ import annotations

import argparse
import sys

from mlpipe.cli.commands import home_settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", nargs="?", help="only the pipes of this app")
    parser.add_argument("-j", "--jobs", type=int, help="run up to N jobs at once (default: setting JOBS)")
    parser.add_argument("--keep-going", action="store_true", help="after a failure, run every branch that can")
    parser.add_argument("--no-wait", action="store_true", help="skip (exit 75) a pipe that is already running")


def run(args: argparse.Namespace) -> int:
    from mlpipe.cli.commands.runpipe import run as runpipe
    from mlpipe.cli.commands.runpipe import runpipe_args
    from mlpipe.core.errors import MlpipeError
    from mlpipe.home.apps import AppIndex

    apps = AppIndex.discover(home_settings())
    if args.app:
        apps.app_dir(args.app)
    flags = [*(["-j", str(args.jobs)] if args.jobs else []), *(["--keep-going"] if args.keep_going else []),
             *(["--no-wait"] if args.no_wait else [])]
    codes = []
    for pipe_id, _path in apps.pipe_paths(args.app):
        print(f"== {pipe_id}", file=sys.stderr)
        try:
            codes.append(runpipe(runpipe_args([pipe_id, *flags])))
        except MlpipeError as exc:
            print(f"ml runall: {pipe_id}: {exc}", file=sys.stderr)
            codes.append(exc.exit_code)
    if not codes:
        print("no pipes on the apps path", file=sys.stderr)
    return 1 if 1 in codes else next((code for code in codes if code), 0)
