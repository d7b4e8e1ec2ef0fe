"""Symbolic links in a job's outputs: copied in when they point inside its scratch directory,
refused when they point anywhere else, so publishing never reaches out of the scratch directory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mlpipe.core.errors import TreeError

MAX_LINKS = 10_000  # a folder that keeps growing links is a loop, not data


def inline_links(path: Path, scratch: Path) -> None:
    """Replace every link in `path` (or `path` itself) by a copy of its target inside `scratch`.

    Raises TreeError naming the link when it dangles, loops, or points outside `scratch`.
    """
    boundary = os.path.realpath(scratch)
    for _ in range(MAX_LINKS):
        link = _first_link(path)
        if link is None:
            return
        real = os.path.realpath(link)
        if not os.path.exists(real):
            raise TreeError(f"{link} is a dangling symbolic link (to {os.readlink(link)})")
        if not (real == boundary or real.startswith(boundary + os.sep)):
            raise TreeError(f"{link} is a symbolic link to {real}, outside the job's scratch directory")
        if os.path.isdir(real) and (os.path.realpath(os.path.dirname(link)) + os.sep).startswith(real + os.sep):
            raise TreeError(f"{link} is a symbolic link loop (back to {real})")
        copy = f"{link}.mlpipe-inline"
        if os.path.isdir(real):
            shutil.copytree(real, copy, symlinks=True)
            os.unlink(link)  # rename cannot put a folder over a link in one step
            os.rename(copy, link)
        elif os.path.isfile(real):
            shutil.copyfile(real, copy)
            os.replace(copy, link)
        else:
            raise TreeError(f"{link} points to {real}, which is not a regular file or folder")
    raise TreeError(f"{path} holds more than {MAX_LINKS} symbolic links")


def _first_link(path: Path) -> str | None:
    if path.is_symlink():
        return str(path)
    if not path.is_dir():
        return None
    for dirpath, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                return full
    return None
