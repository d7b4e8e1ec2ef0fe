"""Time whole processes: wall time and peak memory (ru_maxrss from wait4) of one child each."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class BenchError(Exception):
    """A measured command failed or did not do what the benchmark expects."""


@dataclass(frozen=True)
class Run:
    wall_s: float
    maxrss_kb: int
    rc: int
    stderr: str  # the last few KB, to check what the command said


def run_timed(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
              check: bool = True) -> Run:
    """Run `argv` to completion with stdout discarded; time it from spawn to exit."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                env=dict(env) if env is not None else None, cwd=cwd)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = rc = os.waitstatus_to_exitcode(status)
        size = err.seek(0, os.SEEK_END)
        err.seek(max(0, size - 4096))
        text = err.read().decode(errors="replace")
    if check and rc != 0:
        raise BenchError(f"{' '.join(argv[:4])} ... exited {rc}:\n{text}")
    return Run(wall, usage.ru_maxrss, rc, text)


@dataclass(frozen=True)
class Stats:
    """Median and range of several runs of one measurement."""

    runs: tuple[float, ...]
    maxrss_kb: int

    @classmethod
    def of(cls, runs: Sequence[Run]) -> Stats:
        return cls(tuple(r.wall_s for r in runs), max(r.maxrss_kb for r in runs))

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def min(self) -> float:
        return min(self.runs)

    @property
    def max(self) -> float:
        return max(self.runs)

    def as_json(self) -> dict:
        return {"median_s": round(self.median, 4), "min_s": round(self.min, 4), "max_s": round(self.max, 4),
                "runs_s": [round(r, 4) for r in self.runs], "maxrss_mb": round(self.maxrss_kb / 1024, 1)}
