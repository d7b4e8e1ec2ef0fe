"""The S3 mirror: a remote copy of the cache shared by machines and team members."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlpipe.errors import UsageError
from mlpipe.settings import Settings

if TYPE_CHECKING:
    from mlpipe.build import Mirror


def open_mirror(settings: Settings) -> Mirror | None:
    """The configured mirror, or None when `S3_MIRROR` is unset or `S3_SYNC` is off."""
    if not settings["S3_MIRROR"] or not settings["S3_SYNC"]:
        return None
    raise UsageError("S3_MIRROR is set, but this version of MLPipe cannot sync with a mirror yet")
