"""`ml metrics [PIPE] [--sweep JOB] [--history] [--sort-by KEY [--desc]] [--only-changed] [--json|--csv|--md]`
and `ml metrics diff ID_A ID_B`: parameters and metrics of job records, side by side."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from mlpipe.cli.commands import home_settings

if TYPE_CHECKING:
    from mlpipe.ops.experiments import Row


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="*", metavar="PIPE",
                        help="a pipe id or a path to its YAML (default: every pipe); or: diff ID_A ID_B")
    parser.add_argument("--sweep", metavar="JOB", help="only the members of this sweep")
    parser.add_argument("--history", action="store_true", help="every successful run, not only the latest")
    parser.add_argument("--sort-by", metavar="KEY", help="sort by a parameter, a metric, job or started")
    parser.add_argument("--desc", action="store_true", help="with --sort-by: largest first")
    parser.add_argument("--only-changed", action="store_true", help="only the columns that differ between rows")
    formats = parser.add_mutually_exclusive_group()
    for flag, what in (("--json", "JSON"), ("--csv", "CSV"), ("--md", "a Markdown table")):
        formats.add_argument(flag, action="store_true", help=f"print {what} on stdout")


def run(args: argparse.Namespace) -> int:
    from mlpipe.core.errors import UsageError

    settings = home_settings()
    if args.target[:1] == ["diff"]:
        if len(args.target) != 3:
            raise UsageError("usage: ml metrics diff ID_A ID_B")
        return _diff(settings, args.target[1], args.target[2], args.json)
    if len(args.target) > 1:
        raise UsageError("give at most one pipe (or: diff ID_A ID_B)")
    from mlpipe.ops import experiments

    if args.target:
        pipe, rows = experiments.pipe_rows(settings, args.target[0], history=args.history)
    else:
        pipe, rows = None, experiments.all_rows(settings, history=args.history)
    if args.sweep:
        rows = [r for r in rows if (r.sweep or {}).get("job") == args.sweep]
    params, metrics = experiments.columns(rows)
    if args.sort_by:
        if args.sort_by not in {*params, *metrics, "job", "job_id", "pipe", "status", "started"}:
            known = ", ".join([*params, *metrics]) or "none"
            raise UsageError(f"--sort-by {args.sort_by!r}: no such parameter or metric (columns: {known})")
        rows = experiments.sort_rows(rows, args.sort_by, args.desc)
    if args.only_changed:
        params, metrics = experiments.changed(rows, params), experiments.changed(rows, metrics)
    if args.json:
        _print_json(pipe, params, metrics, rows)
        return 0
    with_pipe = pipe is None and len({r.pipe for r in rows}) > 1
    metric_headers = [f"{m} (metric)" if m in params else m for m in metrics]
    with_winner = any(r.selected for r in rows)  # a select step's choice, marked
    headers = ["job", *(["pipe"] if with_pipe else []), *(["selected"] if with_winner else []), *params,
               *metric_headers]
    cells = [[r.job, *([r.pipe] if with_pipe else []), *(["*" if r.selected else ""] if with_winner else []),
              *(_cell(r.params.get(p)) for p in params), *(_cell(r.metrics.get(m)) for m in metrics)] for r in rows]
    if args.csv:
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([*headers, "job_id", "started"])
        writer.writerows([*c, r.job_id, _iso(r.started) or ""] for c, r in zip(cells, rows, strict=True))
    elif args.md:
        print(_markdown(headers, cells))
    elif not rows:
        print("(no successful job records" + (f" for {pipe}" if pipe else "") + ")")
    else:
        from mlpipe.cli.report import render_text_table

        print(render_text_table(cells, headers))
    return 0


def _print_json(pipe: str | None, params: list[str], metrics: list[str], rows: list[Row]) -> None:
    """The JSON shape of DESIGN.md, one row per line (10,000 rows print fast with the C encoder)."""
    import json

    head = json.dumps({"pipe": pipe, "columns": {"params": params, "metrics": metrics}})[:-1]
    from mlpipe.ops.experiments import row_json

    body = ",\n  ".join(json.dumps(row_json(r, params, metrics)) for r in rows)
    print(f'{head}, "rows": [\n  {body}\n]}}' if rows else f'{head}, "rows": []}}')


def _cell(value: Any) -> str:
    """Missing values are empty; numbers as Python prints them; lists and dicts as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        import json

        return json.dumps(value, sort_keys=True)
    return str(value)


def _markdown(headers: list[str], cells: list[list[str]]) -> str:
    def line(items: list[str]) -> str:
        return "| " + " | ".join(i.replace("|", "\\|") for i in items) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *map(line, cells)])


def _iso(ts: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(ts)) if ts is not None else None


def _diff(settings: Any, a: str, b: str, as_json: bool) -> int:
    from mlpipe.ops.experiments import diff, load_row

    left, right = load_row(settings, a), load_row(settings, b)
    changes = diff(left, right)
    if as_json:
        from mlpipe.cli.report import print_json

        print_json({"a": left.job_id, "b": right.job_id, "changes": [
            {"kind": k, "name": n, "a": x, "b": y, "delta": d} for k, n, x, y, d in changes]})
        return 0
    print(f"a: {left.job_id[:12]} {left.pipe} {left.job}\nb: {right.job_id[:12]} {right.pipe} {right.job}")
    if not changes:
        print("no parameter or metric differs")
        return 0
    from tabulate import tabulate

    rows = [[k, n, _cell(x), _cell(y), "" if d is None else f"{d:+g}"] for k, n, x, y, d in changes]
    print(tabulate(rows, headers=["kind", "name", "a", "b", "delta"], tablefmt="simple", disable_numparse=True))
    return 0
