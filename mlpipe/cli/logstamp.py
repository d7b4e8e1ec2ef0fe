"""ISO timestamps at the start of every stderr line (setting LOG_TIMESTAMPS), for logs such as cron's.

    2026-12-03T06:30:01+00:00 [1/3] a: ran 0.03s
    2026-12-03T06:30:01+00:00 toy/pipe/chain.yaml: 3 ran in 0.10s
"""

from __future__ import annotations

import sys
import threading
from datetime import datetime
from typing import IO, Any


class TimestampedStream:
    """Wraps a text stream; every line written gets the local time (ISO 8601, seconds) in front."""

    def __init__(self, stream: IO[str]):
        self._stream = stream
        self._at_line_start = True
        self._lock = threading.Lock()  # job output is echoed from several threads

    def write(self, text: str) -> int:
        with self._lock:
            for piece in text.splitlines(keepends=True):
                if self._at_line_start:
                    self._stream.write(datetime.now().astimezone().isoformat(timespec="seconds") + " ")
                self._stream.write(piece)
                self._at_line_start = piece.endswith("\n")
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding: the wrapped stream's
        return getattr(self._stream, name)


def stamp_stderr() -> None:
    """From now on, stderr lines carry a timestamp (`cli.main` puts the plain stream back)."""
    if not isinstance(sys.stderr, TimestampedStream):
        sys.stderr = TimestampedStream(sys.stderr)  # type: ignore[assignment]
