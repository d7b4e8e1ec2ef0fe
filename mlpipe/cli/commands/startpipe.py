"""`ml startpipe PIPE`: the original product's name for validating and planning a pipe without
running it, i.e. `ml runpipe PIPE --dry-run`."""

from __future__ import annotations

import argparse

from mlpipe.cli.commands import add_json_flag


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipe", help="a pipe id (APP/pipe/NAME.yaml) or a path to a pipe YAML")
    parser.add_argument("--set", action="append", default=[], metavar="JOB.PARAM=VALUE",
                        help="override a parameter (repeatable)")
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from mlpipe.cli.commands.runpipe import run as runpipe
    from mlpipe.cli.commands.runpipe import runpipe_args

    argv = [args.pipe, "--dry-run", *(f"--set={item}" for item in args.set), *(["--json"] if args.json else [])]
    return runpipe(runpipe_args(argv))
