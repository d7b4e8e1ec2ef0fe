"""What `ml runpipe` prints: timestamped log lines (LOG_TIMESTAMPS), summaries that end their line."""

from __future__ import annotations

import re

from conftest import write_tree

CHAIN = "toy/pipe/chain.yaml"
ISO_PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d ")


def test_log_timestamps_prefix_every_progress_and_error_line(env, ml, toy, monkeypatch):
    plain = ml("runpipe", CHAIN, "--set", "b.fail=true")
    assert plain.code == 1 and not any(ISO_PREFIX.match(line) for line in plain.err.splitlines())
    monkeypatch.setenv("MLPIPE_LOG_TIMESTAMPS", "1")
    for args, code in (([CHAIN], 0), ([CHAIN], 0), ([CHAIN, "--set", "b.fail=true"], 1), (["toy/pipe/bad.yaml"], 2)):
        write_tree(toy, {"pipe/bad.yaml": "jobs: {x: {module: toy/module/nope}}"})
        result = ml("runpipe", *args)
        assert result.code == code, result.err
        lines = result.err.splitlines()
        assert lines and all(ISO_PREFIX.match(line) for line in lines), result.err
    assert "unknown module 'toy/module/nope'" in result.err
    assert not ISO_PREFIX.match(ml("runpipe", CHAIN, "-n").out)  # results on stdout stay as they are
    monkeypatch.setenv("MLPIPE_LOG_TIMESTAMPS", "0")
    assert not ISO_PREFIX.match(ml("runpipe", CHAIN).err)


def big_pipe(toy, parameters: dict) -> str:
    import yaml

    job = {"module": "toy/module/step", "output": {"output": "o"}, "parameters": parameters}
    write_tree(toy, {"pipe/big.yaml": yaml.safe_dump({"jobs": {"big": job}})})
    return "toy/pipe/big.yaml"


def test_a_parameter_too_long_for_the_command_line_is_refused_before_running(env, ml, toy):
    pipe = big_pipe(toy, {"tag": "x" * 1_000_000})
    for args in ([pipe], [pipe, "-n"]):
        result = ml("runpipe", *args)
        assert result.code == 2, result.err
        assert "big.yaml: job 'big': parameters.tag: 1000000 bytes" in result.err
        assert "128 KiB" in result.err
    assert env.executed() == [] and not list((env.home / "jobs").iterdir())
    assert ml("runpipe", big_pipe(toy, {"tag": "x" * 100_000})).code == 0  # long, but it fits


def test_parameters_too_long_together_are_refused(env, ml, toy):
    toy.joinpath("module", "step.yaml").write_text(
        toy.joinpath("module", "step.yaml").read_text().replace("  name: {type: str, default: step}",
                                                                "  name: {type: str, default: step}\n"
                                                                "  words: {type: list, default: []}")
        .replace("--name name", "--name name words"))
    result = ml("runpipe", big_pipe(toy, {"words": ["y" * 120_000] * 20}))
    assert result.code == 2, result.err
    assert "job 'big': parameters: " in result.err and "2 MB" in result.err
    assert env.executed() == []


def test_a_nul_byte_in_a_parameter_is_refused_before_running(env, ml, toy):
    result = ml("runpipe", big_pipe(toy, {"tag": "a\0b"}))
    assert result.code == 2, result.err
    assert "job 'big': parameters.tag: " in result.err and "NUL" in result.err
    assert env.executed() == []


def test_dry_run_output_is_complete_before_the_next_command_writes(env, toy):
    """`main()` called twice in one process (a script, a notebook), stdout and stderr into one log:
    the dry run's table and summary line come first and whole, not flushed later into the progress."""
    import os
    import subprocess
    import sys

    script = ("from mlpipe.cli.main import main\n"
              f"main(['runpipe', '{CHAIN}', '-n'])\n"
              f"main(['runpipe', '{CHAIN}'])\n")
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as for most users
    proc = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=120, env=environ)
    lines = proc.stdout.splitlines()
    assert "3 of 3 jobs stale" in lines, proc.stdout
    assert lines.index("3 of 3 jobs stale") < lines.index("[0/3] a: started (toy/module/step)")
