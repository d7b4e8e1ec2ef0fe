"""`ml getmd5 FILE | --string S`: the fingerprint MLPipe uses for a file or folder, or a string's md5."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", metavar="FILE", help="a file or folder (a folder: md5 over its files)")
    parser.add_argument("--string", metavar="S", help="the md5 of this text instead")


def run(args: argparse.Namespace) -> int:
    from mlpipe.core.errors import UsageError
    from mlpipe.core.hashing import fingerprint, md5_text

    if (args.file is None) == (args.string is None):
        raise UsageError("give a FILE or --string S (one of them)")
    if args.string is not None:
        print(md5_text(args.string))
        return 0
    path = Path(args.file)
    if not path.exists():
        raise UsageError(f"{args.file}: no such file or folder")
    try:
        print(fingerprint(path))
    except OSError as exc:
        raise UsageError(f"{args.file}: cannot read: {exc.strerror or exc}") from None
    return 0
