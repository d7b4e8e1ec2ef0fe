"""`ml listpipe [APP] [--json]`: pipes on the apps path with their job counts."""

from __future__ import annotations

import argparse

from mlpipe.cli.commands import add_json_flag, home_settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", nargs="?", help="only this app")
    parser.add_argument("--directory", metavar="APP", help=argparse.SUPPRESS)  # the original's spelling
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from mlpipe.cli.report import print_json, print_table
    from mlpipe.core.errors import UsageError
    from mlpipe.home.apps import AppIndex
    from mlpipe.ops.catalog import list_pipes

    if args.directory and args.app and args.directory != args.app:
        raise UsageError("give the app once: ml listpipe APP (or --directory APP)")
    args.app = args.app or args.directory
    settings = home_settings()
    apps = AppIndex.discover(settings)
    if args.app:
        apps.app_dir(args.app)
    rows = list_pipes(settings, apps, args.app)
    if args.json:
        print_json(rows)
    else:
        print_table(([r["pipe"], r["app"], r["jobs"] if r["jobs"] is not None else "invalid: " + r["error"]]
                     for r in rows), ["pipe", "app", "jobs"])
    return 0
