"""The pure core imports no I/O library, and `ml --help` loads no heavy dependency (STYLE.md #1, #9)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORE = ["mlpipe.spec", "mlpipe.plan", "mlpipe.uri", "mlpipe.hashing", "mlpipe.command", "mlpipe.errors"]
THIRD_PARTY = ["boto3", "botocore", "requests", "urllib3", "git", "doit", "tabulate"]
EDGES = ["subprocess", "mlpipe.execute", "mlpipe.engine", "mlpipe.build", "mlpipe.sources", "mlpipe.s3",
         "mlpipe.mirror", "mlpipe.cache", "mlpipe.records", "mlpipe.cli", "mlpipe.commands"]


def loaded_after(code: str) -> set[str]:
    """Top-level and full module names in sys.modules after running `code` in a fresh interpreter."""
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    names = json.loads(done.stdout.strip().splitlines()[-1])
    return set(names) | {name.split(".")[0] for name in names}


@pytest.mark.parametrize("module", [*CORE, ",".join(CORE)])
def test_core_imports_no_io_library(module: str) -> None:
    loaded = loaded_after("\n".join(f"import {name}" for name in module.split(",")))
    assert set(module.split(",")) <= loaded  # the probe really imported the core
    assert loaded.isdisjoint(THIRD_PARTY + EDGES), sorted(loaded & set(THIRD_PARTY + EDGES))


def test_ml_help_loads_no_heavy_dependency() -> None:
    loaded = loaded_after(
        "import runpy, sys\n"
        "sys.argv = ['ml', '--help']\n"
        "try:\n"
        "    runpy.run_module('mlpipe', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
    )
    assert "mlpipe.cli" in loaded
    heavy = {"boto3", "botocore", "requests", "git", "doit"}
    assert loaded.isdisjoint(heavy), sorted(loaded & heavy)


def test_python_m_mlpipe_help_works() -> None:
    done = subprocess.run([sys.executable, "-m", "mlpipe", "--help"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0
    assert "runpipe" in done.stdout and "Traceback" not in done.stderr
