"""Benchmark the Dask executor against local runs (issue 15's three speed figures).

    python -m bench.dask [--trivial 200] [--sleepy 20]

    (1) TRIVIAL independent trivial jobs: `ml runpipe -j 2` (local) vs `--scheduler local:2`  target <= 2x
    (2) SLEEPY jobs of 1 s each on a real cluster (`dask scheduler` + 2 `dask worker`s, the
        SeaweedFS mirror of tests/s3fixture.py)                                                 target < 12 s
    (3) the no-op rerun of (2)'s pipe through the cluster vs the no-op rerun of (1)'s local run target <= 1.5x

Every `ml` is a separate process, start-up included. Results: a table, and bench/dask_results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tabulate import tabulate

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "dask_results.json"
STEP = '''
import sys, time
time.sleep(float(sys.argv[2]))
open(sys.argv[3], "w").write(sys.argv[1] + "\\n")
'''
STEP_YAML = """
output: {out: {type: text}}
parameters: {name: {type: str}, sleep: {type: float, default: 0}}
cmd: python -m bench_app.module.step name sleep out
"""


def write_app(apps: Path, pipes: dict[str, tuple[int, float]]) -> None:
    app = apps / "bench_app"
    (app / "module").mkdir(parents=True)
    (app / "pipe").mkdir()
    (app / "__init__.py").write_text("")
    (app / "module" / "__init__.py").write_text("")
    (app / "module" / "step.py").write_text(STEP)
    (app / "module" / "step.yaml").write_text(STEP_YAML)
    for name, (count, sleep) in pipes.items():
        jobs = "".join(f"  j{i}: {{module: bench_app/module/step, output: {{out: {name}_{i}}},"
                       f" parameters: {{name: {name}{i}, sleep: {sleep}}}}}\n" for i in range(count))
        (app / "pipe" / f"{name}.yaml").write_text("jobs:\n" + jobs)


def timed(args: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mlpipe", "runpipe", *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"ml runpipe {' '.join(args)} failed:\n{done.stderr}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dask")
    parser.add_argument("--trivial", type=int, default=200)
    parser.add_argument("--sleepy", type=int, default=20)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "tests"))
    from daskfixture import Cluster, Worker
    from s3fixture import S3Server

    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-dask-") as tmp:
        root = Path(tmp)
        write_app(root / "apps", {"trivial": (args.trivial, 0.0), "sleepy": (args.sleepy, 1.0)})
        base = {k: v for k, v in os.environ.items() if not k.startswith("MLPIPE_")}
        base.update(MLPIPE_APPS=str(root / "apps"), PYTHONPATH=str(REPO))

        def home(name: str, **extra: str) -> dict[str, str]:
            return {**base, "MLPIPE_HOME": str(root / name), **extra}

        trivial = "bench_app/pipe/trivial.yaml"
        local_run = timed([trivial, "-j", "2"], home("local"))
        local_noop = timed([trivial, "-j", "2"], home("local"))
        dask_local = timed([trivial, "--executor", "dask", "--scheduler", "local:2"], home("local2"))

        s3 = S3Server(root / "seaweedfs")
        s3.start()
        (root / "cluster").mkdir()
        cluster = Cluster(root / "cluster", s3, s3.make_bucket())
        cluster.workers = [Worker(f"w{i}", root / "cluster" / f"home-w{i}", "") for i in range(2)]
        try:
            cluster.start()
            remote = home("driver", MLPIPE_S3_MIRROR=cluster.mirror_url, **s3.env(),
                          AWS_EC2_METADATA_DISABLED="true")
            sleepy = timed(["bench_app/pipe/sleepy.yaml", "--executor", "dask", "--scheduler", cluster.address], remote)
            timed([trivial, "--executor", "dask", "--scheduler", cluster.address], remote)
            dask_noop = timed([trivial, "--executor", "dask", "--scheduler", cluster.address], remote)
        finally:
            cluster.stop()
            s3.stop()

    rows: list[dict[str, Any]] = [
        {"figure": f"{args.trivial} trivial jobs", "local -j 2 (s)": round(local_run, 2),
         "dask (s)": round(dask_local, 2), "ratio": round(dask_local / local_run, 2), "target": "<= 2x",
         "ok": dask_local <= 2 * local_run},
        {"figure": f"{args.sleepy} jobs of 1 s on 2 workers", "local -j 2 (s)": None, "dask (s)": round(sleepy, 2),
         "ratio": None, "target": "< 12 s", "ok": sleepy < 12},
        {"figure": f"no-op rerun, {args.trivial} jobs", "local -j 2 (s)": round(local_noop, 2),
         "dask (s)": round(dask_noop, 2), "ratio": round(dask_noop / local_noop, 2), "target": "<= 1.5x",
         "ok": dask_noop <= 1.5 * local_noop},
    ]
    print(tabulate(rows, headers="keys"))
    RESULTS.write_text(json.dumps({"cpus": os.cpu_count(), "rows": rows}, indent=1) + "\n")
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
