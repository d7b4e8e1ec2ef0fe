"""`ml ui --export DIR`: the same page as static files, for CI artifacts (opens from file:// too).

    DIR/index.html          the page, plus <script src="static/data.js">
    DIR/static/app.js ...   the assets, unchanged
    DIR/static/data.js      `window.MLPIPE_EXPORT = {...}`: every API answer the page asks for,
                            keyed by the request the page makes (a script, not fetch(): browsers
                            refuse fetch() from file://)

Exported: the pipes list, each pipe's graph (plain and with sweeps collapsed), jobs, modules and
metrics lists, and the records and log tails of the listed jobs. Nothing is live.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mlpipe.home.settings import Settings
from mlpipe.ui.api import JSON, Api, HttpError, dumps, pipe_path
from mlpipe.ui.server import ASSETS, read_asset

JOBS_SHOWN = "limit=1000"  # the jobs page's own request


def export_site(settings: Settings, folder: Path) -> int:
    """Write the static site into `folder`; return how many API answers it holds."""
    api = Api(settings)
    responses: dict[str, dict[str, Any]] = {}

    def take(path: str, query: str = "") -> Any:
        key = path + (f"?{query}" if query else "")
        try:
            kind, body = api.get(f"/api/{path}", query)
        except HttpError as exc:
            responses[key] = {"error": str(exc)}
            return None
        responses[key] = {"json": kind == JSON, "body": body.decode()}
        return json.loads(body) if kind == JSON else None

    job_ids: set[str] = set()
    for pipe in take("pipes"):
        if pipe["jobs"] is None:
            continue
        where = f"pipes/{pipe_path(pipe['pipe'])}"
        for query in ("", "collapse=1"):
            take(f"{where}/graph.svg", query)
            graph = take(f"{where}/graph", query)
            job_ids |= {n["last_job_id"] for n in (graph or {}).get("nodes", []) if n["last_job_id"]}
        take(f"{where}/runs")
    job_ids |= {job["job_id"] for job in take("jobs", JOBS_SHOWN)}
    take("modules")
    take("metrics")
    for job_id in sorted(job_ids):
        take(f"jobs/{job_id}")
        for stream in ("stdout", "stderr"):
            take(f"jobs/{job_id}/log", f"stream={stream}")
    _write(folder, responses)
    return len(responses)


def _write(folder: Path, responses: dict[str, dict[str, Any]]) -> None:
    static = folder / "static"
    static.mkdir(parents=True, exist_ok=True)
    for name in [*ASSETS, "status.css"]:
        if name != "index.html":
            (static / name).write_bytes(read_asset(name))
    created = time.strftime("%Y-%m-%d %H:%M:%S")
    (static / "data.js").write_bytes(b"window.MLPIPE_EXPORT = " + dumps({"created": created, "responses": responses})
                                     + b";\n")
    page = read_asset("index.html").decode()
    page = page.replace('<script src="static/app.js" defer></script>',
                        '<script src="static/data.js" defer></script>\n<script src="static/app.js" defer></script>')
    (folder / "index.html").write_text(page)
