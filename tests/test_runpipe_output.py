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
