"""What is on the apps path: pipes with their job counts, modules with their interfaces
(`ml listpipe --json`, `ml listmodule --json` and the web UI share these rows)."""

from __future__ import annotations

from typing import Any

from mlpipe.core.errors import SpecError
from mlpipe.home.apps import AppIndex
from mlpipe.home.loader import YamlMemo, load_module, load_pipe_with_includes
from mlpipe.home.settings import Settings


def list_pipes(settings: Settings, apps: AppIndex, app: str | None = None) -> list[dict[str, Any]]:
    """`{"pipe", "app", "jobs"}` per pipe YAML (`jobs` None and an `error` when it does not load)."""
    memo = YamlMemo(settings.state_dir / "yaml")  # an unchanged pipe is not parsed again
    rows = []
    for pipe_id, path in apps.pipe_paths(app):
        row: dict[str, Any] = {"pipe": pipe_id, "app": pipe_id.split("/")[0], "jobs": None}
        try:
            row["jobs"] = len(load_pipe_with_includes(apps, path, pipe_id, memo).jobs)
        except SpecError as exc:
            row["error"] = str(exc.problems[0])
        rows.append(row)
    return rows


def list_modules(apps: AppIndex, app: str | None = None) -> list[dict[str, Any]]:
    """`{"module", "inputs", "outputs", "parameters", "shell"}` per module YAML (or `{"module", "error"}`)."""
    rows: list[dict[str, Any]] = []
    for module_id in apps.module_ids(app):
        try:
            module = load_module(apps, module_id)
        except SpecError as exc:
            rows.append({"module": module_id, "error": str(exc.problems[0])})
            continue
        rows.append({
            "module": module_id,
            "inputs": {n: p.type for n, p in module.inputs.items()},
            "outputs": {n: p.type for n, p in module.outputs.items()},
            "parameters": {n: {"type": p.type, "default": p.default} for n, p in module.params.items()},
            "shell": module.shell,
        })
    return rows
