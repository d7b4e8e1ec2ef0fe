"""How a job sees its module, in the ways the original product allowed (pure).

- `input_from_job_config` / `output_from_job_config`: the job, not the module, names the
  inputs / outputs (any names, each a plain file port).
- Outputs are never required: a non-optional output the job does not wire is still produced,
  under the implicit data name `JOB.OUTPUT`; not writing it is no failure.

>>> from mlpipe.core.spec import ModuleSpec, PortSpec, JobSpec
>>> module = ModuleSpec("a/module/m", "m.yaml", {}, {"model": PortSpec("model")}, {}, ())
>>> wired_outputs(JobSpec("train", "a/module/m"), module)
{'model': 'train.model'}
"""

from __future__ import annotations

from dataclasses import replace

from mlpipe.core.spec import JobSpec, ModuleSpec, PortSpec


def implicit_name(job: str, output: str) -> str:
    """The data name of an output a job does not wire."""
    return f"{job}.{output}"


def job_module(module: ModuleSpec, job: JobSpec) -> ModuleSpec:
    """The module as `job` sees it: ports named by the job, implicit outputs optional."""
    inputs, outputs = module.inputs, module.outputs
    if module.inputs_from_job:
        inputs = {name: module.inputs.get(name, PortSpec(name)) for name in job.inputs}
    if module.outputs_from_job:
        outputs = {name: module.outputs.get(name, PortSpec(name)) for name in job.outputs}
    unwired = [name for name, port in outputs.items() if name not in job.outputs and not port.optional]
    if unwired:
        outputs = {**outputs, **{name: replace(outputs[name], optional=True) for name in unwired}}
    if inputs is module.inputs and outputs is module.outputs:
        return module
    return replace(module, inputs=inputs, outputs=outputs)


def wired_outputs(job: JobSpec, module: ModuleSpec | None) -> dict[str, str]:
    """The job's outputs plus an implicit data name for every non-optional one it leaves out."""
    if module is None or module.outputs_from_job:
        return dict(job.outputs)
    implicit = {name: implicit_name(job.name, name) for name, port in module.outputs.items()
                if name not in job.outputs and not port.optional}
    return {**job.outputs, **implicit}
