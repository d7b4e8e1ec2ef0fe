"""`ml canceljob ID`: stop a running job and everything it started; its record says `canceled`."""

from __future__ import annotations

import argparse

from mlpipe.cli.commands import add_job_id, given_job_id, home_settings


def configure(parser: argparse.ArgumentParser) -> None:
    add_job_id(parser)


def run(args: argparse.Namespace) -> int:
    from mlpipe.ops.cancel import cancel_job
    from mlpipe.store.records import find_job_id

    settings = home_settings()
    record = cancel_job(settings, find_job_id(settings.jobs_dir, given_job_id(args)))
    print(f"job {record.job_id[:12]} ({record.pipe}, job '{record.job}'): {record.status}")
    return 0
