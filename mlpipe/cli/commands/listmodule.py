"""`ml listmodule [APP] [--json]`: modules, their inputs, outputs and parameters, and which run
their `cmd` through `/bin/sh` (a shell template, see docs/compat.md)."""

from __future__ import annotations

import argparse

from mlpipe.cli.commands import add_json_flag, home_settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", nargs="?", help="only this app")
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from mlpipe.cli.report import print_json, print_table
    from mlpipe.home.apps import AppIndex
    from mlpipe.ops.catalog import list_modules

    apps = AppIndex.discover(home_settings())
    if args.app:
        apps.app_dir(args.app)
    rows = list_modules(apps, args.app)
    if args.json:
        print_json(rows)
        return 0

    def names(ports: dict) -> str:
        return ", ".join(f"{n}:{t}" for n, t in ports.items())

    def params(row: dict) -> str:
        return ", ".join(f"{n}={p['default']!r}" for n, p in row["parameters"].items())

    print_table(
        ([r["module"], "invalid: " + r["error"], "", "", ""] if "error" in r
         else [r["module"], names(r["inputs"]), names(r["outputs"]), params(r), "sh" if r["shell"] else ""]
         for r in rows),
        ["module", "inputs", "outputs", "parameters", "shell"],
    )
    return 0
