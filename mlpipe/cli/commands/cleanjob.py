"""`ml cleanjob`: cancel every running job of this home (and the pipe runs that started them)."""

from __future__ import annotations

import argparse

from mlpipe.cli.commands import home_settings


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from mlpipe.ops.cancel import cancel_everything

    runs, jobs = cancel_everything(home_settings())
    for run in runs:
        print(f"{run.pipe}: stopped its run (pid {run.pid})")
    for record in jobs:
        print(f"job {record.job_id[:12]} ({record.pipe}, job '{record.job}'): {record.status}")
    print(f"stopped {len(runs)} pipe run(s); {len(jobs)} job(s) canceled" if runs or jobs else "no job is running")
    return 0
