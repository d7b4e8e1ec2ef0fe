"""The doit runner: the only module that imports doit (and only when a task must run).

    Plan ──task_dicts──> doit tasks          one per job, one per external input ("fetch:…")
                           name      = task_name(job name): the job name, stable so the DB keeps
                                       history across edits, unless doit reserves it (`clean`)
                           targets   = hash-named cache paths (when known before running)
                           task_dep  = upstream jobs and fetches
                           uptodate  = Builder.check(saved manifest)  (no file_dep on cache paths)
                           actions   = Builder.run  -> returns the manifest doit saves
         ──run_doit──>   doit Runner / MThreadRunner, one sqlite3 DB per pipe, committed per task

`dodo_template.py` exposes exactly these tasks to the doit command line.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import threading
import time
import types
from typing import IO, Any


class _LazyDoitPackage(types.ModuleType):
    """Stands in for the `doit` package while its engine submodules load; runs doit/__init__.py
    itself the first time anything else (`doit.get_var`, `doit.run`, ...) is asked of it."""

    def __getattr__(self, name: str) -> Any:
        self.__class__ = types.ModuleType
        self.__spec__.loader.exec_module(self)  # type: ignore[union-attr]
        return getattr(self, name)


def _load_doit_engine() -> None:
    # NOTE: `import doit.control` first runs doit/__init__.py, which loads doit's whole command
    # line (doit_cmd, plugins, importlib.metadata): a third of doit's import time, on every `ml`
    # run, for code ml never calls. The submodules below import none of it.
    if "doit" in sys.modules:
        return
    spec = importlib.util.find_spec("doit")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    package = _LazyDoitPackage("doit")
    package.__spec__, package.__file__ = spec, spec.origin
    package.__path__ = list(spec.submodule_search_locations)
    package.__loader__, package.__package__ = spec.loader, "doit"
    sys.modules["doit"] = package


_load_doit_engine()

from doit.control import TaskControl  # noqa: E402
from doit.dependency import Dependency, MD5Checker, SqliteDB  # noqa: E402
from doit.exceptions import TaskFailed, UnmetDependency  # noqa: E402
from doit.runner import MThreadRunner, Runner  # noqa: E402
from doit.task import Stream, dict_to_task  # noqa: E402

from mlpipe.core.errors import MlpipeError  # noqa: E402
from mlpipe.engine.build import FAILED, SKIPPED, Builder, JobResult  # noqa: E402
from mlpipe.engine.doit_tasks import (  # noqa: E402
    db_path,
    fetch_task_name,
    fetch_uptodate,
    job_name,
    known_targets,
    task_name,
)


class DurableSqliteDB(SqliteDB):
    """doit's sqlite3 backend, committing as tasks finish (stock doit writes at exit only), so a
    run killed with SIGKILL keeps what it finished, but for its last `COMMIT_EVERY_S`: those jobs'
    outputs are in the cache, so the next run finds them cached again. WAL keeps commits cheap."""

    COMMIT_EVERY_S = 0.5  # a commit per task cost a cold run ~0.15 ms per job

    def __init__(self, name: str, codec: Any, *, module_name: str | None = None):
        super().__init__(name, codec, module_name=module_name)
        self._committed = time.monotonic()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        # One query for every row instead of one per task (the pipe lock keeps other writers out).
        for row in self._conn.execute("select task_id, task_data from doit"):
            self._cache[row["task_id"]] = row["task_data"]
        self._loaded = True

    def _get_task_data(self, task_id: str) -> dict[str, Any]:
        return {} if self._loaded else super()._get_task_data(task_id)

    def set(self, task_id: str, dependency: str, value: Any) -> None:
        if dependency == "result:":
            return  # a job's result is its manifest, saved as `_values_:` too; no task has a result_dep
        super().set(task_id, dependency, value)
        # save_success writes this key last (from doit's main thread, the connection's own)
        if dependency == "deps:" and time.monotonic() - self._committed >= self.COMMIT_EVERY_S:
            self._conn.executemany("insert or replace into doit values (?,?)",
                                   [(task, self.codec.encode(self._cache[task])) for task in self._dirty])
            self._conn.commit()
            self._dirty.clear()
            self._committed = time.monotonic()

    def remove(self, task_id: str) -> None:
        super().remove(task_id)
        self._conn.commit()  # stock doit holds this write lock until exit


def _job_uptodate(task: Any, values: dict[str, Any], builder: Builder, name: str) -> bool:
    return builder.check(name, values)


# NOTE: doit calls inspect.signature() on every uptodate callable of every task (to find the
# `task` and `values` parameters); a precomputed __signature__ makes that a lookup.
_job_uptodate.__signature__ = inspect.signature(_job_uptodate)  # type: ignore[attr-defined]


def _job_action(builder: Builder, name: str) -> dict[str, Any] | TaskFailed:
    try:
        return builder.run(name)
    except MlpipeError as exc:  # the builder has recorded the failure in its results
        return TaskFailed(str(exc))


def _fetch_action(builder: Builder, uri: str) -> bool | TaskFailed:
    try:
        builder.fetch(builder.plan.uris[uri])
    except MlpipeError as exc:
        return TaskFailed(str(exc))
    return True


# doit calls inspect.signature() on every action it executes too (a tenth of a cold run's own time)
_job_action.__signature__ = inspect.signature(_job_action)  # type: ignore[attr-defined]
_fetch_action.__signature__ = inspect.signature(_fetch_action)  # type: ignore[attr-defined]


def task_dicts(builder: Builder) -> list[dict[str, Any]]:
    """The doit tasks for a plan, as plain dicts (doit's own keys)."""
    tasks: list[dict[str, Any]] = []
    for uri in builder.plan.uris:
        tasks.append({
            "name": fetch_task_name(uri),
            "doc": f"fetch {uri}",
            "actions": [(_fetch_action, [builder, uri])],
            "uptodate": [(fetch_uptodate, [builder, uri])],
            "verbosity": 0,
            "io": {"capture": False},
        })
    claimed: set[str] = set()
    for name, job in builder.plan.jobs.items():
        uris = [ref.value for b in job.inputs.values() for ref in b.refs if ref.is_uri]
        targets = [t for t in known_targets(builder, name) if t not in claimed]
        claimed.update(targets)
        tasks.append({
            "name": task_name(name),
            "doc": job.module.module_id,
            "actions": [(_job_action, [builder, name])],
            "uptodate": [(_job_uptodate, [builder, name])],
            "task_dep": [*dict.fromkeys(fetch_task_name(u) for u in uris), *map(task_name, job.upstream)],
            "targets": targets,
            "verbosity": 0,
            "io": {"capture": False},  # actions never print: thread-safe under -j N
        })
    return tasks


class ProgressReporter:
    """One line per job start and end on stderr; fetch tasks and up-to-date jobs stay quiet."""

    def __init__(self, builder: Builder, stream: IO[str]):
        self.builder = builder
        self.stream = stream
        self.lock = threading.Lock()
        self.total = len(builder.plan.jobs)
        self.done = 0
        builder.on_event = self.job_event

    def write(self, line: str) -> None:
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def job_event(self, name: str, event: str) -> None:
        self.write(f"[{self.done}/{self.total}] {name}: started ({self.builder.plan.jobs[name].module.module_id})")

    def _end(self, name: str) -> None:
        self.done += 1
        result = self.builder.results.get(name)
        if result is not None:
            tail = f" - {result.error}" if result.error else ""
            self.write(f"[{self.done}/{self.total}] {name}: {result.result} {result.duration_s:.2f}s{tail}")
            if result.stderr_tail:
                self.write("\n".join([f"  {name} stderr (last {len(result.stderr_tail)} lines):",
                                       *(f"  | {line}" for line in result.stderr_tail)]))

    # doit reporter hooks
    def initialize(self, tasks: Any, selected: Any) -> None: ...
    def get_status(self, task: Any) -> None: ...
    def execute_task(self, task: Any) -> None: ...
    def skip_ignore(self, task: Any) -> None: ...
    def teardown_task(self, task: Any) -> None: ...
    def complete_run(self) -> None: ...

    def skip_uptodate(self, task: Any) -> None:
        if job_name(task.name) in self.builder.plan.jobs:
            self.done += 1

    def add_success(self, task: Any) -> None:
        if job_name(task.name) in self.builder.plan.jobs:
            self._end(job_name(task.name))

    def add_failure(self, task: Any, fail: Any) -> None:
        name = job_name(task.name)
        if name not in self.builder.plan.jobs:
            message = fail.get_msg().strip() if hasattr(fail, "get_msg") else str(fail)
            self.builder.errors.append(message)
            self.write(f"error: {message}")
            self._fail_readers(task.name, message)
            return
        if isinstance(fail, UnmetDependency) and name not in self.builder.results:
            self.builder.results[name] = JobResult(name, None, SKIPPED, error="an upstream job failed")
        self._end(name)

    def _fail_readers(self, fetch_task: str, message: str) -> None:
        """An input that cannot be fetched fails the jobs that read it (their report says why)."""
        uri = next((u for u in self.builder.plan.uris if fetch_task_name(u) == fetch_task), None)
        for name, job in self.builder.plan.jobs.items():
            if any(ref.value == uri for binding in job.inputs.values() for ref in binding.refs):
                self.builder.results.setdefault(name, JobResult(name, None, FAILED, error=message))

    def cleanup_error(self, exception: Any) -> None:
        self.write(f"error: {exception}")

    def runtime_error(self, msg: str) -> None:
        self.write(f"error: {msg}")


def run_doit(builder: Builder, *, jobs: int, keep_going: bool, stream: IO[str] | None = None) -> None:
    """Run the plan's tasks through doit's runner; results land in `builder.results`."""
    control = TaskControl([dict_to_task(d) for d in task_dicts(builder)])
    control.process(None)
    dep = Dependency(DurableSqliteDB, str(db_path(builder.settings, builder.plan.pipe_id)), checker_cls=MD5Checker)
    reporter = ProgressReporter(builder, stream or sys.stderr)
    if jobs > 1:
        runner: Runner = MThreadRunner(dep, reporter, keep_going, False, Stream(0), num_process=jobs)
    else:
        runner = Runner(dep, reporter, keep_going, False, Stream(0))
    try:
        runner.run_all(control.task_dispatcher())
    finally:
        builder.close()
    for name in builder.plan.jobs:  # jobs never reached after a failure without --keep-going
        builder.results.setdefault(name, JobResult(name, None, SKIPPED, error="not started after a failure"))


def dodo_namespace(pipe_ref: str | None) -> dict[str, Any]:
    """What `dodo_template.py` exports: DOIT_CONFIG and one `task_*` creator per task."""
    from mlpipe.core.errors import UsageError
    from mlpipe.home.loader import load_plan
    from mlpipe.home.settings import init_home, load_settings
    from mlpipe.remote import open_mirror

    if not pipe_ref:
        raise UsageError("usage: doit -f dodo_template.py pipe=APP/pipe/NAME.yaml list|run|info ...")
    settings = load_settings()
    init_home(settings)
    plan, apps = load_plan(settings, pipe_ref)
    builder = Builder(settings, plan, apps, mirror=open_mirror(settings))
    namespace: dict[str, Any] = {
        "DOIT_CONFIG": {"dep_file": str(db_path(settings, plan.pipe_id)), "backend": "sqlite3",
                        "default_tasks": [task_name(name) for name in plan.jobs]},
    }
    for task in [dict_to_task(d) for d in task_dicts(builder)]:
        namespace[f"task_{task.name}"] = _creator(task)
    return namespace


def _creator(task: Any) -> Any:
    def create() -> Any:
        return task

    create.__doc__ = task.doc
    return create
