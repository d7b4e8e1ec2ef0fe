"""`ml joblog ID [--stdout|--stderr] [--follow]`: print a job's logs; `--follow` tails a running job."""

from __future__ import annotations

import argparse
import codecs
import sys
import time
from pathlib import Path

from mlpipe.cli.commands import add_job_id, given_job_id

POLL_S = 0.2


def configure(parser: argparse.ArgumentParser) -> None:
    add_job_id(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--stdout", action="store_true", help="only the job's standard output")
    which.add_argument("--stderr", action="store_true", help="only the job's standard error")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing while the job runs")


def run(args: argparse.Namespace) -> int:
    from mlpipe.cli.commands import home_settings
    from mlpipe.store.records import find_job_id, log_paths

    jobs_dir = home_settings().jobs_dir
    job_id = find_job_id(jobs_dir, given_job_id(args))
    stdout_log, stderr_log = log_paths(jobs_dir, job_id)
    logs = [stdout_log] if args.stdout else [stderr_log] if args.stderr else [stdout_log, stderr_log]
    tail = _Tail(logs, headers=len(logs) > 1)
    tail.drain(first=not args.follow)
    if args.follow:
        while _is_running(jobs_dir, job_id):
            time.sleep(POLL_S)
            tail.drain()
        tail.drain()  # what the job wrote just before it ended
    return 0


def _is_running(jobs_dir: Path, job_id: str) -> bool:
    from mlpipe.store.records import RUNNING, effective_status, read_record

    record = read_record(jobs_dir, job_id)
    return record is not None and effective_status(record) == RUNNING


class _Tail:
    """Print what each log gained since the last call, under a `==> NAME <==` header (as `tail` does)."""

    def __init__(self, paths: list[Path], headers: bool):
        self.offsets = dict.fromkeys(paths, 0)
        self.decoders = {path: codecs.getincrementaldecoder("utf-8")(errors="replace") for path in paths}
        self.headers = headers
        self.current: Path | None = None
        self.at_line_start = True

    def drain(self, first: bool = False) -> None:
        """Print new bytes of every log; `first` also shows the header of an empty log."""
        for path in self.offsets:
            chunk = _read_from(path, self.offsets[path])
            self.offsets[path] += len(chunk)
            if chunk or first:
                self._header(path, empty=not chunk)
            text = self.decoders[path].decode(chunk)
            if text:
                sys.stdout.write(text)
                self.at_line_start = text.endswith("\n")
        sys.stdout.flush()

    def _header(self, path: Path, empty: bool) -> None:
        if not self.headers or path == self.current:
            return
        gap = "" if self.current is None else ("\n" if self.at_line_start else "\n\n")
        sys.stdout.write(f"{gap}==> {path.name} <==\n" + ("(empty)\n" if empty else ""))
        self.current, self.at_line_start = path, True


def _read_from(path: Path, offset: int) -> bytes:
    """The bytes of `path` after `offset`; nothing while the log does not exist yet."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read()
    except FileNotFoundError:
        return b""
