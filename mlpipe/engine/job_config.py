"""`_default_config`: the job's configuration, written where the original product's scripts read it.

    module: app/module/find_best
    input: {scores: [/cache/data/ab/ab12..., /cache/data/cd/cd34...]}   # file paths, lists kept
    output: {best: /cache/tmp/job-.../outputs/best}
    parameters: {metric: loss}
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mlpipe.core.plan import PlannedJob

CONFIG_NAME = "_default_config"


def job_config(job: PlannedJob, values: Mapping[str, list[str]]) -> dict:
    """The config as data: `values` holds each input's and output's paths (or literal values)."""
    inputs = {name: list(values[name]) if binding.is_list else values[name][0] for name, binding in job.inputs.items()}
    return {
        "module": job.module.module_id,
        "input": inputs,
        "output": {name: values[name][0] for name in job.outputs},
        "parameters": dict(job.params),
    }


def write_job_config(workdir: Path, job: PlannedJob, values: Mapping[str, list[str]]) -> Path:
    import yaml

    path = workdir / CONFIG_NAME
    path.write_text(yaml.safe_dump(job_config(job, values), default_flow_style=False, sort_keys=True))
    return path
