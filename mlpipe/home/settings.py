"""Settings: defaults < extra_settings.py < environment (MLPIPE_<NAME>) < command-line flags."""

from __future__ import annotations

import os
import runpy
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from mlpipe.core.errors import UsageError

# name -> (type, default); None defaults are derived from HOME below.
DEFAULTS: dict[str, tuple[type, Any]] = {
    "HOME": (Path, "~/mlpipe"),
    "APPS": (list, []),
    "CACHE_DIR": (Path, None),
    "DOWNLOAD_DIR": (Path, None),
    "JOBS": (int, 1),
    "S3_MIRROR": (str, ""),
    "S3_ENDPOINT_URL": (str, ""),
    "S3_SYNC": (bool, True),
    "LOG_TIMESTAMPS": (bool, False),  # an ISO timestamp before each progress/error line (the cron line sets it)
    "MAX_JOBS": (int, 10_000),  # the most jobs a pipe's sweeps may expand to
    "EXECUTOR": (str, "local"),  # where jobs run: `local`, or `dask` (docs/cluster.md)
    "DASK_SCHEDULER": (str, ""),  # tcp://HOST:PORT of a Dask scheduler, or local:N (an in-process cluster)
    "DASK_RETRIES": (int, 2),  # resubmissions of a job whose Dask worker was lost
}
_MINIMUM = {"DASK_RETRIES": 0}  # whole-number settings that may be below 1
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    """Resolved settings plus where each value came from. The folders are computed once: a run
    asks for them several times per job."""

    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)
    problems: Mapping[str, str] = field(default_factory=dict)  # name -> why its (raw) value is invalid

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    @property
    def home(self) -> Path:
        return self.values["HOME"]

    @property
    def cache_dir(self) -> Path:
        return self.values["CACHE_DIR"]

    @cached_property
    def data_dir(self) -> Path:
        return self.cache_dir / "data"

    @cached_property
    def scratch_dir(self) -> Path:
        """Scratch lives inside the cache directory so publishing is a same-filesystem rename."""
        return self.cache_dir / "tmp"

    @property
    def download_dir(self) -> Path:
        return self.values["DOWNLOAD_DIR"]

    @cached_property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @cached_property
    def doit_dir(self) -> Path:
        return self.home / "doit"

    @cached_property
    def locks_dir(self) -> Path:
        return self.home / "locks"

    @cached_property
    def state_dir(self) -> Path:
        return self.home / "state"

    @cached_property
    def apps_dir(self) -> Path:
        return self.home / "apps"


def convert(name: str, raw: Any, origin: str) -> Any:
    """Convert a raw setting (a string from env/flags, or a Python value) to its type."""
    kind = DEFAULTS[name][0]
    try:
        if kind is Path:
            return Path(os.path.expanduser(str(raw))).absolute()
        if kind is list:
            items = raw.split(os.pathsep) if isinstance(raw, str) else list(raw)
            return [Path(os.path.expanduser(str(i))).absolute() for i in items if str(i)]
        if kind is bool and isinstance(raw, str):
            if raw.lower() not in _TRUE | _FALSE:
                raise ValueError(raw)
            return raw.lower() in _TRUE
        if kind is int:
            value = int(raw)
            if value < _MINIMUM.get(name, 1):
                raise ValueError(raw)
            return value
        return kind(raw)
    except (TypeError, ValueError):
        least = f" (a whole number, at least {_MINIMUM.get(name, 1)})" if kind is int else ""
        raise UsageError(f"setting {name} from {origin}: {raw!r} is not a valid {kind.__name__}{least}") from None


def _extra_settings(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        namespace = runpy.run_path(str(path))
    except Exception as exc:  # user code: any error is reported as theirs
        raise UsageError(f"{path}: cannot load settings: {exc}") from exc
    return {k: v for k, v in namespace.items() if k in DEFAULTS and k != "HOME"}


def load_settings(
    env: Mapping[str, str] | None = None, flags: Mapping[str, Any] | None = None, *, strict: bool = True
) -> Settings:
    """Resolve every setting with its source (`default`, `extra_settings.py`, `env`, `flag`).

    An invalid value is a UsageError naming it (every one at once); with `strict=False` it is
    kept as given, with the reason in `problems`, so that `ml config` can show it.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    problems: dict[str, str] = {}

    def put(name: str, raw: Any, origin: str) -> None:
        sources[name] = origin
        try:
            values[name] = convert(name, raw, origin)
        except UsageError as exc:
            values[name] = raw
            problems[name] = str(exc)
        else:
            problems.pop(name, None)  # a later source (a flag) replaces a bad value

    put("HOME", env.get("MLPIPE_HOME") or DEFAULTS["HOME"][1], "env" if env.get("MLPIPE_HOME") else "default")
    for name, (_kind, default) in DEFAULTS.items():
        if name != "HOME":
            derived = {"CACHE_DIR": values["HOME"] / "cache", "DOWNLOAD_DIR": values["HOME"] / "downloads"}
            put(name, derived.get(name, default), "default")
    for path in (Path(__file__).with_name("extra_settings.py"), values["HOME"] / "extra_settings.py"):
        for name, raw in _extra_settings(path).items():
            put(name, raw, "extra_settings.py")
    for name in DEFAULTS:
        if name != "HOME" and f"MLPIPE_{name}" in env:
            put(name, env[f"MLPIPE_{name}"], "env")
    for name, raw in (flags or {}).items():
        if raw is not None:
            put(name, raw, "flag")
    if strict and problems:
        raise UsageError("\n".join(problems.values()))
    return Settings(values, sources, problems)


def init_home(settings: Settings) -> None:
    """Create the home layout; idempotent."""
    for path in (
        settings.home,
        settings.apps_dir,
        settings.data_dir,
        settings.scratch_dir,
        settings.download_dir,
        settings.jobs_dir,
        settings.doit_dir,
        settings.locks_dir,
        settings.state_dir,
    ):
        path.mkdir(parents=True, exist_ok=True)
