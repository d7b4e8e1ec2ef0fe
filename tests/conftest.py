"""Shared fixtures: an isolated MLPIPE_HOME, an apps directory, `ml` in-process and as a process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlpipe.cli.main import main

# a real SeaweedFS S3 server; `ml ui` on a free port; a real Dask cluster
pytest_plugins = ["s3fixture", "uifixture", "daskfixture"]

REPO = Path(__file__).resolve().parent.parent


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Create files under `root` from {relative path: text} (text is dedented)."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def source_context(settings, progress: bool = False):  # noqa: ANN001, ANN201 - Settings -> SourceContext
    """What a source gets from a run outside any app, with no mirror: for testing one source alone."""
    from mlpipe.home.apps import AppIndex
    from mlpipe.sources import SourceContext
    from mlpipe.store.cache import LocalCache
    from mlpipe.store.digests import DigestCache

    return SourceContext(settings, AppIndex({}), DigestCache(None), LocalCache(settings.data_dir, settings.scratch_dir),
                         progress=progress)


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Env:
    home: Path
    apps: Path
    log: Path  # every toy job appends "<job name>\n" here when it really executes

    def executed(self) -> list[str]:
        return self.log.read_text().split() if self.log.exists() else []

    def reset_log(self) -> None:
        self.log.unlink(missing_ok=True)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    """A fresh home and apps path; no settings leak in from the machine."""
    for name in list(os.environ):
        if name.startswith(("MLPIPE_", "AWS_")):
            monkeypatch.delenv(name)
    home, apps = tmp_path / "home", tmp_path / "apps"
    apps.mkdir()
    monkeypatch.setenv("MLPIPE_HOME", str(home))
    monkeypatch.setenv("MLPIPE_APPS", str(apps))
    monkeypatch.setenv("TOY_LOG", str(tmp_path / "executed.log"))
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    return Env(home, apps, tmp_path / "executed.log")


@pytest.fixture
def ml(capsys: pytest.CaptureFixture[str]):
    """Run `ml ARGS` in-process; return exit code, stdout and stderr."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def run_json(ml, *args: str) -> dict:
    """`ml runpipe ARGS --json` in-process: its report (the run may have failed: exit 0 or 1)."""
    result = ml("runpipe", *args, "--json")
    assert result.code in (0, 1), result.err
    return json.loads(result.out)


def results(report: dict) -> dict[str, str]:
    """job name -> result of a `runpipe --json` report."""
    return {job["name"]: job["result"] for job in report["jobs"]}


def ml_process(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run the real `ml` executable (as cron or a shell would)."""
    return subprocess.run([sys.executable, "-m", "mlpipe", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, **kwargs)


def ml_unprivileged(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """`ml_process` with file permissions enforced: as root, without the capabilities that let
    root ignore them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so `chmod 000` and a read-only
    home mean what they mean for any user. Skips when that cannot be arranged here."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv(1) is not installed: root ignores file permissions")
        caps = "-dac_override,-dac_read_search"
        prefix = [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]
    return subprocess.run([*prefix, sys.executable, "-m", "mlpipe", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, **kwargs)


# A toy app whose jobs are tiny and record each real execution in $TOY_LOG.
TOY_STEP = '''
"""Copy the inputs to the output, append a line; record the execution in $TOY_LOG."""
import argparse, os, sys, time

parser = argparse.ArgumentParser()
parser.add_argument("--name", default="step")
parser.add_argument("--tag", default="")
parser.add_argument("--sleep", type=float, default=0)
parser.add_argument("--fail", action="store_true")
parser.add_argument("--constant", action="store_true", help="write a fixed text, ignoring the inputs")
parser.add_argument("output")
parser.add_argument("inputs", nargs="*")
args = parser.parse_args()
with open(os.environ["TOY_LOG"], "a") as log:
    log.write(args.name + "\\n")
time.sleep(args.sleep)
if args.fail:
    sys.exit(3)
with open(args.output, "w") as out:
    if args.constant:
        out.write("constant\\n")
    else:
        for path in args.inputs:
            out.write(open(path).read())
        out.write(f"{args.name} {args.tag}\\n")
'''

TOY_STEP_YAML = """
input:
  inputs: {type: text, optional: true}
output:
  output: {type: text}
parameters:
  name: {type: str, default: step}
  tag: {type: str, default: ""}
  sleep: {type: float, default: 0}
  fail: {type: bool, default: false, flag: --fail}
  constant: {type: bool, default: false, flag: --constant}
cmd: python -m toy.module.step --name name --tag tag --sleep sleep fail constant output inputs
"""

TOY_CHAIN = """
jobs:
  a:
    module: toy/module/step
    input: {inputs: file://toy/data/seed.txt}
    output: {output: a_out}
    parameters: {name: a}
  b:
    module: toy/module/step
    input: {inputs: a_out}
    output: {output: b_out}
    parameters: {name: b}
  c:
    module: toy/module/step
    input: {inputs: b_out}
    output: {output: c_out}
    parameters: {name: c}
"""


@pytest.fixture
def toy(env: Env) -> Path:
    """The toy app with a 3-job chain pipe `toy/pipe/chain.yaml` (a -> b -> c)."""
    return write_tree(env.apps / "toy", {
        "__init__.py": "",
        "module/__init__.py": "",
        "module/step.py": TOY_STEP,
        "module/step.yaml": TOY_STEP_YAML,
        "data/seed.txt": "seed\n",
        "pipe/chain.yaml": TOY_CHAIN,
    })


def wait_for(condition, timeout: float = 30.0) -> None:
    """Poll `condition` until it holds (a background `ml` reached some state)."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
