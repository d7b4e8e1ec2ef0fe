"""`ml cron PIPE [--every EXPR]`: print a crontab line that runs the pipe, ready to paste into `crontab -e`.

    */15 * * * * MLPIPE_HOME=/h MLPIPE_LOG_TIMESTAMPS=1 /venv/bin/ml runpipe APP/pipe/P.yaml --no-wait >> LOG 2>&1

Every value is shell-quoted (cron runs the line with /bin/sh) and every `%` escaped (cron turns a
bare `%` into a newline). Settings taken from the environment go into the line, because cron
starts jobs with an almost empty one.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlpipe.home.settings import Settings

DEFAULT_EVERY = "*/15 * * * *"
KEYWORDS = ("@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_FIELD = re.compile(r"^[0-9A-Za-z*/,\-]+$")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipe", help="a pipe id (APP/pipe/NAME.yaml) or a path to a pipe YAML")
    parser.add_argument("--every", default=DEFAULT_EVERY, metavar="EXPR",
                        help=f"when to run: five cron fields or an @keyword (default: '{DEFAULT_EVERY}')")


def run(args: argparse.Namespace) -> int:
    from mlpipe.cli.commands import home_settings
    from mlpipe.home.apps import resolve_pipe

    schedule = check_schedule(args.every)
    settings = home_settings()
    pipe_id, path, _apps = resolve_pipe(settings, args.pipe)
    log_dir = settings.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / (pipe_id.replace("/", "__").removesuffix(".yaml").removesuffix(".yml") + ".log")
    # NOTE: only the value of NAME=VALUE is quoted: a quoted 'NAME=VALUE' is a command name to sh.
    assignments = [f"{name}={shlex.quote(value)}" for name, value in _environment(settings)]
    argv = [*ml_command(), "runpipe", _pipe_arg(settings, pipe_id, path), "--no-wait"]
    command = " ".join([*assignments, *map(shlex.quote, argv)]) + f" >> {shlex.quote(str(log))} 2>&1"
    print(schedule, command.replace("%", "\\%"))
    print(f"# add it with `crontab -e`; each run appends to {log}", file=sys.stderr)
    return 0


def check_schedule(expr: str) -> str:
    """Five cron fields or an @keyword, normalised to single spaces; UsageError otherwise."""
    from mlpipe.core.errors import UsageError

    fields = expr.split()
    if len(fields) == 1 and fields[0] in KEYWORDS:
        return fields[0]
    if len(fields) != 5 or not all(_FIELD.match(f) for f in fields):
        raise UsageError(f"--every {expr!r}: expected five cron fields (e.g. '{DEFAULT_EVERY}') "
                         f"or one of {', '.join(KEYWORDS)}")
    return " ".join(fields)


def ml_command() -> list[str]:
    """The absolute command for `ml`: the `ml` script next to this Python, or `python -P -m mlpipe`."""
    python = Path(sys.executable).absolute()  # not resolved: a venv's python is a symlink to keep
    script = python.parent / "ml"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    # NOTE: -P keeps cron's working directory ($HOME) off sys.path, where the default home folder
    # ~/mlpipe would otherwise shadow the package (as a namespace package) in editable installs.
    return [str(python), "-P", "-m", "mlpipe"]


def _pipe_arg(settings: Settings, pipe_id: str, path: Path) -> str:
    """The pipe id when the apps path finds this very file; else its absolute path (cron starts in $HOME)."""
    from mlpipe.home.apps import AppIndex

    found = dict(AppIndex.discover(settings).pipe_paths()).get(pipe_id)
    return pipe_id if found is not None and found.resolve() == path.resolve() else str(path.resolve())


def _environment(settings: Settings) -> list[tuple[str, str]]:
    """MLPIPE_HOME and every other setting the environment sets now (paths made absolute), and
    LOG_TIMESTAMPS on unless the environment says otherwise."""
    names = ["HOME", *(n for n, origin in settings.sources.items() if origin == "env" and n != "HOME")]
    stamps = [] if "LOG_TIMESTAMPS" in names else [("MLPIPE_LOG_TIMESTAMPS", "1")]  # a log line says when
    return [(f"MLPIPE_{name}", _as_text(settings[name])) for name in names] + stamps


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return os.pathsep.join(str(item) for item in value)
    return str(value)
