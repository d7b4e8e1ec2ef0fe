"""The checked plan of an unchanged pipe, kept in the home, so that a no-op run does not parse
and check it again (at 1,000 jobs that was a quarter of a no-op `ml runpipe`).

One file per pipe path: a pickled header (code stamp, key, the text of every YAML file read)
followed by the pickled Plan. The plan is used only when the code that checks pipes is
unchanged, the key (pipe, apps, `--set`, `--grid`, MAX_JOBS) is equal and every file read then
has exactly the same text now. Any doubt, a damaged file or an unpicklable plan means: check as
before. Only plans without problems are kept; a pipe with `includes:` is always checked (which
file an include names depends on which files exist).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
import zlib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import mlpipe.core
from mlpipe.core.plan import Plan

_LOADING_CODE = ("loader.py", "apps.py", "plan_memo.py")  # in mlpipe/home, beside every file of mlpipe/core


class PlanMemo:
    def __init__(self, folder: Path):
        self.folder = folder

    def _file(self, pipe_path: Path) -> Path:
        return self.folder / f"{zlib.crc32(str(pipe_path).encode()):08x}-{pipe_path.name}.pickle"

    def load(self, pipe_path: Path, key: tuple) -> Plan | None:
        """The kept plan when nothing it was checked from has changed; else None."""
        try:
            with open(self._file(pipe_path), "rb") as handle:
                if not _trusted(os.fstat(handle.fileno())):
                    return None
                stamp, found_key, texts = pickle.load(handle)
                if stamp != _code_stamp() or found_key != key or not _same_texts(texts):
                    return None
                plan = pickle.load(handle)
        except Exception:  # noqa: BLE001 - a memo in any state is only a miss
            return None
        return plan if isinstance(plan, Plan) else None

    def store(self, pipe_path: Path, key: tuple, texts: Mapping[str, str], plan: Plan) -> None:
        if plan.pipe.includes:
            return
        from mlpipe.store.atomic import write_bytes_atomic  # only after a pipe was checked

        try:
            blob = (pickle.dumps((_code_stamp(), key, dict(texts)), pickle.HIGHEST_PROTOCOL)
                    + pickle.dumps(plan, pickle.HIGHEST_PROTOCOL))
        except (pickle.PicklingError, TypeError, AttributeError):
            return
        with contextlib.suppress(OSError):  # a read-only home only costs checking
            write_bytes_atomic(self._file(pipe_path), blob)  # mode 0600 (mkstemp)


def memo_key(pipe_id: str, apps: Mapping[str, Path], overrides: Any, grid: Any, max_jobs: int) -> tuple:
    """Everything besides the files' texts that the checked plan depends on."""
    return (pipe_id, {name: str(path) for name, path in apps.items()}, overrides or {}, grid or {}, max_jobs)


def _trusted(st: os.stat_result) -> bool:
    """Ours and writable only by us: unpickling runs code, as importing a .pyc does."""
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _same_texts(texts: Mapping[str, str]) -> bool:
    for path, text in texts.items():
        try:
            with open(path, encoding="utf-8") as handle:
                if handle.read() != text:
                    return False
        except (OSError, UnicodeDecodeError):
            return False
    return True


@cache
def _code_stamp() -> tuple:
    """Changes whenever the code that reads and checks pipes may have (edited, or reinstalled)."""
    core = Path(mlpipe.core.__file__).parent
    home = Path(__file__).parent
    files = [*sorted(core.glob("*.py")), *(home / name for name in _LOADING_CODE)]
    return (sys.version, tuple((f.name, st.st_size, st.st_mtime_ns) for f in files for st in [f.stat()]))
