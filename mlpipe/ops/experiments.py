"""Experiments: job records as rows of parameters and metrics (`ml metrics`, `ml listexp`).

    without PIPE   every successful local record, the latest per (pipe, job name)
    with PIPE      the record of each job's *current* job hash (local, else the S3 mirror's),
                   else the latest successful record of that job name in the pipe
    --history      every successful record of the pipe's jobs, oldest first

Rows are plain data; rendering is the command's business. Missing values are None, never errors.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from mlpipe.core.sweep import SELECT_MODULE
from mlpipe.home.settings import Settings
from mlpipe.store import records
from mlpipe.store.atomic import read_json

SUCCEEDED = records.SUCCEEDED


@dataclass(frozen=True)
class Row:
    job: str
    job_id: str
    pipe: str
    status: str
    started: float | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    sweep: dict[str, Any] | None = None
    selected: bool = False  # the winner of its sweep's select step, as the pipe is now

    @classmethod
    def of(cls, data: dict[str, Any]) -> Row:
        return cls(data.get("job", ""), data.get("job_id", ""), data.get("pipe", ""), data.get("status", ""),
                   data.get("started"), dict(data.get("parameters") or {}), dict(data.get("metrics") or {}),
                   data.get("sweep"))

    def value(self, column: str) -> Any:
        """A parameter, a metric, or one of job, job_id, pipe, status, started."""
        if column in self.metrics:
            return self.metrics[column]
        if column in self.params:
            return self.params[column]
        return getattr(self, column, None) if column in _FIELDS else None


_FIELDS = {"job", "job_id", "pipe", "status", "started", "selected"}


def _read(settings: Settings, job_id: str) -> dict[str, Any] | None:
    return read_json(f"{settings.jobs_dir}{os.sep}{job_id}{os.sep}job.json")  # a string path: 10,000 of them


def _is_row(data: dict[str, Any] | None) -> bool:
    return data is not None and data.get("status") == SUCCEEDED and data.get("module") != SELECT_MODULE


def all_rows(settings: Settings, *, history: bool = False) -> list[Row]:
    """Every pipe's rows from local records (the index says which; job.json says the rest)."""
    summaries = [s for s in records.list_summaries(settings.jobs_dir)
                 if s.status == SUCCEEDED and s.module != SELECT_MODULE]
    if not history:
        latest = {}
        for s in summaries:  # newest first: the first of each (pipe, job) wins
            latest.setdefault((s.pipe, s.job), s)
        summaries = list(latest.values())
    rows = [Row.of(data) for data in map(lambda s: _read(settings, s.job_id), summaries) if _is_row(data)]
    return sorted(rows, key=lambda r: r.started or 0.0)


def pipe_rows(settings: Settings, pipe_ref: str, *, history: bool = False) -> tuple[str, list[Row]]:
    """(pipe id, rows) for the jobs of a pipe as it is now; see the module docstring."""
    from mlpipe.core.errors import MlpipeError
    from mlpipe.engine.build import Builder, Unresolved
    from mlpipe.home.loader import load_plan
    from mlpipe.remote.mirror_records import read_mirror_records

    plan, apps = load_plan(settings, pipe_ref)
    builder = Builder(settings, plan, apps)
    names = [name for name, job in plan.jobs.items() if job.select is None]
    current: dict[str, str] = {}
    for name in plan.jobs:
        try:
            current[name] = builder.identity(name, fetch=False).job_hash
        except (Unresolved, MlpipeError):
            continue
    found = {job_id: data for job_id in set(current.values()) if (data := _read(settings, job_id)) is not None}
    found.update(read_mirror_records(settings, [j for j in current.values() if j not in found]))
    winners = {((found.get(current.get(name, "")) or {}).get("select") or {}).get("winner")
               for name, job in plan.jobs.items() if job.select is not None}
    rows = _rows_of(settings, plan.pipe_id, names, current, found, history)
    return plan.pipe_id, [replace(r, selected=True) if r.job in winners and r.job_id == current.get(r.job) else r
                          for r in rows]


def _rows_of(settings: Settings, pipe_id: str, names: list[str], current: dict[str, str],
             found: dict[str, dict[str, Any]], history: bool) -> list[Row]:
    by_name = _local_by_name(settings, pipe_id, set(names), history)
    if history:
        rows = [r for rows in by_name.values() for r in rows]
        seen = {r.job_id for r in rows}
        rows += [Row.of(found[current[n]]) for n in names
                 if current.get(n) in found and current[n] not in seen and _is_row(found[current[n]])]
        return sorted(rows, key=lambda r: r.started or 0.0)
    rows = []
    for name in names:
        data = found.get(current.get(name, ""))
        if _is_row(data):
            rows.append(Row.of(data))  # type: ignore[arg-type]
        elif by_name.get(name):
            rows.append(by_name[name][-1])
    return rows


def _local_by_name(settings: Settings, pipe_id: str, names: set[str], history: bool) -> dict[str, list[Row]]:
    """Successful local records of the pipe's jobs by name, oldest first (the latest only, unless history)."""
    found: dict[str, list[Row]] = {}
    for summary in records.list_summaries(settings.jobs_dir):  # newest first
        if summary.pipe != pipe_id or summary.job not in names or summary.status != SUCCEEDED:
            continue
        if not history and summary.job in found:
            continue
        data = _read(settings, summary.job_id)
        if _is_row(data):
            found.setdefault(summary.job, []).insert(0, Row.of(data))  # type: ignore[arg-type]
    return found


def columns(rows: Iterable[Row]) -> tuple[list[str], list[str]]:
    """Parameter and metric names, in the order they first appear."""
    params: dict[str, None] = {}
    metrics: dict[str, None] = {}
    for row in rows:
        params.update(dict.fromkeys(row.params))
        metrics.update(dict.fromkeys(row.metrics))
    return list(params), list(metrics)


def changed(rows: list[Row], names: list[str]) -> list[str]:
    """The columns whose value is not the same in every row (a missing value counts as different)."""
    def key(value: Any) -> str:
        return json.dumps(value, sort_keys=True, default=str)

    return [n for n in names if len({key(r.value(n)) for r in rows}) > 1]


def sort_rows(rows: list[Row], column: str, descending: bool = False) -> list[Row]:
    """By one column: numbers before text, missing values last whatever the direction."""
    present = [r for r in rows if r.value(column) is not None]
    missing = [r for r in rows if r.value(column) is None]

    def key(row: Row) -> tuple[int, Any]:
        value = row.value(column)
        if isinstance(value, bool | int | float):
            return (0, float(value))
        return (1, str(value))

    return sorted(present, key=key, reverse=descending) + missing


def diff(a: Row, b: Row) -> list[tuple[str, str, Any, Any, float | None]]:
    """(kind, name, a's value, b's value, b - a for numbers) for every parameter and metric that differs."""
    found = []
    for kind, left, right in (("param", a.params, b.params), ("metric", a.metrics, b.metrics)):
        for name in dict.fromkeys([*left, *right]):
            x, y = left.get(name), right.get(name)
            if x == y and type(x) is type(y):
                continue
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (x, y))
            found.append((kind, name, x, y, y - x if numeric else None))  # type: ignore[operator]
    return found


def load_row(settings: Settings, job_id: str) -> Row:
    """The row of one job id (a unique prefix of 6+ characters); UsageError when unknown."""
    from mlpipe.core.errors import UsageError

    full = records.find_job_id(settings.jobs_dir, job_id)
    data = _read(settings, full)
    if data is None:
        raise UsageError(f"job {full}: its record cannot be read")
    return Row.of(data)


def table_json(pipe: str | None, params: list[str], metrics: list[str], rows: list[Row]) -> dict[str, Any]:
    """`ml metrics --json`'s shape (DESIGN.md), shared by the command line and the web UI."""
    return {"pipe": pipe, "columns": {"params": params, "metrics": metrics},
            "rows": [row_json(r, params, metrics) for r in rows]}


def row_json(row: Row, params: list[str], metrics: list[str]) -> dict[str, Any]:
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(row.started)) if row.started is not None else None
    return {"job": row.job, "job_id": row.job_id, "status": row.status, "started": started,
            "params": {p: row.params[p] for p in params if p in row.params},
            "metrics": {m: row.metrics[m] for m in metrics if m in row.metrics},
            "pipe": row.pipe, "sweep": row.sweep, "selected": row.selected}
