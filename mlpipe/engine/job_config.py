"""The original product's job folder conventions: `_default_config`, and outputs named like their port.

The job's configuration, written where the original's scripts read it:

    module: app/module/find_best
    input: {scores: [/cache/data/ab/ab12..., /cache/data/cd/cd34...]}   # file paths, lists kept
    output: {best: /cache/tmp/job-.../outputs/best}
    parameters: {metric: loss}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mlpipe.core.plan import PlannedJob

CONFIG_NAME = "_default_config"


def job_config(job: PlannedJob, inputs: Mapping[str, list[str]], outputs: Mapping[str, str]) -> dict:
    """The config as data: each input's paths (or literal values, `datafile: false`), each output's path."""
    return {
        "module": job.module.module_id,
        "input": {name: list(inputs[name]) if b.is_list else inputs[name][0] for name, b in job.inputs.items()},
        "output": dict(outputs),
        "parameters": dict(job.params),
    }


def write_job_config(workdir: str, job: PlannedJob, inputs: Mapping[str, list[str]],
                     outputs: Mapping[str, str]) -> Path:
    import yaml

    path = Path(workdir, CONFIG_NAME)
    path.write_text(yaml.safe_dump(job_config(job, inputs, outputs), default_flow_style=False, sort_keys=True))
    return path


def adopt_named_outputs(workdir: str, produced: Mapping[str, str]) -> None:
    """Take an output the job wrote as `NAME` in its working directory, as the original's scripts
    did, when nothing is at the path MLPipe gave for it (publishing then checks it as usual)."""
    for name, path in produced.items():
        if name in (os.path.basename(os.path.dirname(path)), CONFIG_NAME) or os.path.lexists(path):
            continue
        found = os.path.join(workdir, name)
        if os.path.lexists(found):
            os.rename(found, path)
