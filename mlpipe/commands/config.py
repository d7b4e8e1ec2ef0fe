"""`ml config [--json]`: every setting, its value and its source."""

from __future__ import annotations

import argparse

from mlpipe.commands import add_json_flag, home_settings


def configure(parser: argparse.ArgumentParser) -> None:
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from mlpipe.report import print_json, print_table

    settings = home_settings()
    rows = []
    for name, value in settings.values.items():
        shown = [str(v) for v in value] if isinstance(value, list) else value if isinstance(value, bool | int) else str(value)
        rows.append({"name": name, "value": shown, "source": settings.sources[name]})
    if args.json:
        print_json(rows)
    else:
        print_table(([r["name"], r["value"], r["source"]] for r in rows), ["name", "value", "source"])
    return 0
