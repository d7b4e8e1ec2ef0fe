"""Run every benchmark, print the tables, write bench/results.json.

For each shape (chains, fanin) and N, the same DAG is run by `ml runpipe`, plain doit and make:

    first run -j1, first run -j2        from nothing (home / outputs / DB removed before each run)
    no-op rerun                         everything up to date
    dry-run, nothing changed            ml -n | doit list --all --status | make -n
    dry-run, input changed              the same after appending a line to the shared input

Runs of the three tools are interleaved, so a slow moment of the machine hits them alike. A tool
that fails a step is reported as failed for the rest of that case; the others go on. Results are
written after every case, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import hashbench, report
from bench.generate import Case, write_case
from bench.measure import BenchError, Run, Stats, run_timed

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
TOOLS = ["ml", "doit", "make"]  # "ml-base" is added by --baseline
BASE = "ml-base"


@dataclass(frozen=True)
class Plan:
    """What to run and how many times; repeats are per N."""

    sizes: tuple[int, ...]
    first: dict[int, int]  # first-run -j1 repeats (slow: every job executes)
    first_j2: dict[int, int]  # 0 skips -j2
    fast: dict[int, int]  # no-op and dry-run repeats
    startup: int = 15
    sleep_jobs: int = 20
    sleep_repeats: int = 3
    hash_mb: int = 1024
    hash_repeats: int = 3


# NOTE: sized for `make bench` to stay under 10 minutes on the 2-CPU test machine, where creating
# a file costs ~1 ms: first runs (every job executes) are repeated less as N grows.
FULL = Plan((100, 1000, 5000), {100: 3, 1000: 1, 5000: 1}, {100: 2, 1000: 1, 5000: 0}, {100: 5, 1000: 5, 5000: 3},
            startup=10, sleep_repeats=2, hash_repeats=2)
QUICK = Plan((100,), {100: 1}, {100: 1}, {100: 3}, startup=5, sleep_jobs=6, sleep_repeats=1, hash_mb=128,
             hash_repeats=1)


class Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)


def _tool(name: str) -> list[str]:
    path = BIN / name
    return [str(path)] if path.exists() else [sys.executable, "-m", name]


_PYCACHE: list[Path] = []  # set by main(): a bytecode cache inside the temp dir
_ASIDE: list[Path] = []  # set by main(): where built files wait to be deleted when the bench ends


def set_aside(path: Path) -> None:
    """Move `path` out of the way (one rename; see `Runner.reset` for why nothing is deleted now)."""
    aside = _ASIDE[0] if _ASIDE else path.parent / ".aside"
    aside.mkdir(parents=True, exist_ok=True)
    path.rename(aside / f"{len(list(aside.iterdir()))}-{path.name}")
_BASELINE: list[Path] = []  # --baseline: a folder holding another `mlpipe` package to compare with


def base_env() -> dict[str, str]:
    """The caller's environment without MLPipe or AWS settings, with a bytecode cache.

    NOTE: an installed `ml` runs from cached bytecode; a sandbox that sets PYTHONDONTWRITEBYTECODE
    would make every run recompile mlpipe from source, so the harness gives every tool (ml, doit and
    the dodo.py) the same bytecode cache, in its temp dir (the repository is never written).
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLPIPE_", "AWS_")) and k != "PYTHONDONTWRITEBYTECODE"}
    if _PYCACHE:
        env["PYTHONPYCACHEPREFIX"] = str(_PYCACHE[0])
    return env


class Runner:
    """The commands of each tool for one case."""

    def __init__(self, case: Case):
        self.case = case
        self.env = base_env()
        self.ml_env = {**self.env, "MLPIPE_HOME": str(case.home), "MLPIPE_APPS": str(case.apps)}
        self.base_home = case.root / "home-base"
        self.base_built = False  # the baseline's last build succeeded

    def _ml(self, *args: str, tool: str = "ml", own_home: bool = False) -> Run:
        env = self.ml_env
        if tool == BASE:
            # NOTE: the baseline builds in its own home and checks it (no-op, dry-runs); a baseline
            # that could not build a pipe checks the home `ml` built (the layout is the same). Not
            # always ml's: two versions alternating on one home would each find the other's plan
            # memo (its code stamp differs) and check the pipe again, every time.
            env = {**env, "PYTHONPATH": os.pathsep.join([str(_BASELINE[0]), env.get("PYTHONPATH", "")]).rstrip(
                os.pathsep)}
            if own_home or self.base_built:
                env["MLPIPE_HOME"] = str(self.base_home)
        # `python -m mlpipe` for the baseline: an older version's console script may name another module.
        # NOTE: run in the case's folder: `-m` puts the working directory first on sys.path, so started
        # in a checkout it would import that checkout's mlpipe instead of the baseline.
        command = [sys.executable, "-m", "mlpipe"] if tool == BASE else _tool("ml")
        return run_timed([*command, "runpipe", self.case.pipe_id, *args], cwd=self.case.root, env=env)

    def _doit(self, *args: str) -> Run:
        return run_timed([*_tool("doit"), "-f", "dodo.py", *args], cwd=self.case.doit_dir, env=self.env)

    def _make(self, *args: str) -> Run:
        return run_timed(["make", *args], cwd=self.case.make_dir, env=self.env)

    def reset(self, tool: str) -> None:
        """Move what the tool built aside (deleted when the bench ends), then let the disk settle.

        NOTE: moved, not deleted. On ext4 without a journal (the test machine's root), creating
        a file skips every inode freed in the last 5 s, or 5 min while its inode table block is
        dirty (`recently_deleted()` in fs/ext4/ialloc.c), reading each one's table entry: a run
        just after deleting thousands of files pays for scanning past them, and the tool that
        creates the most files per job pays the most (ml's cold runs took 1.8x as long). A run
        on a real machine follows no such deletion. The sync writes what the move dirtied.
        """
        built = {"ml": [self.case.home], BASE: [self.base_home], "make": [self.case.make_dir / "out"],
                 "doit": [self.case.doit_dir / "out", *self.case.doit_dir.glob("doit.sqlite3*")]}[tool]
        for path in built:
            if path.exists():
                set_aside(path)
        os.sync()

    def build(self, tool: str, jobs: int) -> Run:
        if tool in ("ml", BASE):
            self.base_built = self.base_built and tool != BASE
            run = self._ml("-j", str(jobs), tool=tool, own_home=True)
            self.base_built = self.base_built or tool == BASE
            return run
        if tool == "doit":
            return self._doit("run", "-n", str(jobs))
        return self._make("-s", f"-j{jobs}")

    def noop(self, tool: str) -> Run:
        if tool in ("ml", BASE):
            run = self._ml(tool=tool)
            if "nothing to do" not in run.stderr:
                raise BenchError(f"{tool} no-op rerun did something:\n{run.stderr}")
            return run
        return self._doit("run") if tool == "doit" else self._make("-s")

    def dry_run(self, tool: str) -> Run:
        if tool in ("ml", BASE):
            return self._ml("-n", tool=tool)
        return self._doit("list", "--all", "--status") if tool == "doit" else self._make("-n")

    def check_same_outputs(self) -> None:
        """The three tools computed the same bytes (the benchmark compares equal work)."""
        out = subprocess.run([*_tool("ml"), "runpipe", self.case.pipe_id, "--json"], env=self.ml_env,
                             capture_output=True, text=True, check=True).stdout
        last = json.loads(out)["jobs"][-1]["outputs"]["output"]
        texts = {"ml": Path(last).read_bytes(), **{t: self.case.final_output(t).read_bytes() for t in ("doit", "make")}}
        if len(set(texts.values())) != 1:
            raise BenchError(f"{self.case.shape} N={self.case.n}: the tools wrote different final outputs")


class Measured:
    """Rows of results.json for one case: one per (measure, tool); a failed tool stays failed."""

    def __init__(self, shape: str, n: int, rows: list[dict[str, Any]]):
        self.shape, self.n, self.rows = shape, n, rows
        self.failed: dict[str, str] = {}
        self.built_by_others = {BASE}  # measured on the state `ml` built, whatever its own build did

    def repeat(self, measure: str, times: int, step: Callable[[str], Run],
               before: Callable[[str], None] | None = None) -> None:
        runs: dict[str, list[Run]] = {tool: [] for tool in TOOLS}
        os.sync()  # what earlier steps wrote goes to disk now, not during the next timing
        for _ in range(times):
            for tool in TOOLS:
                if tool in self.failed and (before is not None or tool not in self.built_by_others):
                    continue
                try:
                    if before is not None:
                        before(tool)
                    runs[tool].append(step(tool))
                except BenchError as exc:
                    self.failed[tool] = str(exc).strip().splitlines()[-1][:200]
                    print(f"  {tool} failed: {exc}", file=sys.stderr)
        for tool in TOOLS:
            row = {"shape": self.shape, "n": self.n, "measure": measure, "tool": tool}
            if runs[tool]:
                row.update(Stats.of(runs[tool]).as_json())
            elif tool in self.failed:
                row["error"] = self.failed[tool]
            self.rows.append(row)
            if before is None and tool in self.built_by_others:
                self.failed.pop(tool, None)  # its build failed; checks of ml's home still count


def bench_case(root: Path, shape: str, n: int, plan: Plan, clock: Clock, rows: list[dict[str, Any]]) -> None:
    case = write_case(root, shape, n)
    runner = Runner(case)
    measured = Measured(shape, n, rows)
    label = f"{shape} N={n}"
    if plan.first_j2[n]:
        clock.say(f"{label}: first run -j2 x{plan.first_j2[n]}")
        measured.repeat("first run -j2", plan.first_j2[n], lambda t: runner.build(t, 2), before=runner.reset)
    clock.say(f"{label}: first run -j1 x{plan.first[n]}")
    measured.repeat("first run -j1", plan.first[n], lambda t: runner.build(t, 1), before=runner.reset)
    if not {"ml", "doit", "make"} & set(measured.failed):
        runner.check_same_outputs()
    clock.say(f"{label}: no-op and dry-runs x{plan.fast[n]}")
    measured.repeat("no-op rerun", plan.fast[n], runner.noop)
    measured.repeat("dry-run, nothing changed", plan.fast[n], runner.dry_run)
    with open(case.seed, "a") as seed:
        seed.write("changed\n")
    measured.repeat("dry-run, input changed", plan.fast[n], runner.dry_run)
    set_aside(root)


def bench_parallel(root: Path, plan: Plan, clock: Clock) -> list[dict[str, Any]]:
    """-j 2 vs -j 1 on independent jobs that each sleep 100 ms."""
    clock.say(f"parallel: {plan.sleep_jobs} jobs of 100 ms, -j1 and -j2 x{plan.sleep_repeats}")
    runner = Runner(write_case(root, "sleep", plan.sleep_jobs))
    rows: list[dict[str, Any]] = []
    measured = Measured("sleep", plan.sleep_jobs, rows)
    for jobs in (1, 2):
        measured.repeat(f"-j{jobs}", plan.sleep_repeats, lambda t, j=jobs: runner.build(t, j), before=runner.reset)
    set_aside(root)
    return rows


def bench_startup(root: Path, plan: Plan, clock: Clock) -> dict[str, Any]:
    """Process start-up: the Python floor, `ml --help`, `ml listpipe` (one 100-job pipe), `doit list`."""
    clock.say(f"start-up x{plan.startup}")
    case = write_case(root, "chains", 100)
    runner = Runner(case)
    ml = _tool("ml")
    commands: dict[str, Callable[[], Run]] = {
        "python -c pass": lambda: run_timed([sys.executable, "-c", "pass"], env=runner.env),
        "ml --help": lambda: run_timed([*ml, "--help"], env=runner.ml_env),
        "ml listpipe": lambda: run_timed([*ml, "listpipe"], env=runner.ml_env),
        "doit list (100 tasks)": lambda: run_timed([*_tool("doit"), "-f", "dodo.py", "list"], cwd=case.doit_dir,
                                                   env=runner.env),
    }
    if _BASELINE:
        base_env_ = {**runner.ml_env, "PYTHONPATH": str(_BASELINE[0])}
        commands["ml-base --help"] = lambda: run_timed([*ml, "--help"], env=base_env_)
        commands["ml-base listpipe"] = lambda: run_timed([*ml, "listpipe"], env=base_env_)
    run_timed([*ml, "init"], env=runner.ml_env)
    for command in commands.values():  # warm the bytecode cache (and listpipe's YAML memo)
        command()
    runs: dict[str, list[Run]] = {name: [] for name in commands}
    for _ in range(plan.startup):
        for name, command in commands.items():
            runs[name].append(command())
    shutil.rmtree(root, ignore_errors=True)
    return {name: Stats.of(r).as_json() for name, r in runs.items()}


def bench_hashing(root: Path, plan: Plan, clock: Clock) -> dict[str, Any]:
    root.mkdir(parents=True)
    big = root / "big.bin"
    clock.say(f"hashing: writing a {plan.hash_mb} MB random file")
    hashbench.make_random_file(big, plan.hash_mb << 20)
    try:
        clock.say(f"hashing: md5_file vs md5sum x{plan.hash_repeats}")
        result = {"size_bytes": big.stat().st_size,
                  "throughput": hashbench.throughput(big, plan.hash_repeats, base_env())}
        clock.say("hashing: stat-keyed memo, then ml runpipe with the file as an input")
        result["memo"] = hashbench.memo(big, root / "md5.sqlite")
        result["ml_runpipe"] = hashbench.end_to_end(big, root / "e2e", _tool("ml")[0], base_env())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return result


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    cpu = "unknown"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    make = subprocess.run(["make", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=HERE).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "platform": platform.platform(), "doit": version("doit"), "pyyaml": version("pyyaml"), "make": make,
            "mlpipe_commit": commit, "tmp": tempfile.gettempdir()}


def _counts(text: str) -> dict[int, int]:
    """`100:5,1000:3` -> {100: 5, 1000: 3}; a bare number applies to every size."""
    if ":" not in text:
        return {-1: int(text)}
    return {int(k): int(v) for k, v in (item.split(":") for item in text.split(","))}


def _plan(args: argparse.Namespace) -> Plan:
    plan = QUICK if args.quick else FULL
    if args.sizes:
        plan = replace(plan, sizes=args.sizes)
    tables = {}
    for field, override in (("first", args.first), ("first_j2", args.first_j2), ("fast", args.fast)):
        table = dict(getattr(plan, field))
        if override:
            counts = _counts(override)
            table.update({n: counts.get(n, counts.get(-1, table.get(n, 1))) for n in plan.sizes})
        table.update({n: table.get(n, 1 if n > 1000 else 3) for n in plan.sizes})
        tables[field] = table
    return replace(plan, **tables)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=100 only, few repeats, a 128 MB hash file")
    parser.add_argument("--sizes", type=lambda s: tuple(int(x) for x in s.split(",")), help="e.g. 100,1000")
    parser.add_argument("--shapes", default="chains,fanin", help="comma-separated: chains,fanin")
    parser.add_argument("--first", help="first-run -j1 repeats: N, or SIZE:N,SIZE:N")
    parser.add_argument("--first-j2", help="first-run -j2 repeats (0 skips), like --first")
    parser.add_argument("--fast", help="no-op and dry-run repeats, like --first")
    parser.add_argument("--skip", default="", help="comma-separated: startup,pipes,parallel,hashing")
    parser.add_argument("--format", default="simple", help="table format (github for RESULTS.md)")
    parser.add_argument("--out", type=Path, help="results JSON (default: bench/results.json; none with --quick)")
    parser.add_argument("--show", type=Path, metavar="JSON", help="only print the tables of a results JSON")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="also time the `mlpipe` package in DIR (e.g. a copy of an older version), as ml-base")
    args = parser.parse_args(argv)
    if args.show:
        report.print_report(json.loads(args.show.read_text()), args.format)
        return 0
    plan = _plan(args)
    if args.baseline:
        _BASELINE.append(args.baseline.resolve())
        TOOLS.insert(1, BASE)
    skip = set(args.skip.split(","))
    out = args.out or (None if args.quick else HERE / "results.json")
    clock = Clock()
    tmp = Path(tempfile.mkdtemp(prefix="mlpipe-bench-"))
    _PYCACHE.append(tmp / "pycache")
    _ASIDE.append(tmp / "aside")
    results: dict[str, Any] = {
        "machine": machine(), "load_average_before": os.getloadavg(),
        "config": {"sizes": list(plan.sizes), "first_repeats": plan.first, "first_j2_repeats": plan.first_j2,
                   "fast_repeats": plan.fast, "startup_repeats": plan.startup, "sleep_jobs": plan.sleep_jobs,
                   "sleep_repeats": plan.sleep_repeats, "hash_mb": plan.hash_mb, "hash_repeats": plan.hash_repeats,
                   "baseline": str(args.baseline) if args.baseline else None},
        "pipes": [],
    }

    def save() -> None:
        results["total_s"] = round(time.monotonic() - clock.started, 1)
        results["load_average_after"] = os.getloadavg()
        if out is not None:
            out.write_text(json.dumps(results, indent=1) + "\n")

    try:
        if "startup" not in skip:
            results["startup"] = bench_startup(tmp / "startup", plan, clock)
        if "pipes" not in skip:
            for n in plan.sizes:
                for shape in args.shapes.split(","):
                    bench_case(tmp / f"{shape}-{n}", shape, n, plan, clock, results["pipes"])
                    save()
        if "parallel" not in skip:
            results["parallel"] = bench_parallel(tmp / "sleep", plan, clock)
        if "hashing" not in skip:
            results["hashing"] = bench_hashing(tmp / "hashing", plan, clock)
    finally:
        clock.say("removing the temp dir")
        shutil.rmtree(tmp, ignore_errors=True)
        save()
    report.print_report(results, args.format)
    print(f"\nbench: {results['total_s']:.0f}s in total" + (f", wrote {out}" if out else ""))
    return 0
