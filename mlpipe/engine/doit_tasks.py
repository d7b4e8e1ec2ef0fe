"""doit tasks as MLPipe names and reads them, without importing doit: task names, the pipe's
dependency DB (read-only), and the no-op fast path. Running tasks is `doit_runner.py`'s job, and
only it imports doit, so a run with nothing to do never loads doit's runner.
"""

from __future__ import annotations

import inspect
import json
import sqlite3
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mlpipe.core.errors import MlpipeError
from mlpipe.core.hashing import md5_text
from mlpipe.engine.build import Unresolved
from mlpipe.home.settings import Settings

if TYPE_CHECKING:
    from mlpipe.engine.build import Builder

FETCH_PREFIX = "fetch:"
# doit refuses tasks named like its commands (DoitMain.DOIT_CMDS, and `auto` of the doit-auto
# plugin), and its command line would read them as commands. Listed here: importing doit's
# command line to ask costs a third of its import time.
DOIT_COMMANDS = frozenset({"auto", "clean", "dumpdb", "forget", "help", "ignore", "info", "list", "reset-dep",
                           "run", "strace", "tabcompletion"})
RESERVED_PREFIX = "job@"  # `@` is not allowed in job names: no clash with another job


def task_name(job: str) -> str:
    """A job's doit task name: the job name itself, unless doit reserves it (then `job@NAME`)."""
    return RESERVED_PREFIX + job if job in DOIT_COMMANDS else job


def job_name(task: str) -> str:
    """The job a (job) task runs: the inverse of `task_name`."""
    return task.removeprefix(RESERVED_PREFIX)


def db_path(settings: Settings, pipe_id: str) -> Path:
    """One dependency DB per pipe, so different pipes never contend for it."""
    slug = pipe_id.replace("/", "__").removesuffix(".yaml").removesuffix(".yml")
    return settings.doit_dir / f"{slug}.sqlite3"


def saved_manifests(path: Path) -> Callable[[str], dict[str, Any]]:
    """Each job's last saved manifest by job name ({} if none), read without writing anything
    (for --dry-run). Decoded when asked for: a dry run asks only for its stale jobs' (why they
    are stale), so with nothing changed it decodes none of 10,000 rows."""
    rows = _saved_rows(path)

    @cache
    def saved(job: str) -> dict[str, Any]:
        row = rows.get(task_name(job))
        return (json.loads(row).get("_values_:") or {}) if row is not None else {}

    return saved


def _saved_rows(path: Path) -> dict[str, str]:
    """Each task's whole saved record (JSON text) in the pipe's doit DB, read-only; {} when unreadable."""
    if not path.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return dict(db.execute("select task_id, task_data from doit").fetchall())
    except sqlite3.Error:
        return {}


def fetch_task_name(uri: str) -> str:
    return FETCH_PREFIX + md5_text(uri)[:12]


def fetch_uptodate(builder: Builder, uri: str) -> bool:
    try:
        return builder.sources.probe(builder.plan.uris[uri]).fingerprint is not None
    except MlpipeError:
        return False


fetch_uptodate.__signature__ = inspect.signature(fetch_uptodate)  # type: ignore[attr-defined]


def known_targets(builder: Builder, name: str) -> list[str]:
    """Cache paths of the job's outputs when its inputs are known before running; else none."""
    try:
        identity = builder.identity(name, fetch=False)
    except (Unresolved, MlpipeError):
        return []
    job = builder.plan.jobs[name]  # outputs a Dask run leaves in the mirror are no local targets
    return [builder.cache.path_str(h) for out, h in identity.outputs.items() if builder.executor.is_local(job, out)]


def nothing_to_do(builder: Builder) -> bool:
    """True when doit would find every task up to date: then `run_tasks` need not build them.

    doit's `get_status` for these tasks, read-only: every fetch task's probe, then for every
    job its DB record (no `ignore:`, same checker, no file deps) and `Builder.check` against
    its saved manifest, the one decision doit's uptodate callable makes too (it also stats
    the targets, so doit's own targets check adds nothing). A no-op run of a 5,000-job pipe so
    skips building 5,000 doit tasks. On the first stale task, the results recorded so far are
    dropped and doit decides everything, as before.
    """
    if builder.force:
        return False
    if not all(fetch_uptodate(builder, uri) for uri in builder.plan.uris):
        return False
    rows = _saved_rows(db_path(builder.settings, builder.plan.pipe_id))
    for name in builder.plan.jobs:
        text = rows.get(task_name(name))
        row = json.loads(text) if text is not None else None
        uptodate = (row is not None and "ignore:" not in row and row.get("checker:") in (None, "MD5Checker")
                    and not row.get("deps:") and builder.check(name, row.get("_values_:") or {}))
        if not uptodate:
            builder.results.clear()  # doit reports every job itself
            return False
    return True


def run_tasks(builder: Builder, *, jobs: int, keep_going: bool, stream: IO[str] | None = None) -> None:
    """Run the plan's tasks through doit; results land in `builder.results`."""
    if nothing_to_do(builder):
        builder.close()
        return
    from mlpipe.engine.doit_runner import run_doit

    run_doit(builder, jobs=jobs, keep_going=keep_going, stream=stream)
