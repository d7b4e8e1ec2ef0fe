"""`ml viewjob ID [--json]`: one job's record, its outputs in the cache and its log files."""

from __future__ import annotations

import argparse
import shlex
import time
from typing import TYPE_CHECKING

from mlpipe.cli.commands import add_job_id, add_json_flag, given_job_id, home_settings

if TYPE_CHECKING:
    from mlpipe.store.cache import LocalCache


def configure(parser: argparse.ArgumentParser) -> None:
    add_job_id(parser)
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from mlpipe.cli.report import print_json
    from mlpipe.core.errors import UsageError
    from mlpipe.store import records
    from mlpipe.store.cache import LocalCache

    settings = home_settings()
    job_id = records.find_job_id(settings.jobs_dir, given_job_id(args))
    record = records.read_record(settings.jobs_dir, job_id)
    if record is None:
        raise UsageError(f"job {job_id}: cannot read its record {records.job_dir(settings.jobs_dir, job_id)}/job.json")
    cache = LocalCache(settings.data_dir, settings.scratch_dir)
    outputs = {name: {"path": str(cache.path(h)), "cached": cache.exists(h)} for name, h in record.outputs.items()}
    stdout_log, stderr_log = records.log_paths(settings.jobs_dir, job_id)
    files = {"record": str(records.job_dir(settings.jobs_dir, job_id) / "job.json"),
             "stdout": str(stdout_log), "stderr": str(stderr_log)}
    status = records.effective_status(record)
    if args.json:
        print_json({**asdict(record), "status": status, "output_paths": outputs, "files": files})
        return 0
    rows = [
        ["job id", record.job_id], ["pipe", record.pipe], ["job", record.job], ["module", record.module],
        ["status", status + (f" ({record.error})" if record.error else "")],
        ["started", _when(record.started)], ["ended", _when(record.ended)],
        ["duration", "" if record.duration_s is None else f"{record.duration_s:.2f}s"],
        ["host / pid", f"{record.host} / {record.pid}"], ["exit code", _text(record.exit_code)],
        ["command", shlex.join(record.argv)],
        *([f"parameter {k}", _text(v)] for k, v in record.parameters.items()),
        *([f"input {k}", ", ".join(_origin(o, cache) for o in v)] for k, v in record.input_refs.items()),
        *([f"output {k}", o["path"] + ("" if o["cached"] else " (not in the cache)")] for k, o in outputs.items()),
        *([f"{k} file", v] for k, v in files.items()),
    ]
    width = max(len(key) for key, _value in rows)
    print("\n".join(f"{key:<{width}}  {value}" for key, value in rows))
    return 0


def _origin(origin: str, cache: LocalCache) -> str:
    """An input's origin: its URI, or the cache path of another job's output (`data:<hash>`)."""
    from mlpipe.ops.rerun import data_hash_of

    data_hash = data_hash_of(origin)
    return origin if data_hash is None else str(cache.path(data_hash))


def _when(stamp: float | None) -> str:
    return "" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _text(value: object) -> str:
    return "" if value is None else str(value)
