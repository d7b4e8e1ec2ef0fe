"""One module per `ml` command: `configure(parser)` adds its arguments, `run(args)` does it.

Command modules import only the standard library at the top, so `ml --help` stays fast.
"""

from __future__ import annotations

import argparse


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")


def home_settings(flags: dict | None = None, *, strict: bool = True):  # noqa: ANN201 - keeps the import lazy
    """Settings with the home created (every command does this on first use); see `load_settings`."""
    from mlpipe.home.settings import init_home, load_settings

    settings = load_settings(flags=flags, strict=strict)
    init_home(settings)
    return settings
