"""Job records as listings: `ml listjob`'s rows and JSON, and the web UI's job views.

The summaries come from the records index (store/records.py); a full record (`job.json`) is read
only for one job's page. Keys the engine does not model yet (`"sweep"`, `"metrics"`) are read
from `job.json` as they are, when present.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from mlpipe.home.settings import Settings
from mlpipe.store.records import JobSummary, effective_status, job_dir, list_summaries


def list_jobs(settings: Settings, pipe: str | None = None, status: str | None = None) -> list[tuple[JobSummary, str]]:
    """(summary, effective status) of every record, newest first, optionally of one pipe or status."""
    rows = [(s, effective_status(s)) for s in list_summaries(settings.jobs_dir) if pipe is None or s.pipe == pipe]
    return [(s, st) for s, st in rows if status is None or st == status]


def job_json(summary: JobSummary, status: str, data_dir: str) -> dict[str, Any]:
    """One job in `ml listjob --json`'s shape."""
    # outputs as cache paths: LocalCache.path's layout, formatted as text (pathlib is slow for 10,000 jobs);
    # null when the cache does not hold it (a failed job's output, an entry gc removed)
    outputs = {name: path if os.path.lexists(path := f"{data_dir}/{h[:2]}/{h}") else None
               for name, h in summary.outputs.items()}
    return {"job_id": summary.job_id, "pipe": summary.pipe, "job": summary.job, "module": summary.module,
            "status": status, "started": iso_time(summary.started), "duration_s": summary.duration_s,
            "outputs": outputs, "exit_code": summary.exit_code, "host": summary.host, "sweep": summary.sweep}


def group_sweeps(rows: list[tuple[JobSummary, str]]) -> list[tuple[JobSummary, str]]:
    """Members of one sweep (of one pipe) together, at the place of the sweep's newest record;
    everything else in its order."""
    groups: dict[object, list[tuple[JobSummary, str]]] = {}
    for index, row in enumerate(rows):
        summary = row[0]
        groups.setdefault((summary.pipe, summary.sweep) if summary.sweep else index, []).append(row)
    return [row for group in groups.values() for row in group]


def latest_by_job(rows: list[tuple[JobSummary, str]]) -> dict[str, tuple[JobSummary, str]]:
    """The newest record of each job name (rows are newest first)."""
    latest: dict[str, tuple[JobSummary, str]] = {}
    for summary, status in rows:
        latest.setdefault(summary.job, (summary, status))
    return latest


def read_job_data(settings: Settings, job_id: str) -> dict[str, Any] | None:
    """A record's `job.json` as written, every key kept (None when absent or unreadable)."""
    try:
        data = json.loads((job_dir(settings.jobs_dir, job_id) / "job.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def iso_time(ts: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(ts)) if ts is not None else None
