"""Rendering for the terminal (tabulate) and for `--json` (stdout only)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def print_table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> None:
    from tabulate import tabulate

    rows = list(rows)
    if not rows:
        print("(none)")
        return
    print(tabulate(rows, headers=list(headers), tablefmt="simple"))


def short(job_id: str | None) -> str:
    return job_id[:12] if job_id else "-"
