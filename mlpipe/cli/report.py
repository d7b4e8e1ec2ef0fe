"""Rendering for the terminal (tables, tabulate's "simple" format) and for `--json` (stdout only)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def print_table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> None:
    rows = list(rows)
    if not rows:
        print("(none)")
        return
    print(render_table(rows, headers))


def render_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """`tabulate(rows, headers, tablefmt="simple")`, drawn directly when every cell is plain.

    tabulate spends ~0.1 ms per row (a 5,000-job dry-run: most of its time) and its import
    costs more than the rest of `ml listpipe`. Plain tables are drawn here to the same text:
    columns of ints (right-aligned), and columns of one-line, printable, unpadded ASCII strings
    of which at least one does not look like a number (tabulate then left-aligns them all as
    text). Anything else goes to tabulate.
    """
    fast = _simple_table(rows, headers)
    if fast is not None:
        return fast
    from tabulate import tabulate

    return tabulate(rows, headers=list(headers), tablefmt="simple")


_NUMBER_START = frozenset("0123456789+-.iInN")  # float() accepts "inf", "nan", "+1", ".5", ...
NOT_TEXT, NUMBER_LIKE, TEXT = 0, 1, 2


def _text_kind(cell: Any) -> int:
    """TEXT for a plain string tabulate reads as text; NUMBER_LIKE for "", "True", "12", "1e5", "nan"."""
    if type(cell) is not str or not cell.isascii() or not cell.isprintable() or cell != cell.strip():
        return NOT_TEXT
    if not cell or cell in ("True", "False"):
        return NUMBER_LIKE  # tabulate types these as missing or bool: not text, aligned with numbers
    if cell[:1] in _NUMBER_START:
        try:
            float(cell.replace(",", ""))  # tabulate also reads "1,000" as a number
        except ValueError:
            return TEXT
        return NUMBER_LIKE
    return TEXT


def _simple_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str | None:
    width = len(headers)
    if not rows or any(_text_kind(h) == NOT_TEXT for h in headers) or any(len(r) != width for r in rows):
        return None
    right = []  # per column: ints, right-aligned
    for i in range(width):
        column = [r[i] for r in rows]
        if all(type(c) is int for c in column):
            right.append(True)
            continue
        try:
            distinct = set(column)  # a dry run's status, action and reasons repeat on every row
        except TypeError:
            return None  # an unhashable cell is no plain text either
        kinds = set(map(_text_kind, distinct))
        if NOT_TEXT in kinds or TEXT not in kinds:
            return None
        right.append(False)
    return _draw([[str(c) for c in r] for r in rows], headers, right)


def render_text_table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """`tabulate(rows, headers, disable_numparse=True)`: every cell text, left-aligned; drawn
    directly when every cell is one line of printable ASCII (10,000 rows in a few ms)."""
    if all(_plain(c) for r in rows for c in r) and all(map(_plain, headers)) and all(
            len(r) == len(headers) for r in rows):
        return _draw(rows, headers, [False] * len(headers))
    from tabulate import tabulate

    return tabulate(rows, headers=list(headers), tablefmt="simple", disable_numparse=True)


def _plain(cell: str) -> bool:
    return cell.isascii() and cell.isprintable() and cell == cell.strip()


def _draw(cells: Sequence[Sequence[str]], headers: Sequence[str], right: Sequence[bool]) -> str:
    columns = list(zip(*cells, strict=True)) if cells else [()] * len(headers)
    # tabulate pads headers by 2
    widths = [max(len(h) + 2, max(map(len, column), default=0)) for h, column in zip(headers, columns, strict=True)]
    row_format = "  ".join(f"{{:{'>' if r else '<'}{w}}}" for w, r in zip(widths, right, strict=True))
    lines = [row_format.format(*headers).rstrip(), "  ".join("-" * w for w in widths)]
    lines += [row_format.format(*row).rstrip() for row in cells]
    return "\n".join(lines)


def short(job_id: str | None) -> str:
    return job_id[:12] if job_id else "-"
