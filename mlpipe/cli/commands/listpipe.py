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
    from mlpipe.core.errors import SpecError, UsageError
    from mlpipe.home.apps import AppIndex
    from mlpipe.home.loader import YamlMemo, load_pipe_with_includes

    if args.directory and args.app and args.directory != args.app:
        raise UsageError("give the app once: ml listpipe APP (or --directory APP)")
    args.app = args.app or args.directory
    settings = home_settings()
    apps = AppIndex.discover(settings)
    memo = YamlMemo(settings.state_dir / "yaml")  # an unchanged pipe is not parsed again
    if args.app:
        apps.app_dir(args.app)
    rows = []
    for pipe_id, path in apps.pipe_paths(args.app):
        row = {"pipe": pipe_id, "app": pipe_id.split("/")[0], "jobs": None}
        try:
            row["jobs"] = len(load_pipe_with_includes(apps, path, pipe_id, memo).jobs)
        except SpecError as exc:
            row["error"] = str(exc.problems[0])
        rows.append(row)
    if args.json:
        print_json(rows)
    else:
        print_table(([r["pipe"], r["app"], r["jobs"] if r["jobs"] is not None else "invalid: " + r["error"]]
                     for r in rows), ["pipe", "app", "jobs"])
    return 0
