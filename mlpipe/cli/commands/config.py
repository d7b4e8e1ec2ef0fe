"""`ml config [--json]`: every setting, its value and its source."""

from __future__ import annotations

import argparse

from mlpipe.cli.commands import add_json_flag, home_settings


def configure(parser: argparse.ArgumentParser) -> None:
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from mlpipe.cli.report import print_json, print_table

    settings = home_settings()
    rows = [{"name": name, "value": _shown(value), "source": settings.sources[name]}
            for name, value in settings.values.items()]
    if args.json:
        print_json(rows)
    else:
        print_table(([r["name"], r["value"], r["source"]] for r in rows), ["name", "value", "source"])
    return 0


def _shown(value: object) -> object:
    """JSON-friendly: paths as strings, lists of paths as lists of strings."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return value if isinstance(value, bool | int) else str(value)
