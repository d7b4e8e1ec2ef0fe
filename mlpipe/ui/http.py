"""What every part of the UI server answers with: JSON bytes (HTML-safe) and HTTP errors."""

from __future__ import annotations

import json
from typing import Any

from mlpipe.core.errors import Problem


class HttpError(Exception):
    """A request the API refuses: its status, a one-line message, and more JSON keys (`problems`)."""

    def __init__(self, status: int, message: str, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.extra = extra or {}


def dumps(data: Any) -> bytes:
    """JSON with <, > and & escaped, so no text from a log or a record can ever read as HTML."""
    text = json.dumps(data, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def problem_json(problem: Problem) -> dict[str, Any]:
    """A validation problem located for the page: it shows the message next to (job, field)."""
    return {"file": problem.file, "job": problem.job, "field": problem.field, "message": problem.message,
            "text": str(problem)}


def invalid(problems: list[Problem], status: int = 422) -> HttpError:
    """The pipe does not check: every problem, as the CLI would print them."""
    return HttpError(status, "\n".join(str(p) for p in problems), {"problems": [problem_json(p) for p in problems]})
