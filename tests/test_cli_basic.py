"""`ml` basics in-process: help, init, config, mount, listpipe, listmodule, usage errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import Env, ml_process, write_tree

from mlpipe.cli.main import main

HOME_LAYOUT = ["apps", "cache/data", "cache/tmp", "downloads", "jobs", "doit", "locks", "state"]


def exit_code(*args: str) -> int:
    """main()'s exit code, whether it returns it or argparse raises SystemExit."""
    try:
        return main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.parametrize("args", [(), ("--help",), ("-h",)])
def test_help_lists_the_commands(env: Env, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    assert exit_code(*args) == 0
    out = capsys.readouterr().out
    for command in ("init", "config", "mount", "listpipe", "listmodule", "runpipe"):
        assert command in out
    assert "runpipe      run what is stale in a pipe, like make" in out  # each command with its one-line help


def test_ml_executable_without_command_prints_help(env: Env) -> None:
    done = ml_process()
    assert done.returncode == 0
    assert "listpipe" in done.stdout and done.stderr == ""


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("bogus",), "invalid choice: 'bogus'"),
        (("listpipe", "--no-such-flag"), "unrecognized arguments: --no-such-flag"),
        (("mount",), "the following arguments are required: dir"),
    ],
)
def test_bad_usage_exits_2(env: Env, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], fragment: str) -> None:
    assert exit_code(*args) == 2
    assert fragment in capsys.readouterr().err


def test_unknown_command_from_the_executable(env: Env) -> None:
    done = ml_process("frobnicate")
    assert done.returncode == 2
    assert "invalid choice: 'frobnicate'" in done.stderr and "Traceback" not in done.stderr


def test_init_prints_home_and_creates_layout_idempotently(env: Env, ml) -> None:
    assert not env.home.exists()
    first = ml("init")
    assert (first.code, first.out.strip()) == (0, str(env.home))
    for rel in HOME_LAYOUT:
        assert (env.home / rel).is_dir(), rel
    (env.home / "jobs" / "keep.txt").write_text("x")
    second = ml("init")
    assert (second.code, second.out) == (0, first.out)
    assert (env.home / "jobs" / "keep.txt").read_text() == "x"


def config(ml) -> dict[str, dict]:
    result = ml("config", "--json")
    assert result.code == 0
    rows = json.loads(result.out)
    assert all(set(row) == {"name", "value", "source"} for row in rows)  # "problem" only for a bad value
    return {row["name"]: row for row in rows}


def test_config_json_lists_settings_with_sources(env: Env, ml) -> None:
    rows = config(ml)
    assert {"HOME", "APPS", "CACHE_DIR", "DOWNLOAD_DIR", "JOBS", "S3_MIRROR", "S3_ENDPOINT_URL"} <= set(rows)
    assert rows["HOME"] == {"name": "HOME", "value": str(env.home), "source": "env"}
    assert rows["APPS"] == {"name": "APPS", "value": [str(env.apps)], "source": "env"}
    assert rows["CACHE_DIR"] == {"name": "CACHE_DIR", "value": str(env.home / "cache"), "source": "default"}
    assert rows["JOBS"] == {"name": "JOBS", "value": 1, "source": "default"}
    assert rows["S3_MIRROR"]["source"] == "default"
    assert env.home.is_dir()  # every command creates the home on first use


def test_config_json_reports_extra_settings_and_env(env: Env, ml, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(env.home, {"extra_settings.py": 'S3_MIRROR = "s3://team-bucket/mlpipe"\nJOBS = 3\n'})
    monkeypatch.setenv("MLPIPE_JOBS", "8")
    rows = config(ml)
    assert rows["S3_MIRROR"] == {"name": "S3_MIRROR", "value": "s3://team-bucket/mlpipe", "source": "extra_settings.py"}
    assert rows["JOBS"] == {"name": "JOBS", "value": 8, "source": "env"}
    assert rows["S3_ENDPOINT_URL"]["source"] == "default"


def test_config_table(env: Env, ml) -> None:
    result = ml("config")
    assert result.code == 0
    home_line = next(line for line in result.out.splitlines() if line.startswith("HOME"))
    assert str(env.home) in home_line and home_line.rstrip().endswith("env")


@pytest.mark.parametrize("raw", ["lots", "0", ""])
def test_bad_setting_shows_in_config_and_fails_other_commands(env: Env, ml, toy, monkeypatch: pytest.MonkeyPatch,
                                                              raw: str) -> None:
    monkeypatch.setenv("MLPIPE_JOBS", raw)
    table = ml("config")
    assert table.code == 0, table.err
    jobs_line = next(line for line in table.out.splitlines() if line.startswith("JOBS"))
    assert repr(raw) in jobs_line and "env" in jobs_line
    assert f"setting JOBS from env: {raw!r} is not a valid int" in table.err
    rows = {row["name"]: row for row in json.loads(ml("config", "--json").out)}
    assert rows["JOBS"]["value"] == raw and rows["JOBS"]["source"] == "env"
    assert "is not a valid int" in rows["JOBS"]["problem"]
    assert "problem" not in rows["HOME"]
    for command in (["listpipe"], ["runpipe", "toy/pipe/chain.yaml"]):
        result = ml(*command)
        assert result.code == 2
        assert f"setting JOBS from env: {raw!r} is not a valid int" in result.err
        assert "Traceback" not in result.err
    assert ml("runpipe", "toy/pipe/chain.yaml", "-n", "-j", "2").code == 0  # a flag overrides the bad value


def make_app(root: Path) -> Path:
    return write_tree(root, {
        "module/m.yaml": "input: {a: {}}\noutput: {b: {}}\ncmd: python -m x a b\n",
        "pipe/p.yaml": f"jobs:\n  j: {{module: {root.name}/module/m, input: {{a: s3://bkt/a}}, output: {{b: b}}}}\n",
        "data/d.txt": "d\n",
    })


def test_mount_links_an_app_and_is_idempotent(env: Env, ml, tmp_path: Path) -> None:
    app = make_app(tmp_path / "elsewhere" / "myapp")
    first = ml("mount", str(app))
    assert first.code == 0 and "myapp" in first.out
    link = env.home / "apps" / "myapp"
    assert link.is_symlink() and link.resolve() == app.resolve()
    second = ml("mount", str(app))
    assert second.code == 0 and "already mounted" in second.out
    assert link.is_symlink() and link.resolve() == app.resolve()
    assert [row["pipe"] for row in json.loads(ml("listpipe", "--json").out)] == ["myapp/pipe/p.yaml"]


def test_mount_under_another_name_and_name_clash(env: Env, ml, tmp_path: Path) -> None:
    one, two = make_app(tmp_path / "a" / "app"), make_app(tmp_path / "b" / "app")
    assert ml("mount", str(one)).code == 0
    clash = ml("mount", str(two))
    assert clash.code == 2 and "already mounted" in clash.err and "--name" in clash.err
    assert (env.home / "apps" / "app").resolve() == one.resolve()
    assert ml("mount", str(two), "--name", "app2").code == 0
    assert (env.home / "apps" / "app2").resolve() == two.resolve()


@pytest.mark.parametrize("files", [{}, {"data/x.txt": "x"}, {"README": "not an app"}])
def test_mount_refuses_a_non_app_dir(env: Env, ml, tmp_path: Path, files: dict[str, str]) -> None:
    plain = write_tree(tmp_path / "plain", files)
    plain.mkdir(exist_ok=True)
    result = ml("mount", str(plain))
    assert result.code == 2
    assert "not an app" in result.err and "Traceback" not in result.err
    assert not (env.home / "apps" / "plain").exists()


def test_mount_refuses_a_missing_dir(env: Env, ml, tmp_path: Path) -> None:
    result = ml("mount", str(tmp_path / "nope"))
    assert result.code == 2 and "not an app" in result.err


def test_listpipe_json_shape(env: Env, ml, toy: Path) -> None:
    write_tree(toy, {
        "pipe/one.yaml": "jobs:\n  a: {module: toy/module/step, output: {output: x}}\n",
        "pipe/broken.yaml": "jobs: [\n",
    })
    result = ml("listpipe", "--json")
    assert result.code == 0
    rows = json.loads(result.out)
    broken = rows.pop(0)
    assert broken["pipe"] == "toy/pipe/broken.yaml" and broken["jobs"] is None
    assert "broken.yaml: invalid YAML: line 2" in broken["error"]
    assert rows == [
        {"pipe": "toy/pipe/chain.yaml", "app": "toy", "jobs": 3},
        {"pipe": "toy/pipe/one.yaml", "app": "toy", "jobs": 1},
    ]


def test_listpipe_filters_by_app(env: Env, ml, toy: Path) -> None:
    make_app(env.apps / "other")
    everything = json.loads(ml("listpipe", "--json").out)
    assert [r["pipe"] for r in everything] == ["other/pipe/p.yaml", "toy/pipe/chain.yaml"]
    assert [r["app"] for r in everything] == ["other", "toy"]
    assert json.loads(ml("listpipe", "toy", "--json").out) == [{"pipe": "toy/pipe/chain.yaml", "app": "toy", "jobs": 3}]
    table = ml("listpipe")
    assert table.code == 0 and "toy/pipe/chain.yaml" in table.out and "other/pipe/p.yaml" in table.out


def test_listmodule_json_shape(env: Env, ml, toy: Path) -> None:
    result = ml("listmodule", "toy", "--json")
    assert result.code == 0
    assert json.loads(result.out) == [{
        "module": "toy/module/step",
        "inputs": {"inputs": "text"},
        "outputs": {"output": "text"},
        "parameters": {
            "name": {"type": "str", "default": "step"},
            "tag": {"type": "str", "default": ""},
            "sleep": {"type": "float", "default": 0.0},
            "fail": {"type": "bool", "default": False},
            "constant": {"type": "bool", "default": False},
        },
        "shell": False,
    }]


def test_listmodule_reports_an_invalid_module_without_failing(env: Env, ml, toy: Path) -> None:
    write_tree(toy, {"module/bad.yaml": "parameters: {n: {type: integer}}\ncmd: x\n"})
    rows = {row["module"]: row for row in json.loads(ml("listmodule", "toy", "--json").out)}
    assert set(rows) == {"toy/module/bad", "toy/module/step"}
    assert "unknown type 'integer'" in rows["toy/module/bad"]["error"]
    assert "bad.yaml" in rows["toy/module/bad"]["error"]


@pytest.mark.parametrize("command", ["listpipe", "listmodule"])
def test_unknown_app_exits_2_with_a_clear_message(env: Env, ml, toy: Path, command: str) -> None:
    result = ml(command, "tyo")
    assert result.code == 2
    assert result.out == ""
    assert "unknown app 'tyo'" in result.err and "did you mean 'toy'?" in result.err
    assert "Traceback" not in result.err


def test_listing_with_no_apps(env: Env, ml) -> None:
    assert json.loads(ml("listpipe", "--json").out) == []
    assert json.loads(ml("listmodule", "--json").out) == []
    result = ml("listpipe", "nothing")
    assert result.code == 2 and "unknown app 'nothing' (apps: none)" in result.err


def test_apps_path_lists_home_apps_and_every_apps_dir(env: Env, ml, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    second = tmp_path / "more-apps"
    make_app(env.apps / "first")
    make_app(second / "second")
    make_app(tmp_path / "mounted")
    monkeypatch.setenv("MLPIPE_APPS", os.pathsep.join([str(env.apps), str(second)]))
    assert ml("mount", str(tmp_path / "mounted")).code == 0
    apps = [row["app"] for row in json.loads(ml("listpipe", "--json").out)]
    assert apps == ["first", "mounted", "second"]
