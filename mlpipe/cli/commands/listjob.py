"""`ml listjob [--pipe PIPE] [--status S] [--limit N] [--json]`: job records, newest first."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from mlpipe.cli.commands import add_json_flag, home_settings

if TYPE_CHECKING:
    from mlpipe.home.settings import Settings
    from mlpipe.store.records import JobSummary

TABLE_LIMIT = 100  # a terminal shows no more anyway; --limit 0 shows every record
STATUSES = ("running", "succeeded", "failed", "canceled")  # records.RUNNING, SUCCEEDED, FAILED, CANCELED


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pipe", help="only jobs of this pipe (a pipe id, or a path to a pipe YAML)")
    parser.add_argument("--status", choices=STATUSES, help="only jobs with this status")
    parser.add_argument("--limit", type=int, metavar="N",
                        help=f"the newest N jobs (default: {TABLE_LIMIT} in the table, all with --json; 0: all)")
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from mlpipe.core.errors import UsageError
    from mlpipe.ops.job_list import group_sweeps, job_json, list_jobs

    if args.limit is not None and args.limit < 0:
        raise UsageError("--limit must be 0 (all) or more")
    settings = home_settings()
    pipe = _pipe_id(settings, args.pipe) if args.pipe else None
    rows = list_jobs(settings, pipe, args.status)
    if pipe is not None and not rows:
        _check_known(settings, pipe, {s.pipe for s, _status in list_jobs(settings)})
    limit = args.limit if args.limit is not None else (None if args.json else TABLE_LIMIT)
    shown = group_sweeps(rows[:limit] if limit else rows)
    if args.json:
        _print_json_lines([job_json(s, status, str(settings.data_dir)) for s, status in shown])
        return 0
    _print_table(shown)
    if len(shown) < len(rows):
        print(f"(the newest {len(shown)} of {len(rows)} jobs; --limit 0 shows all)", file=sys.stderr)
    return 0


def _pipe_id(settings: Settings, ref: str) -> str:
    """A pipe id as recorded: a path to a pipe YAML is resolved; `.yaml` may be left out."""
    from pathlib import Path

    from mlpipe.home.apps import resolve_pipe

    if Path(ref).is_file():
        return resolve_pipe(settings, ref)[0]
    return ref if ref.endswith((".yaml", ".yml")) else f"{ref}.yaml"


def _check_known(settings: Settings, pipe: str, recorded: set[str]) -> None:
    """A pipe with records, or one on the apps path (never run yet); else UsageError with a hint."""
    from difflib import get_close_matches

    from mlpipe.core.errors import UsageError
    from mlpipe.home.apps import AppIndex

    if pipe in recorded:
        return
    known = recorded | {pipe_id for pipe_id, _path in AppIndex.discover(settings).pipe_paths()}
    if pipe in known:
        return
    match = get_close_matches(pipe, sorted(known), 1)
    hint = f" (did you mean '{match[0]}'?)" if match else " (see `ml listpipe`)"
    raise UsageError(f"unknown pipe '{pipe}': no job records and no such pipe on the apps path{hint}")


def _print_table(rows: list[tuple[JobSummary, str]]) -> None:
    from tabulate import tabulate

    from mlpipe.cli.report import short

    if not rows:
        print("(none)")
        return
    swept = any(s.sweep for s, _status in rows)  # members are grouped: say under which sweep
    cells = [[short(s.job_id), s.pipe, s.job, s.module, status, _local_time(s.started), _duration(s.duration_s),
              *([s.sweep or "-"] if swept else [])] for s, status in rows]
    headers = ["job_id", "pipe", "job", "module", "status", "started", "duration", *(["sweep"] if swept else [])]
    # NOTE: every cell is already text; disable_numparse makes a 10,000-row table three times faster.
    print(tabulate(cells, headers=headers, disable_numparse=True))


def _print_json_lines(items: list[dict]) -> None:
    """A JSON list with one job per line: readable, and 10,000 jobs print fast (C encoder)."""
    import json

    body = ",\n".join(json.dumps(item) for item in items)
    print(f"[\n{body}\n]" if items else "[]")


def _local_time(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts is not None else "-"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"
