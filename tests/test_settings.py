"""Tests for mlpipe.home.settings: defaults < extra_settings.py < MLPIPE_<NAME> < flags, with sources."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mlpipe.core.errors import UsageError
from mlpipe.home.settings import DEFAULTS, init_home, load_settings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert not (Path(__file__).resolve().parent.parent / "mlpipe" / "extra_settings.py").exists()
    return tmp_path / "home"


def extra(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "extra_settings.py").write_text(textwrap.dedent(text))


def test_defaults(home: Path, tmp_path: Path) -> None:
    settings = load_settings(env={})
    assert settings.home == tmp_path / "user" / "mlpipe"  # ~/mlpipe
    assert settings.cache_dir == settings.home / "cache"
    assert settings.download_dir == settings.home / "downloads"
    assert (settings["APPS"], settings["JOBS"], settings["S3_MIRROR"], settings["S3_ENDPOINT_URL"]) == ([], 1, "", "")
    assert set(settings.sources.values()) == {"default"}
    assert set(settings.values) == set(DEFAULTS)


@pytest.mark.parametrize(
    ("extra_text", "env", "flags", "expected", "source"),
    [
        ("", {}, {}, 1, "default"),
        ("JOBS = 3\n", {}, {}, 3, "extra_settings.py"),
        ("JOBS = 3\n", {"MLPIPE_JOBS": "5"}, {}, 5, "env"),
        ("", {"MLPIPE_JOBS": "5"}, {}, 5, "env"),
        ("JOBS = 3\n", {"MLPIPE_JOBS": "5"}, {"JOBS": 7}, 7, "flag"),
        ("JOBS = 3\n", {}, {"JOBS": 7}, 7, "flag"),
        ("JOBS = 3\n", {"MLPIPE_JOBS": "5"}, {"JOBS": None}, 5, "env"),  # an absent flag does not count
    ],
)
def test_precedence(home: Path, extra_text: str, env: dict, flags: dict, expected: int, source: str) -> None:
    extra(home, extra_text)
    settings = load_settings(env={"MLPIPE_HOME": str(home), **env}, flags=flags)
    assert (settings["JOBS"], settings.sources["JOBS"]) == (expected, source)
    assert settings.sources["HOME"] == "env"


def test_each_setting_reports_its_own_source(home: Path, tmp_path: Path) -> None:
    extra(home, """
        import os  # helper names in extra_settings.py are ignored
        S3_MIRROR = "s3://from-extra/prefix"
        CACHE_DIR = "%s"
        HOME = "/ignored"
        UNRELATED = 1
        """ % (tmp_path / "big-disk" / "cache"))
    settings = load_settings(
        env={"MLPIPE_HOME": str(home), "MLPIPE_S3_ENDPOINT_URL": "http://127.0.0.1:8333", "OTHER": "x"},
        flags={"JOBS": 4},
    )
    assert dict(settings.sources) == {
        "HOME": "env",
        "APPS": "default",
        "CACHE_DIR": "extra_settings.py",
        "DOWNLOAD_DIR": "default",
        "JOBS": "flag",
        "S3_MIRROR": "extra_settings.py",
        "S3_ENDPOINT_URL": "env",
        "S3_SYNC": "default",
        "LOG_TIMESTAMPS": "default",
        "MAX_JOBS": "default",
        "EXECUTOR": "default",
        "DASK_SCHEDULER": "default",
        "DASK_RETRIES": "default",
    }
    assert settings.home == home  # HOME cannot be set from a file inside HOME
    assert settings.cache_dir == tmp_path / "big-disk" / "cache"
    assert settings.scratch_dir == tmp_path / "big-disk" / "cache" / "tmp"  # same filesystem as the cache
    assert settings.download_dir == home / "downloads"
    assert (settings["S3_MIRROR"], settings["S3_ENDPOINT_URL"], settings["JOBS"]) == (
        "s3://from-extra/prefix", "http://127.0.0.1:8333", 4)


def test_home_derived_paths_follow_home(home: Path) -> None:
    settings = load_settings(env={"MLPIPE_HOME": str(home)})
    assert settings.cache_dir == home / "cache"
    assert settings.data_dir == home / "cache" / "data"
    assert (settings.apps_dir, settings.jobs_dir, settings.doit_dir, settings.locks_dir) == (
        home / "apps", home / "jobs", home / "doit", home / "locks")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/a/apps", ["/a/apps"]),
        (os.pathsep.join(["/a/apps", "/b/more apps"]), ["/a/apps", "/b/more apps"]),
        (os.pathsep.join(["/a", "", "/b", ""]), ["/a", "/b"]),
        ("", []),
    ],
)
def test_apps_split_on_pathsep(home: Path, raw: str, expected: list[str]) -> None:
    settings = load_settings(env={"MLPIPE_HOME": str(home), "MLPIPE_APPS": raw})
    assert settings["APPS"] == [Path(p) for p in expected]
    assert settings.sources["APPS"] == "env"


def test_apps_from_extra_settings_as_a_list(home: Path, tmp_path: Path) -> None:
    extra(home, 'APPS = ["~/apps", "/srv/apps"]\n')
    settings = load_settings(env={"MLPIPE_HOME": str(home)})
    assert settings["APPS"] == [tmp_path / "user" / "apps", Path("/srv/apps")]


def test_paths_expand_user_and_become_absolute(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={"MLPIPE_HOME": "~/mlhome", "MLPIPE_DOWNLOAD_DIR": "dl"})
    assert settings.home == tmp_path / "user" / "mlhome"
    assert settings.download_dir == tmp_path / "dl"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("false", False), ("no", False),
     ("", False)],
)
def test_bool_settings_from_env(home: Path, raw: str, expected: bool) -> None:
    assert load_settings(env={"MLPIPE_HOME": str(home), "MLPIPE_S3_SYNC": raw})["S3_SYNC"] is expected


@pytest.mark.parametrize(
    ("where", "name", "raw", "origin"),
    [
        ("env", "JOBS", "many", "env"),
        ("env", "JOBS", "0", "env"),
        ("env", "JOBS", "-2", "env"),
        ("env", "JOBS", "1.5", "env"),
        ("flag", "JOBS", "x", "flag"),
        ("extra", "JOBS", "'many'", "extra_settings.py"),
        ("extra", "JOBS", "None", "extra_settings.py"),
        ("env", "S3_SYNC", "maybe", "env"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_setting(home: Path, where: str, name: str, raw: str,
                                                        origin: str) -> None:
    env: dict[str, str] = {"MLPIPE_HOME": str(home)}
    flags: dict[str, Any] = {}
    if where == "env":
        env[f"MLPIPE_{name}"] = raw
    elif where == "flag":
        flags[name] = raw
    else:
        extra(home, f"{name} = {raw}\n")
    with pytest.raises(UsageError) as info:
        load_settings(env=env, flags=flags)
    assert f"setting {name} from {origin}" in str(info.value)
    assert "is not a valid" in str(info.value)
    assert info.value.exit_code == 2


def test_broken_extra_settings_is_a_usage_error(home: Path) -> None:
    extra(home, "JOBS = = 3\n")
    with pytest.raises(UsageError) as info:
        load_settings(env={"MLPIPE_HOME": str(home)})
    assert "extra_settings.py: cannot load settings" in str(info.value)


def test_load_settings_reads_os_environ_by_default(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_HOME", str(home))
    monkeypatch.setenv("MLPIPE_JOBS", "6")
    settings = load_settings()
    assert (settings.home, settings["JOBS"], settings.sources["JOBS"]) == (home, 6, "env")


def test_init_home_creates_the_layout_idempotently(home: Path) -> None:
    settings = load_settings(env={"MLPIPE_HOME": str(home)})
    init_home(settings)
    (home / "apps" / "keep").mkdir()
    init_home(settings)
    for path in (settings.apps_dir, settings.data_dir, settings.scratch_dir, settings.download_dir,
                 settings.jobs_dir, settings.doit_dir, settings.locks_dir, settings.state_dir):
        assert path.is_dir(), path
    assert (home / "apps" / "keep").is_dir()
