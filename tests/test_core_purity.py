"""The pure core imports no I/O library, and `ml --help` loads no heavy dependency (STYLE.md #1, #9)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORE = ["mlpipe.core.spec", "mlpipe.core.plan", "mlpipe.core.uri", "mlpipe.core.hashing", "mlpipe.core.command",
        "mlpipe.core.errors", "mlpipe.core.yaml_text", "mlpipe.core.graph", "mlpipe.core.graph_layout",
        "mlpipe.core.graph_render"]
THIRD_PARTY = ["boto3", "botocore", "requests", "urllib3", "git", "doit", "tabulate"]
EDGES = ["subprocess", "mlpipe.engine", "mlpipe.sources", "mlpipe.remote", "mlpipe.store", "mlpipe.home",
         "mlpipe.ops", "mlpipe.ui", "mlpipe.cli"]
# The package's layers, lowest first: a module imports only from its own layer or lower ones.
LAYERS = ["core", "store", "home", "remote", "sources", "engine", "ops", "ui", "cli"]


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
    assert "mlpipe.cli.main" in loaded
    heavy = {"boto3", "botocore", "requests", "git", "doit", "dask", "distributed"}
    assert loaded.isdisjoint(heavy), sorted(loaded & heavy)


def test_a_local_run_loads_no_dask_and_a_no_op_rerun_no_doit_runner(tmp_path: Path) -> None:
    """`dask` and `distributed` are an optional extra: only `--executor dask` imports them. A
    rerun with nothing to do needs neither doit's runner nor, without S3_MIRROR, the mirror."""
    from conftest import TOY_CHAIN, TOY_STEP, TOY_STEP_YAML, write_tree

    write_tree(tmp_path / "apps" / "toy", {"__init__.py": "", "module/__init__.py": "", "module/step.py": TOY_STEP,
                                           "module/step.yaml": TOY_STEP_YAML, "data/seed.txt": "seed\n",
                                           "pipe/chain.yaml": TOY_CHAIN})
    env = {"MLPIPE_HOME": str(tmp_path / "home"), "MLPIPE_APPS": str(tmp_path / "apps"),
           "TOY_LOG": str(tmp_path / "log")}
    run = f"import os\nos.environ.update({env!r})\nfrom mlpipe.cli.main import main\n" \
          "assert main(['runpipe', 'toy/pipe/chain.yaml']) == 0\n"
    loaded = loaded_after(run)
    assert (tmp_path / "log").read_text().split() == ["a", "b", "c"]  # the run really ran
    assert "doit" in loaded  # (so the probe can see doit when it is loaded)
    assert loaded.isdisjoint({"dask", "distributed"}), sorted(loaded & {"dask", "distributed"})
    again = loaded_after(run)
    assert (tmp_path / "log").read_text().split() == ["a", "b", "c"]  # nothing ran again
    light = {"doit", "mlpipe.engine.doit_runner", "mlpipe.engine.run", "mlpipe.remote.mirror", "boto3"}
    assert again.isdisjoint(light), sorted(again & light)


def test_only_the_doit_runner_imports_doit() -> None:
    importers = sorted(str(path.relative_to(REPO)) for path in (REPO / "mlpipe").rglob("*.py")
                       if any(name == "doit" for name in _imported_names(path)))
    assert importers == ["mlpipe/engine/doit_runner.py"]


def _imported_names(path: Path) -> set[str]:
    """Top-level packages `path` imports (inside functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
    return names


def test_python_m_mlpipe_help_works() -> None:
    done = subprocess.run([sys.executable, "-m", "mlpipe", "--help"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0
    assert "runpipe" in done.stdout and "Traceback" not in done.stderr


def _imported_layers(path: Path) -> set[tuple[str, int]]:
    """(layer, line) of every mlpipe module `path` imports, lazy imports inside functions included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "mlpipe" and len(parts) > 1 and parts[1] in LAYERS:
                found.add((parts[1], node.lineno))
    return found


def test_every_module_sits_in_a_layer() -> None:
    loose = [p.name for p in (REPO / "mlpipe").glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert not loose, f"modules outside the layers: {loose}"
    assert {p.name for p in (REPO / "mlpipe").iterdir() if p.is_dir() and p.name != "__pycache__"} == set(LAYERS)


def test_imports_only_point_down() -> None:
    upward = []
    for layer in LAYERS:
        for path in sorted((REPO / "mlpipe" / layer).rglob("*.py")):
            for imported, line in _imported_layers(path):
                if LAYERS.index(imported) > LAYERS.index(layer):
                    upward.append(f"{path.relative_to(REPO)}:{line} imports mlpipe.{imported}")
    assert not upward, "imports must point down the layers " + " < ".join(LAYERS) + ":\n" + "\n".join(upward)
