"""Sweep and metrics speed (issue 12): `python -m bench.sweeps` (about 2 minutes on 2 cores).

    no-op rerun   a 1,000-member sweep vs a plain pipe of 1,000 jobs (same module, same work)
    planning      a 10,000-member grid: load_plan in-process, and `ml runpipe -n` as a process
    ml metrics    10,000 job records with parameters and metrics, as a table and as JSON

Figures go to bench/sweeps_results.json and stdout; targets: rerun within 1.2x, the other two under 1 s.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import Stats, run_timed

N_RERUN, N_GRID, N_RECORDS, REPEATS = 1_000, 10_000, 10_000, 5
MODULE = """
input:
  seed: {type: text}
output:
  out: {type: text}
parameters:
  i: {type: int, default: 0}
cmd: cp seed out
"""
HEAD = "jobs:\n"
SEED = "file://sw/data/seed.txt"


def _sweep_pipe(n: int) -> str:
    values = ", ".join(map(str, range(n)))
    return (f"{HEAD}  train:\n    module: sw/module/copy\n    input: {{seed: {SEED}}}\n"
            f"    output: {{out: model}}\n    sweep:\n      grid: {{i: [{values}]}}\n")


def _plain_pipe(n: int) -> str:
    return HEAD + "".join(f"  j{i}: {{module: sw/module/copy, input: {{seed: {SEED}}}, output: {{out: o{i}}},"
                          f" parameters: {{i: {i}}}}}\n" for i in range(n))


def _write_app(root: Path) -> Path:
    app = root / "apps" / "sw"
    for sub in ("module", "pipe", "data"):
        (app / sub).mkdir(parents=True, exist_ok=True)
    (app / "module" / "copy.yaml").write_text(MODULE)
    (app / "data" / "seed.txt").write_text("seed\n")
    (app / "pipe" / "sweep.yaml").write_text(_sweep_pipe(N_RERUN))
    (app / "pipe" / "plain.yaml").write_text(_plain_pipe(N_RERUN))
    (app / "pipe" / "grid.yaml").write_text(_sweep_pipe(N_GRID))
    return app


def _env(root: Path, home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPIPE_")}
    env.update(MLPIPE_HOME=str(root / home), MLPIPE_APPS=str(root / "apps"))
    return env


def _ml(*args: str) -> list[str]:
    return [sys.executable, "-m", "mlpipe", *args]


def _rerun(root: Path) -> dict:
    found = {}
    for name in ("plain", "sweep"):
        env = _env(root, f"home-{name}")
        first = run_timed(_ml("runpipe", f"sw/pipe/{name}.yaml", "-j", "2"), env=env)
        again = [run_timed(_ml("runpipe", f"sw/pipe/{name}.yaml"), env=env) for _ in range(REPEATS)]
        if "nothing to do" not in again[-1].stderr:
            raise SystemExit(f"{name}: the rerun did something:\n{again[-1].stderr}")
        found[name] = {"first_run_s": round(first.wall_s, 2), "noop": Stats.of(again).as_json()}
    found["ratio"] = round(found["sweep"]["noop"]["median_s"] / found["plain"]["noop"]["median_s"], 3)
    return found


def _planning(root: Path) -> dict:
    os.environ.update(_env(root, "home-grid"))
    from mlpipe.home.loader import load_plan
    from mlpipe.home.settings import init_home, load_settings

    settings = load_settings()
    init_home(settings)
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        plan, _apps = load_plan(settings, "sw/pipe/grid.yaml")
        times.append(time.perf_counter() - started)
    assert len(plan.jobs) == N_GRID
    dry = [run_timed(_ml("runpipe", "sw/pipe/grid.yaml", "-n"), env=_env(root, "home-grid")) for _ in range(3)]
    median = sorted(times)[len(times) // 2]
    return {"load_plan_s": {"median_s": round(median, 4), "runs_s": [round(t, 4) for t in times]},
            "dry_run_process": Stats.of(dry).as_json()}


def _records(root: Path) -> dict:
    from mlpipe.store.atomic import write_json_atomic
    from mlpipe.store.records import rebuild_index

    jobs = root / "home-metrics" / "jobs"
    now = time.time()
    for i in range(N_RECORDS):
        job_id = f"{i:032x}"
        write_json_atomic(jobs / job_id / "job.json", {
            "job_id": job_id, "pipe": "sw/pipe/big.yaml", "job": f"train__i_{i}", "module": "sw/module/copy",
            "parameters": {"i": i, "lr": 0.01 * (i % 7), "loss": "hinge"}, "inputs": {}, "outputs": {},
            "status": "succeeded", "started": now + i, "ended": now + i + 1, "exit_code": 0, "host": "bench",
            "pid": 1, "sweep": {"job": "train", "point": {"i": i}},
            "metrics": {"accuracy": (i % 97) / 97, "loss": 1 / (i + 1), "per_class.pos": 0.5}})
    rebuild_index(jobs)
    env = _env(root, "home-metrics")
    table = [run_timed(_ml("metrics", "--sort-by", "accuracy", "--desc"), env=env) for _ in range(REPEATS)]
    as_json = [run_timed(_ml("metrics", "--json"), env=env) for _ in range(REPEATS)]
    return {"table": Stats.of(table).as_json(), "json": Stats.of(as_json).as_json()}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-sweeps-") as tmp:
        root = Path(tmp)
        _write_app(root)
        results = {"rerun_1000": _rerun(root), "plan_10000": _planning(root), "metrics_10000": _records(root)}
    out = Path(__file__).with_name("sweeps_results.json")
    out.write_text(json.dumps(results, indent=1) + "\n")
    rerun, plan, metrics = results["rerun_1000"], results["plan_10000"], results["metrics_10000"]
    print(f"no-op rerun, 1,000 jobs: plain {rerun['plain']['noop']['median_s']:.2f} s, "
          f"1,000-member sweep {rerun['sweep']['noop']['median_s']:.2f} s ({rerun['ratio']:.2f}x; target <= 1.2x)")
    print(f"planning a 10,000-member grid: load_plan {plan['load_plan_s']['median_s']:.2f} s; "
          f"`ml runpipe -n` {plan['dry_run_process']['median_s']:.2f} s")
    print(f"ml metrics over 10,000 records: table {metrics['table']['median_s']:.2f} s, "
          f"--json {metrics['json']['median_s']:.2f} s (target < 1 s)")
    print(f"written to {out.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
