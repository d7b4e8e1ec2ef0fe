"""One module per `ml` command: `configure(parser)` adds its arguments, `run(args)` does it.

Command modules import only the standard library at the top, so `ml --help` stays fast.
"""

from __future__ import annotations

import argparse


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")


def home_settings(flags: dict | None = None, *, strict: bool = True):  # noqa: ANN201 - keeps the import lazy
    """Settings with the home created (every command does this on first use); see `load_settings`."""
    from mlpipe.home.settings import init_home, load_settings

    settings = load_settings(flags=flags, strict=strict)
    init_home(settings)
    return settings


def add_job_id(parser: argparse.ArgumentParser) -> None:
    """A job id, given as `ID` or, as the original product spelled it, `--job_id ID`."""
    parser.add_argument("job_id", nargs="?", metavar="ID", help="a job id, or a unique prefix of 6+ characters")
    parser.add_argument("--job_id", "--job-id", dest="job_id_flag", metavar="ID", help=argparse.SUPPRESS)


def given_job_id(args: argparse.Namespace) -> str:
    """The job id `add_job_id` read; UsageError when it is missing or given twice."""
    from mlpipe.core.errors import UsageError

    if args.job_id and args.job_id_flag and args.job_id != args.job_id_flag:
        raise UsageError("give the job id once: ID or --job_id ID")
    job_id = args.job_id or args.job_id_flag
    if not job_id:
        raise UsageError("a job id is required (see `ml listjob`)")
    return job_id
