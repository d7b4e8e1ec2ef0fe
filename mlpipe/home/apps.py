"""Find apps on the apps path and resolve module and pipe ids to files."""

from __future__ import annotations

from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path

from mlpipe.core.errors import UsageError
from mlpipe.home.settings import Settings


def is_app(path: Path) -> bool:
    return path.is_dir() and ((path / "module").is_dir() or (path / "pipe").is_dir())


@dataclass(frozen=True)
class AppIndex:
    """App name -> app directory. The first app of a name on the apps path wins."""

    apps: dict[str, Path]

    @classmethod
    def discover(cls, settings: Settings, extra: Path | None = None) -> AppIndex:
        """`$MLPIPE_HOME/apps/*`, then every directory in APPS; `extra` (a pipe's own app) first."""
        found: dict[str, Path] = {}
        if extra is not None:
            found[extra.name] = extra
        for parent in [settings.apps_dir, *settings["APPS"]]:
            if parent.is_dir():
                for child in sorted(parent.iterdir()):
                    if child.name not in found and is_app(child):
                        found[child.name] = child.resolve()
        return cls(found)

    def app_dir(self, name: str) -> Path:
        if name not in self.apps:
            hint = get_close_matches(name, list(self.apps), 1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else f" (apps: {', '.join(sorted(self.apps)) or 'none'})"
            raise UsageError(f"unknown app '{name}'{extra}")
        return self.apps[name]

    def module_path(self, module_id: str) -> Path:
        """`APP/module/NAME` -> APP_DIR/module/NAME.yaml (existence is the caller's check)."""
        app, kind, name = _split_id(module_id, "module")
        return self.app_dir(app) / kind / f"{name}.yaml"

    def pipe_file(self, ref: str) -> tuple[str, Path]:
        """A pipe id (`APP/pipe/NAME.yaml`, the suffix optional) -> (pipe id, path)."""
        app, _kind, name = _split_id(ref, "pipe")
        pipe_dir = self.app_dir(app) / "pipe"
        for file_name in (name, f"{name}.yaml", f"{name}.yml"):
            if (pipe_dir / file_name).is_file():
                return f"{app}/pipe/{file_name}", pipe_dir / file_name
        known = [p.name for p in pipe_dir.glob("*.y*ml")]
        hint = get_close_matches(name, known, 1)
        extra = (f"did you mean '{app}/pipe/{hint[0]}'?" if hint
                 else f"pipes in {app}: {', '.join(sorted(known)) or 'none'}")
        raise UsageError(f"unknown pipe '{ref}' ({extra})")

    def module_ids(self, app: str | None = None) -> list[str]:
        return sorted(
            f"{name}/module/{p.stem}"
            for name, path in self.apps.items()
            if app in (None, name)
            for p in (path / "module").glob("*.yaml")
        )

    def pipe_paths(self, app: str | None = None) -> list[tuple[str, Path]]:
        """(pipe id, path) for every pipe YAML, sorted by id."""
        return sorted(
            (f"{name}/pipe/{p.name}", p)
            for name, path in self.apps.items()
            if app in (None, name)
            for p in (path / "pipe").glob("*.y*ml")
        )


def _split_id(ident: str, kind: str) -> tuple[str, str, str]:
    parts = ident.strip("/").split("/")
    if len(parts) != 3 or parts[1] != kind or not all(parts) or ".." in parts:
        raise UsageError(f"'{ident}' is not a {kind} id (expected APP/{kind}/NAME)")
    return parts[0], parts[1], parts[2]


def resolve_pipe(settings: Settings, ref: str) -> tuple[str, Path, AppIndex]:
    """A pipe id (`APP/pipe/NAME.yaml`) or a path to a pipe YAML -> (pipe id, path, apps)."""
    candidate = Path(ref)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file() and candidate.parent.name == "pipe":
        path = candidate.resolve()
        app_dir = path.parent.parent
        apps = AppIndex.discover(settings, extra=app_dir)
        return f"{app_dir.name}/pipe/{path.name}", path, apps
    apps = AppIndex.discover(settings)
    pipe_id, path = apps.pipe_file(ref)
    return pipe_id, path, apps
