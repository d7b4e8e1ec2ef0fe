"""Read a finished job's `type: metrics` outputs, so their flattened values go into `job.json`."""

from __future__ import annotations

import os
from pathlib import Path

from mlpipe.core.metrics import MAX_BYTES, METRICS_TYPE, MetricsError, Scalar, merge_outputs, parse_metrics
from mlpipe.core.plan import PlannedJob


def metrics_outputs(job: PlannedJob) -> list[str]:
    return [out for out in job.outputs if job.module.outputs[out].type == METRICS_TYPE]


def read_metrics_file(path: str | Path) -> dict[str, Scalar]:
    """One metrics output's flattened values; MetricsError when it is a folder, too big or unparsable."""
    if not os.path.isfile(path):
        raise MetricsError("not a file")
    with open(path, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    return parse_metrics(data)


def read_metrics(job: PlannedJob, produced: dict[str, str]) -> tuple[dict[str, Scalar] | None, str | None]:
    """(metrics for job.json, None), or (None, an error naming the output that does not parse)."""
    names = [out for out in metrics_outputs(job) if os.path.exists(produced[out])]
    if not names:
        return None, None
    found = {}
    for out in names:
        try:
            found[out] = read_metrics_file(produced[out])
        except (MetricsError, OSError) as exc:
            return None, f"metrics output '{out}' does not parse: {exc}"
    return merge_outputs(found), None
