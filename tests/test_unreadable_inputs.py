"""An input MLPipe may not read is invalid input (exit 2 before anything runs), not a crash at run time."""

from __future__ import annotations

import pytest
from conftest import ml_unprivileged, write_tree

PIPE = """
jobs:
  first:
    module: toy/module/step
    input: {{inputs: {uri}}}
    output: {{output: o}}
"""


@pytest.mark.parametrize("kind", ["file", "folder", "subfolder"])
@pytest.mark.parametrize("scheme", ["file", "local"])
def test_unreadable_input_is_exit_2_naming_pipe_job_and_field(env, ml, toy, kind, scheme):
    write_tree(toy, {"data/tree/a.txt": "a\n", "data/tree/sub/b.txt": "b\n"})
    target = {"file": toy / "data" / "seed.txt", "folder": toy / "data" / "tree",
              "subfolder": toy / "data" / "tree" / "sub"}[kind]
    rel = "seed.txt" if kind == "file" else "tree"
    uri = f"file://toy/data/{rel}" if scheme == "file" else f"local://{toy / 'data' / rel}"
    write_tree(toy, {"pipe/locked.yaml": PIPE.format(uri=uri)})
    target.chmod(0)
    try:
        runs = [ml_unprivileged("runpipe", "toy/pipe/locked.yaml", *args) for args in ([], ["-n"])]
    finally:
        target.chmod(0o755)
    for result in runs:
        assert result.returncode == 2, result.stderr
        [line] = result.stderr.splitlines()
        assert "locked.yaml: job 'first': input.inputs: " in line
        assert f"cannot read {target}: Permission denied" in line
    assert env.executed() == [] and not list((env.home / "jobs").iterdir())


def test_an_input_hashed_before_is_still_checked(env, ml, toy):
    """The md5 memo is keyed by a stat that chmod does not change: readability is checked anyway."""
    write_tree(toy, {"pipe/locked.yaml": PIPE.format(uri="file://toy/data/seed.txt")})
    assert ml("runpipe", "toy/pipe/locked.yaml").code == 0
    seed = toy / "data" / "seed.txt"
    seed.chmod(0)
    try:
        result = ml_unprivileged("runpipe", "toy/pipe/locked.yaml", "--set", "first.tag=new")
    finally:
        seed.chmod(0o644)
    assert result.returncode == 2, result.stderr
    assert f"job 'first': input.inputs: file://toy/data/seed.txt: cannot read {seed}" in result.stderr
    assert env.executed() == ["step"]  # only the first run (the job has no name parameter)
