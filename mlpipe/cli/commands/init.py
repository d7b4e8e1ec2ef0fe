"""`ml init`: create the home layout (idempotent) and print its path."""

from __future__ import annotations

import argparse

from mlpipe.cli.commands import home_settings


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    print(home_settings().home)
    return 0
