"""`ml mount DIR`: link an app into `$MLPIPE_HOME/apps`."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlpipe.cli.commands import home_settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="an app directory (with module/ and/or pipe/)")
    parser.add_argument("--name", help="mount under another name (default: the directory's name)")


def run(args: argparse.Namespace) -> int:
    return mount_app(args.dir, args.name, "--name")


def mount_app(directory: str, name: str | None, name_flag: str) -> int:
    """Link `directory` into the home's apps as `name` (default: its own name)."""
    from mlpipe.core.errors import UsageError
    from mlpipe.home.apps import is_app

    settings = home_settings()
    source = Path(directory).expanduser().resolve()
    if not is_app(source):
        raise UsageError(f"{directory}: not an app (an app is a directory with module/ and/or pipe/ inside)")
    if name is not None and (not name or "/" in name or name in (".", "..")):
        raise UsageError(f"{name_flag} {name!r}: an app name is one path component")
    name = name or source.name
    link = settings.apps_dir / name
    if link.is_symlink() or link.exists():
        if link.resolve() == source:
            print(f"{name} already mounted: {link} -> {source}")
            return 0
        raise UsageError(f"an app named '{name}' is already mounted ({link} -> {link.resolve()}); use {name_flag}")
    link.symlink_to(source, target_is_directory=True)
    print(f"mounted {name}: {link} -> {source}")
    return 0
