"""`ml config [--json]`: every setting, its value and its source; an invalid value is shown with why."""

from __future__ import annotations

import argparse
import sys

from mlpipe.cli.commands import add_json_flag, home_settings


def configure(parser: argparse.ArgumentParser) -> None:
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from mlpipe.cli.report import print_json, print_table

    settings = home_settings(strict=False)  # the one command that must work with bad settings: it shows them
    rows = [{"name": name, "value": _shown(value), "source": settings.sources[name],
             **({"problem": settings.problems[name]} if name in settings.problems else {})}
            for name, value in settings.values.items()]
    for problem in settings.problems.values():
        print(f"ml config: {problem}", file=sys.stderr)
    if args.json:
        print_json(rows)
    else:
        print_table(([r["name"], repr(r["value"]) if "problem" in r else r["value"], r["source"]] for r in rows),
                    ["name", "value", "source"])
    return 0


def _shown(value: object) -> object:
    """JSON-friendly: paths as strings, lists of paths as lists of strings."""
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return value if isinstance(value, bool | int | float) or value is None else str(value)
