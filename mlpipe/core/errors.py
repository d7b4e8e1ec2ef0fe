"""The exception tree; `cli.main` alone maps it to exit codes.

    MlpipeError                 root; never shown with a traceback
    ├── UserError               invalid input found before anything runs  -> exit 2
    │   ├── SpecError           module / pipe YAML problems (reported all at once)
    │   ├── UriError            bad URI syntax, a path escaping its root, a missing local file
    │   │   └── TreeError       a folder whose symlinks leave it, dangle or loop
    │   └── UsageError          bad command-line usage, unknown ids
    ├── RunError                something failed while running            -> exit 1
    │   ├── FetchError          a download or transfer failed (404, missing key, unknown rev)
    │   ├── StoreError          the cache or a remote store failed
    │   └── JobFailed           one or more jobs exited non-zero
    └── BusyError               the pipe is already running (--no-wait)   -> exit 75
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from difflib import get_close_matches


class MlpipeError(Exception):
    """Root of every error MLPipe reports to a user."""

    exit_code = 1


class UserError(MlpipeError):
    """The user's input is invalid; nothing has run or been written."""

    exit_code = 2


class UsageError(UserError):
    """Bad command-line usage: unknown id, bad flag value, ambiguous prefix."""


class UriError(UserError):
    """A URI that cannot be parsed, escapes its root, or names a missing local file."""


class TreeError(UriError):
    """A folder holding a symbolic link that leaves it, dangles or loops, or a special file."""


@dataclass(frozen=True)
class Problem:
    """One validation finding, located as precisely as the input allows."""

    file: str
    message: str
    job: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.job:
            where.append(f"job '{self.job}'")
        if self.field:
            where.append(self.field)
        return f"{': '.join(where)}: {self.message}"


def unknown_keys(found: Iterable, allowed: set[str], file: str, job: str | None, where: str) -> list[Problem]:
    """A problem per key of `found` not in `allowed`, with a "did you mean" when one is close."""
    problems = []
    for key in found:
        if key not in allowed:
            hint = get_close_matches(str(key), sorted(allowed), 1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else f" (allowed: {', '.join(sorted(allowed))})"
            problems.append(Problem(file, f"unknown key '{key}'{extra}", job, where))
    return problems


class SpecError(UserError):
    """One or more problems in module or pipe YAML, reported together."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class RunError(MlpipeError):
    """A failure while running: a job, a download, a transfer."""

    exit_code = 1


class FetchError(RunError):
    """External data could not be fetched (HTTP 404, missing S3 key, unknown git rev, ...)."""


class StoreError(RunError):
    """The local cache or a remote store could not be read or written."""


class JobFailed(RunError):
    """At least one job failed; the report has the details."""


class BusyError(MlpipeError):
    """The same pipe is already running and the caller asked not to wait."""

    exit_code = 75
