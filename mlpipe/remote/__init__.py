"""S3 access and the S3 mirror of the cache."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlpipe.home.settings import Settings
    from mlpipe.remote.mirror import RunMirror


def open_mirror(settings: Settings) -> RunMirror | None:
    """The mirror for `ml runpipe`, or None when `S3_MIRROR` is unset or `S3_SYNC` is off (then
    the mirror's code is not even imported: a local no-op run stays light)."""
    if not settings["S3_MIRROR"] or not settings["S3_SYNC"]:
        return None
    from mlpipe.remote.mirror import RunMirror, S3Mirror

    return RunMirror(S3Mirror(settings))
