"""Run every benchmark, print the tables, write bench/results.json.

For each shape (chains, fanin) and N, the same DAG is run by `ml runpipe`, plain doit and make:

    first run -j 1, first run -j 2      from nothing (home / outputs / DB removed before each run)
    no-op rerun                         everything up to date
    dry-run, nothing changed            ml -n | doit list --all --status | make -n
    dry-run, input changed              the same after appending a line to the shared input

Runs of the three tools are interleaved, so a slow moment of the machine hits them alike.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench import hashbench
from bench.generate import Case, write_case
from bench.measure import BenchError, Run, Stats, fmt_stats, fmt_time, run_timed

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
TOOLS = ("ml", "doit", "make")
MEASURES = ("first run -j1", "first run -j2", "no-op rerun", "dry-run, nothing changed", "dry-run, input changed")


@dataclass(frozen=True)
class Plan:
    """How many times to repeat each kind of measurement, per N."""

    sizes: tuple[int, ...]
    first: dict[int, int]  # first-run repeats (slow: every job executes)
    first_j2: dict[int, int]
    fast: dict[int, int]  # no-op and dry-run repeats
    startup: int
    sleep_jobs: int
    sleep_repeats: int
    hash_mb: int
    hash_repeats: int


FULL = Plan((100, 1000, 5000), {100: 5, 1000: 3, 5000: 1}, {100: 3, 1000: 3, 5000: 1},
            {100: 9, 1000: 7, 5000: 5}, 15, 20, 3, 1024, 3)
QUICK = Plan((100,), {100: 1}, {100: 1}, {100: 3}, 5, 6, 1, 128, 1)


class Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)


def _tool(name: str) -> list[str]:
    path = BIN / name
    return [str(path)] if path.exists() else [sys.executable, "-m", name]


_PYCACHE: list[Path] = []  # set by main(): a bytecode cache inside the temp dir


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

    def reset(self, tool: str) -> None:
        if tool == "ml":
            shutil.rmtree(self.case.home, ignore_errors=True)
        elif tool == "doit":
            shutil.rmtree(self.case.doit_dir / "out", ignore_errors=True)
            for db in self.case.doit_dir.glob("doit.sqlite3*"):
                db.unlink()
        else:
            shutil.rmtree(self.case.make_dir / "out", ignore_errors=True)

    def build(self, tool: str, jobs: int) -> Run:
        if tool == "ml":
            return run_timed([*_tool("ml"), "runpipe", self.case.pipe_id, "-j", str(jobs)], env=self.ml_env)
        if tool == "doit":
            return run_timed([*_tool("doit"), "-f", "dodo.py", "run", "-n", str(jobs)], cwd=self.case.doit_dir,
                             env=self.env)
        return run_timed(["make", "-s", f"-j{jobs}"], cwd=self.case.make_dir, env=self.env)

    def noop(self, tool: str) -> Run:
        if tool == "ml":
            run = run_timed([*_tool("ml"), "runpipe", self.case.pipe_id], env=self.ml_env)
            if "nothing to do" not in run.stderr:
                raise BenchError(f"ml no-op rerun did something:\n{run.stderr}")
            return run
        if tool == "doit":
            return run_timed([*_tool("doit"), "-f", "dodo.py", "run"], cwd=self.case.doit_dir, env=self.env)
        return run_timed(["make", "-s"], cwd=self.case.make_dir, env=self.env)

    def dry_run(self, tool: str) -> Run:
        if tool == "ml":
            return run_timed([*_tool("ml"), "runpipe", self.case.pipe_id, "-n"], env=self.ml_env)
        if tool == "doit":
            return run_timed([*_tool("doit"), "-f", "dodo.py", "list", "--all", "--status"], cwd=self.case.doit_dir,
                             env=self.env)
        return run_timed(["make", "-n"], cwd=self.case.make_dir, env=self.env)

    def check_same_outputs(self) -> None:
        """The three tools computed the same bytes (the benchmark compares equal work)."""
        out = subprocess.run([*_tool("ml"), "runpipe", self.case.pipe_id, "--json"], env=self.ml_env,
                             capture_output=True, text=True, check=True).stdout
        last = json.loads(out)["jobs"][-1]["outputs"]["output"]
        texts = {"ml": Path(last).read_bytes(), **{t: self.case.final_output(t).read_bytes() for t in ("doit", "make")}}
        if len(set(texts.values())) != 1:
            raise BenchError(f"{self.case.shape} N={self.case.n}: the tools wrote different final outputs")


def _repeat(times: int, step: Callable[[str], Run], tools: Sequence[str] = TOOLS,
            before: Callable[[str], None] | None = None) -> dict[str, Stats]:
    runs: dict[str, list[Run]] = {tool: [] for tool in tools}
    for _ in range(times):
        for tool in tools:
            if before is not None:
                before(tool)
            runs[tool].append(step(tool))
    return {tool: Stats.of(r) for tool, r in runs.items()}


def bench_case(root: Path, shape: str, n: int, plan: Plan, clock: Clock) -> dict[str, dict[str, Stats]]:
    case = write_case(root, shape, n)
    runner = Runner(case)
    found: dict[str, dict[str, Stats]] = {}
    label = f"{shape} N={n}"
    clock.say(f"{label}: first run -j2 x{plan.first_j2[n]}")
    found["first run -j2"] = _repeat(plan.first_j2[n], lambda t: runner.build(t, 2), before=runner.reset)
    clock.say(f"{label}: first run -j1 x{plan.first[n]}")
    found["first run -j1"] = _repeat(plan.first[n], lambda t: runner.build(t, 1), before=runner.reset)
    runner.check_same_outputs()
    clock.say(f"{label}: no-op and dry-runs x{plan.fast[n]}")
    found["no-op rerun"] = _repeat(plan.fast[n], runner.noop)
    found["dry-run, nothing changed"] = _repeat(plan.fast[n], runner.dry_run)
    with open(case.seed, "a") as seed:
        seed.write("changed\n")
    found["dry-run, input changed"] = _repeat(plan.fast[n], runner.dry_run)
    shutil.rmtree(root, ignore_errors=True)
    return found


def bench_parallel(root: Path, plan: Plan, clock: Clock) -> dict[str, dict[str, Stats]]:
    """-j 2 vs -j 1 on independent jobs that each sleep 100 ms."""
    clock.say(f"parallel: {plan.sleep_jobs} jobs of 100 ms, -j1 and -j2 x{plan.sleep_repeats}")
    runner = Runner(write_case(root, "sleep", plan.sleep_jobs))
    found = {f"-j{j}": _repeat(plan.sleep_repeats, lambda t, j=j: runner.build(t, j), before=runner.reset)
             for j in (1, 2)}
    shutil.rmtree(root, ignore_errors=True)
    return found


def bench_startup(root: Path, plan: Plan, clock: Clock) -> dict[str, Stats]:
    """Process start-up: the Python floor, `ml --help`, `ml listpipe` (one 100-job pipe), `doit list`."""
    clock.say(f"start-up x{plan.startup}")
    case = write_case(root, "chains", 100)
    runner = Runner(case)
    env = runner.ml_env
    ml = _tool("ml")
    commands: dict[str, Callable[[], Run]] = {
        "python -c pass": lambda: run_timed([sys.executable, "-c", "pass"], env=runner.env),
        "ml --help": lambda: run_timed([*ml, "--help"], env=env),
        "ml listpipe": lambda: run_timed([*ml, "listpipe"], env=env),
        "doit list (100 tasks)": lambda: run_timed([*_tool("doit"), "-f", "dodo.py", "list"], cwd=case.doit_dir,
                                                   env=runner.env),
    }
    run_timed([*ml, "init"], env=env)
    for command in commands.values():  # warm the bytecode cache
        command()
    runs: dict[str, list[Run]] = {name: [] for name in commands}
    for _ in range(plan.startup):
        for name, command in commands.items():
            runs[name].append(command())
    shutil.rmtree(root, ignore_errors=True)
    return {name: Stats.of(r) for name, r in runs.items()}


def bench_hashing(root: Path, plan: Plan, clock: Clock) -> dict[str, Any]:
    root.mkdir(parents=True)
    big = root / "big.bin"
    clock.say(f"hashing: writing a {plan.hash_mb} MB random file")
    hashbench.make_random_file(big, plan.hash_mb << 20)
    try:
        clock.say(f"hashing: md5_file vs md5sum x{plan.hash_repeats}")
        result = {"size_bytes": big.stat().st_size,
                  "throughput": hashbench.throughput(big, plan.hash_repeats, base_env())}
        clock.say("hashing: stat-keyed memo")
        result["memo"] = hashbench.memo(big, root / "md5.sqlite")
        result["ml_runpipe"] = hashbench.end_to_end(big, root / "e2e", _tool("ml")[0], base_env())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return result


# -- report ---------------------------------------------------------------------------------------
def _ratio(a: Stats | None, b: Stats | None) -> str:
    return f"{a.median / b.median:.2f}x" if a and b and b.median > 0 else "-"


def pipe_table(pipes: dict[tuple[str, int], dict[str, dict[str, Stats]]]) -> list[list[str]]:
    rows = []
    for (shape, n), found in pipes.items():
        for measure in MEASURES:
            stats = found.get(measure)
            if not stats:
                continue
            ml, doit, make = (stats.get(t) for t in TOOLS)
            per_job = f"{ml.median / n * 1e6:.0f}" if ml else "-"
            rows.append([shape, n, measure, fmt_stats(ml), fmt_stats(doit), fmt_stats(make), _ratio(ml, doit),
                         _ratio(ml, make), per_job, f"{ml.maxrss_kb / 1024:.0f}" if ml else "-",
                         f"{doit.maxrss_kb / 1024:.0f}" if doit else "-"])
    return rows


PIPE_HEADERS = ["shape", "N", "measure", "ml median [min–max]", "doit", "make", "ml/doit", "ml/make",
                "ml µs/job", "ml MB", "doit MB"]


def print_report(results: dict[str, Any], pipes: dict, startup: dict[str, Stats], parallel: dict,
                 fmt: str) -> None:
    print(tabulate(pipe_table(pipes), headers=PIPE_HEADERS, tablefmt=fmt, disable_numparse=True))
    print()
    rows = [[name, fmt_stats(s), f"{s.maxrss_kb / 1024:.0f}"] for name, s in startup.items()]
    print(tabulate(rows, headers=["start-up", "median [min–max]", "peak MB"], tablefmt=fmt, disable_numparse=True))
    print()
    rows = []
    for tool in TOOLS:
        j1, j2 = parallel["-j1"][tool], parallel["-j2"][tool]
        rows.append([tool, fmt_stats(j1), fmt_stats(j2), f"{j1.median / j2.median:.2f}x"])
    n = results["config"]["sleep_jobs"]
    print(tabulate(rows, headers=[f"{n} x 100 ms jobs", "-j1", "-j2", "speed-up"], tablefmt=fmt,
                   disable_numparse=True))
    hashing = results.get("hashing")
    if hashing:
        print()
        tp = hashing["throughput"]
        mb = hashing["size_bytes"] >> 20
        rows = [[f"md5 of {mb} MB: mlpipe md5_file", fmt_time(tp["md5_file"]["min_s"]),
                 f"{tp['md5_file']['mb_per_s_best']} MB/s"],
                ["md5 of the same file: md5sum", fmt_time(tp["md5sum"]["min_s"]),
                 f"{tp['md5sum']['mb_per_s_best']} MB/s"],
                ["md5_file / md5sum throughput", "", f"{tp['ratio_best']:.0%}"]]
        rows += [[f"DigestCache: {step}", fmt_time(v["seconds"]), f"{v['bytes_read'] >> 20} MB read"]
                 for step, v in hashing["memo"].items()]
        rows += [[f"ml runpipe, {mb} MB input: {step}", fmt_time(v), ""] for step, v in hashing["ml_runpipe"].items()]
        print(tabulate(rows, headers=["hashing (best of runs)", "time", ""], tablefmt=fmt, disable_numparse=True))


def machine() -> dict[str, str]:
    from importlib.metadata import version

    cpu = "unknown"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    make = subprocess.run(["make", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=HERE).stdout.strip()
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "python": platform.python_version(),
            "platform": platform.platform(), "doit": version("doit"), "pyyaml": version("pyyaml"), "make": make,
            "mlpipe_commit": commit}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=100 only, few repeats, a 128 MB hash file")
    parser.add_argument("--sizes", type=lambda s: tuple(int(x) for x in s.split(",")), help="e.g. 100,1000")
    parser.add_argument("--shapes", default="chains,fanin", help="comma-separated: chains,fanin")
    parser.add_argument("--no-hashing", action="store_true", help="skip the 1 GB hashing figures")
    parser.add_argument("--format", default="simple", help="tabulate format (github for RESULTS.md)")
    parser.add_argument("--out", type=Path, help="results JSON (default: bench/results.json; none with --quick)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    sizes = args.sizes or plan.sizes
    for n in sizes:
        for table in (plan.first, plan.first_j2, plan.fast):
            table.setdefault(n, 1 if n > 1000 else 3)
    clock = Clock()
    tmp = Path(tempfile.mkdtemp(prefix="mlpipe-bench-"))
    _PYCACHE.append(tmp / "pycache")
    results: dict[str, Any] = {"machine": machine(), "load_average_before": os.getloadavg(), "config": {
        "sizes": list(sizes), "first_repeats": plan.first, "first_j2_repeats": plan.first_j2,
        "fast_repeats": plan.fast, "startup_repeats": plan.startup, "sleep_jobs": plan.sleep_jobs}}
    pipes: dict[tuple[str, int], dict[str, dict[str, Stats]]] = {}
    try:
        startup = bench_startup(tmp / "startup", plan, clock)
        for n in sizes:
            for shape in args.shapes.split(","):
                pipes[(shape, n)] = bench_case(tmp / f"{shape}-{n}", shape, n, plan, clock)
        parallel = bench_parallel(tmp / "sleep", plan, clock)
        if not args.no_hashing:
            results["hashing"] = bench_hashing(tmp / "hashing", plan, clock)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["pipes"] = [{"shape": shape, "n": n, "measure": measure, "tool": tool, **stats.as_json()}
                        for (shape, n), found in pipes.items() for measure, by_tool in found.items()
                        for tool, stats in by_tool.items()]
    results["startup"] = {name: s.as_json() for name, s in startup.items()}
    results["parallel"] = {j: {tool: s.as_json() for tool, s in by_tool.items()} for j, by_tool in parallel.items()}
    results["total_s"] = round(time.monotonic() - clock.started, 1)
    results["load_average_after"] = os.getloadavg()
    print_report(results, pipes, startup, parallel, args.format)
    print(f"\nbench: {results['total_s']:.0f}s in total")
    out = args.out or (None if args.quick else HERE / "results.json")
    if out is not None:
        out.write_text(json.dumps(results, indent=1) + "\n")
        print(f"bench: wrote {out}")
    return 0
