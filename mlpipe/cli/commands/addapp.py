"""`ml addapp PATH [--app_name N]`: the original product's name for `ml mount`."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app_path", metavar="PATH", help="an app directory (with module/ and/or pipe/)")
    parser.add_argument("--app_name", "--app-name", dest="app_name", metavar="N",
                        help="mount under another name (default: the directory's name)")


def run(args: argparse.Namespace) -> int:
    from mlpipe.cli.commands.mount import mount_app

    return mount_app(args.app_path, args.app_name, "--app_name")
