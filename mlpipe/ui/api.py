"""The web UI's JSON API: `GET /api/...` -> (content type, body), in the CLI's `--json` shapes.

    /api/pipes                       ml listpipe --json, plus each pipe's last run and counts
    /api/pipes/<id>/plan             ml runpipe -n --json
    /api/pipes/<id>/graph            ml graph --format json --status  (?collapse=1)
    /api/pipes/<id>/graph.svg        ml graph --format svg --status   (?collapse=1)
    /api/pipes/<id>/runs             each job's newest record (listjob shape), polled for live updates
    /api/jobs                        ml listjob --json  (?pipe=ID&status=S&limit=N)
    /api/jobs/<job_id>               one record: job.json, outputs with sizes, history
    /api/jobs/<job_id>/log           ?stream=stdout|stderr&offset=N: text from N (default: the tail)
    /api/metrics                     records with "metrics" (?pipe=ID): ml metrics --json's shape
    /api/modules                     ml listmodule --json  (?detail=1: with optional ports, choices: the editor's)
    /api/pipes/<id>/source           the pipe file's text, data and md5 (what the editor loads)
    /api/pipes/<id>/action           the command this server started for the pipe: running?, its output

    POST /api/pipes/<id>/run|dryrun|cancel, POST /api/jobs/<id>/rerun      (actions.py)
    POST /api/pipes/validate, PUT /api/pipes/<id>                           (editor.py)

Every id is checked before it reaches a path: a pipe id must be one the apps path lists (or, to
save, APP/pipe/NAME.yaml of a known app), a job id is 6 to 32 hex digits naming a record. Only
the POST and PUT routes change anything; the server lets them through with the token and the
same origin only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from mlpipe.core.errors import UsageError
from mlpipe.core.graph import STATES
from mlpipe.home.apps import AppIndex
from mlpipe.home.settings import Settings
from mlpipe.ops import catalog, job_list
from mlpipe.store import records
from mlpipe.ui.http import HttpError, dumps

LOG_TAIL = 64 * 1024  # a log is shown from its last 64 KiB; follow asks for what comes after
PREVIEW = 4096  # a small text output (a report, metrics) shows its first 4 KiB in the job panel
_JOB_ID = re.compile(r"^[0-9a-f]{6,32}$")
JSON = "application/json"


def pipe_path(pipe_id: str) -> str:
    """A pipe id as the page puts it in a URL: each part as JavaScript's encodeURIComponent does."""
    return quote(pipe_id, safe="/!~*'()")


class Api:
    """Answers GET requests from the home's files, read again for every request (a new pipe or
    record shows without a restart)."""

    def __init__(self, settings: Settings):
        from mlpipe.ui.actions import Actions

        self.settings = settings
        self.actions = Actions(settings)

    def change(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A POST or PUT: start, stop or save something (the server checked token and origin)."""
        from mlpipe.ui import editor

        parts = [unquote(part) for part in path.removeprefix("/api/").split("/")]
        if method == "PUT" and parts[0] == "pipes" and len(parts) >= 4:
            return editor.save(self.settings, "/".join(parts[1:]), body)
        if method == "POST" and parts == ["pipes", "validate"]:
            return editor.validate(self.settings, body)
        if method == "POST" and parts[0] == "pipes" and len(parts) >= 5:
            pipe_id, what = self._pipe_id("/".join(parts[1:-1])), parts[-1]
            if what == "run":
                return self.actions.run(pipe_id, body)
            if what == "dryrun":
                return self.actions.dry_run(pipe_id, body)
            if what == "cancel":
                return self.actions.cancel(pipe_id)
        if method == "POST" and len(parts) == 3 and parts[0] == "jobs" and parts[2] == "rerun":
            return self.actions.rerun(self._job_id(parts[1]), body)
        raise HttpError(404, f"no such action: {method} {path}")

    def get(self, path: str, query: str) -> tuple[str, bytes]:
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        parts = [unquote(part) for part in path.removeprefix("/api/").split("/")]
        if parts == ["pipes"]:
            return JSON, dumps(self.pipes())
        if parts[0] == "pipes" and len(parts) >= 3:
            return self._pipe("/".join(parts[1:-1]), parts[-1], params)
        if parts == ["jobs"]:
            return JSON, dumps(self.jobs(params))
        if parts[0] == "jobs" and len(parts) in (2, 3):
            job_id = self._job_id(parts[1])
            if len(parts) == 2:
                return JSON, dumps(self.job(job_id))
            if parts[2] == "log":
                return JSON, dumps(self.log(job_id, params))
        if parts == ["metrics"]:
            pipe = self._pipe_id(params["pipe"]) if "pipe" in params else None
            return JSON, dumps(self.metrics(pipe))
        if parts == ["modules"]:
            if params.get("detail") == "1":
                from mlpipe.ui.editor import module_interfaces

                return JSON, dumps(module_interfaces(AppIndex.discover(self.settings)))
            return JSON, dumps(catalog.list_modules(AppIndex.discover(self.settings)))
        raise HttpError(404, f"no such API: {path}")

    # -- ids --------------------------------------------------------------------------------
    def _pipe_id(self, pipe_id: str) -> str:
        known = {p for p, _path in AppIndex.discover(self.settings).pipe_paths()}
        if pipe_id not in known:
            raise HttpError(404, f"unknown pipe '{pipe_id}'")
        return pipe_id

    def _job_id(self, text: str) -> str:
        if not _JOB_ID.match(text):
            raise HttpError(400, "a job id is 6 to 32 hex digits")
        try:
            return records.find_job_id(self.settings.jobs_dir, text)
        except UsageError as exc:
            raise HttpError(404, str(exc)) from exc

    # -- pipes ------------------------------------------------------------------------------
    def pipes(self) -> list[dict[str, Any]]:
        rows = catalog.list_pipes(self.settings, AppIndex.discover(self.settings))
        by_pipe: dict[str, list[tuple[records.JobSummary, str]]] = {}
        for summary, status in job_list.list_jobs(self.settings):
            by_pipe.setdefault(summary.pipe, []).append((summary, status))
        for row in rows:
            latest = job_list.latest_by_job(by_pipe.get(row["pipe"], []))
            counts: dict[str, int] = {}
            for _summary, status in latest.values():
                counts[status] = counts.get(status, 0) + 1
            started = [s.started for s, _status in latest.values() if s.started is not None]
            row["last_run"] = job_list.iso_time(max(started)) if started else None
            row["counts"] = counts
        return rows

    def _pipe(self, pipe_id: str, what: str, params: dict[str, str]) -> tuple[str, bytes]:
        from mlpipe.core.errors import MlpipeError
        from mlpipe.core.graph_render import state_label, to_svg
        from mlpipe.ops.pipe_status import dry_run

        pipe_id = self._pipe_id(pipe_id)
        labels = {s: state_label(s) for s in STATES}  # the page's words for each state
        views: dict[str, Callable[[], tuple[str, bytes]]] = {
            "plan": lambda: (JSON, dumps(dry_run(self.settings, pipe_id).as_json())),
            "graph": lambda: (JSON, dumps({**self._graph(pipe_id, params).as_json(), "labels": labels})),
            "graph.svg": lambda: ("image/svg+xml", to_svg(self._graph(pipe_id, params)).encode()),
            "runs": lambda: (JSON, dumps(self.runs(pipe_id))),
            "source": lambda: (JSON, dumps(_source(self.settings, pipe_id))),
            "action": lambda: (JSON, dumps(self.actions.status(pipe_id))),
        }
        if what not in views:
            raise HttpError(404, f"no such view of a pipe: {what}")
        try:
            return views[what]()
        except MlpipeError as exc:  # the pipe does not load or check: say why, as the CLI would
            raise HttpError(422, str(exc)) from exc

    def _graph(self, pipe_id: str, params: dict[str, str]):  # noqa: ANN202 - PipeGraph, imported lazily
        from mlpipe.ops.pipe_graph import pipe_graph

        return pipe_graph(self.settings, pipe_id, status=True, collapse=params.get("collapse") == "1")

    def runs(self, pipe_id: str) -> dict[str, Any]:
        data_dir = str(self.settings.data_dir)
        latest = job_list.latest_by_job(job_list.list_jobs(self.settings, pipe_id))
        return {"pipe": pipe_id, "jobs": {name: job_list.job_json(s, st, data_dir) for name, (s, st) in latest.items()}}

    # -- jobs -------------------------------------------------------------------------------
    def jobs(self, params: dict[str, str]) -> list[dict[str, Any]]:
        pipe = self._pipe_id(params["pipe"]) if "pipe" in params else None
        status = params.get("status")
        try:
            limit = int(params.get("limit", "0"))
        except ValueError as exc:
            raise HttpError(400, "limit must be a number") from exc
        rows = job_list.list_jobs(self.settings, pipe, status)
        data_dir = str(self.settings.data_dir)
        return [job_list.job_json(s, st, data_dir) for s, st in (rows[:limit] if limit > 0 else rows)]

    def job(self, job_id: str) -> dict[str, Any]:
        data = job_list.read_job_data(self.settings, job_id)
        record = records.read_record(self.settings.jobs_dir, job_id)
        if data is None or record is None:
            raise HttpError(404, f"job {job_id} has no readable record")
        outputs = {}
        for name, data_hash in record.outputs.items():
            path = self.settings.data_dir / str(data_hash)[:2] / str(data_hash)
            outputs[name] = {"data": data_hash, "path": str(path), "size": _size(path), "preview": _preview(path)}
        history = [job_list.job_json(s, st, str(self.settings.data_dir))
                   for s, st in job_list.list_jobs(self.settings, record.pipe) if s.job == record.job]
        return {**data, "status": records.effective_status(record), "duration_s": record.duration_s,
                "started_iso": job_list.iso_time(record.started), "outputs": outputs, "history": history}

    def log(self, job_id: str, params: dict[str, str]) -> dict[str, Any]:
        stream = params.get("stream", "stderr")
        if stream not in ("stdout", "stderr"):
            raise HttpError(400, "stream must be stdout or stderr")
        stdout_log, stderr_log = records.log_paths(self.settings.jobs_dir, job_id)
        path = stdout_log if stream == "stdout" else stderr_log
        size = _size(path) or 0
        try:
            offset = int(params["offset"]) if "offset" in params else max(size - LOG_TAIL, 0)
        except ValueError as exc:
            raise HttpError(400, "offset must be a number") from exc
        offset = min(max(offset, 0), size)
        chunk = b""
        if size > offset:
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read(size - offset)
        record = records.read_record(self.settings.jobs_dir, job_id)
        running = record is not None and records.effective_status(record) == records.RUNNING
        return {"job_id": job_id, "stream": stream, "offset": offset, "next_offset": offset + len(chunk),
                "size": size, "text": chunk.decode("utf-8", errors="replace"), "running": running}

    # -- metrics ----------------------------------------------------------------------------
    def metrics(self, pipe: str | None) -> dict[str, Any]:
        """`ml metrics [PIPE] --json`: one row per job (its latest successful run), params and metrics."""
        from mlpipe.ops import experiments

        if pipe is not None:
            pipe, rows = experiments.pipe_rows(self.settings, pipe)
        else:
            rows = experiments.all_rows(self.settings)
        rows = [r for r in rows if r.metrics]
        params, metrics = experiments.columns(rows)
        return experiments.table_json(pipe, params, metrics, rows)


def _source(settings: Settings, pipe_id: str) -> dict[str, Any]:
    from mlpipe.ui.editor import read_source

    return read_source(settings, pipe_id)


def _size(path: os.PathLike[str]) -> int | None:
    """Bytes of a file, or of every file in a folder; None when absent."""
    try:
        if not os.path.isdir(path):
            return os.stat(path).st_size
    except OSError:
        return None
    return sum(os.stat(os.path.join(root, f)).st_size for root, _dirs, files in os.walk(path) for f in files)


def _preview(path: os.PathLike[str]) -> str | None:
    """The start of a text file output (None for folders, binary or missing files)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(PREVIEW)
    except OSError:  # a folder, or gone
        return None
    if b"\0" in head:
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:  # cut inside a character at the end: keep what decodes
        return head[:exc.start].decode("utf-8") if exc.start > len(head) - 4 else None
