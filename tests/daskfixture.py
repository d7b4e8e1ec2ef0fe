"""A real Dask cluster on loopback for the executor's tests: `dask scheduler` + 3 `dask worker`s.

    dask_cluster   module: a scheduler and 3 workers (one with --resources GPU=1), each worker
                   with its own MLPIPE_HOME, all with one SeaweedFS bucket as their S3 mirror
    cluster_env    function: the cluster emptied (mirror, worker homes, execution log) and this
                   test's driver pointed at the same mirror

Workers run `--no-nanny --nthreads 1`: one process each, so a test can SIGKILL one and see the
job move to another. Every process dies with pytest (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from s3fixture import S3Server, _die_with_parent, free_ports

REPO = Path(__file__).resolve().parent.parent
WORKERS = (("w0", ""), ("w1", ""), ("gpu", "GPU=1"))
START_TIMEOUT_S = 60.0


def dask_cli() -> str:
    beside = Path(sys.executable).with_name("dask")
    found = str(beside) if beside.is_file() else shutil.which("dask")
    if found is None:
        pytest.fail("the `dask` command is not installed: pip install 'mlpipe[dask]' (or the test extras)")
    return found


@dataclass
class Worker:
    name: str
    home: Path
    resources: str
    process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


@dataclass
class Cluster:
    root: Path
    s3: S3Server
    bucket: str
    address: str = ""
    workers: list[Worker] = field(default_factory=list)
    scheduler: subprocess.Popen | None = None

    @property
    def mirror_url(self) -> str:
        return f"s3://{self.bucket}/team"

    @property
    def log(self) -> Path:
        """Every toy job a worker executes appends its name here."""
        return self.root / "executed.log"

    def executed(self) -> list[str]:
        return self.log.read_text().split() if self.log.exists() else []

    def python_env(self) -> dict[str, str]:
        """This checkout's mlpipe first: the scheduler unpickles the tasks too, so it needs it as well."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLPIPE_", "AWS_"))}
        return {**clean, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}

    def worker_env(self, worker: Worker) -> dict[str, str]:
        return {**self.python_env(), **self.s3.env(), "AWS_EC2_METADATA_DISABLED": "true",
                "MLPIPE_HOME": str(worker.home), "MLPIPE_S3_MIRROR": self.mirror_url, "TOY_LOG": str(self.log)}

    def start(self) -> None:
        port = free_ports(1)[0]
        self.address = f"tcp://127.0.0.1:{port}"
        self.scheduler = self._spawn("scheduler", [dask_cli(), "scheduler", "--host", "127.0.0.1", "--port",
                                                   str(port), "--no-dashboard"],
                                     # a task lost with its worker fails at once: MLPipe resubmits it
                                     {**self.python_env(), "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"})
        for worker in self.workers:
            self.start_worker(worker)
        self.wait_for_workers(len(self.workers))

    def start_worker(self, worker: Worker) -> None:
        argv = [dask_cli(), "worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                "--host", "127.0.0.1", "--name", worker.name, "--local-directory", str(self.root / "dask-tmp"),
                "--preload", "mlpipe.engine.worker"]  # as docs/cluster.md recommends
        if worker.resources:
            argv += ["--resources", worker.resources]
        worker.home.mkdir(parents=True, exist_ok=True)
        worker.process = self._spawn(worker.name, argv, self.worker_env(worker))

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        with open(self.root / f"{name}.log", "ab") as log:
            return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    cwd=self.root, preexec_fn=_die_with_parent)

    def client(self):  # noqa: ANN201 - distributed is imported lazily
        from distributed import Client

        return Client(self.address, timeout=30, set_as_default=False)

    def wait_for_workers(self, count: int) -> None:
        with self.client() as client:
            client.wait_for_workers(count, timeout=START_TIMEOUT_S)

    def kill(self, worker: Worker) -> None:
        assert worker.process is not None
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait()

    def revive(self, worker: Worker) -> None:
        """Restart a killed worker (the cluster is shared by the module's tests)."""
        if worker.process is None or worker.process.poll() is not None:
            self.start_worker(worker)
            self.wait_for_workers(len(self.workers))

    def worker_of(self, home: str) -> Worker:
        return next(w for w in self.workers if str(w.home) == home)

    def reset(self) -> None:
        """An empty mirror, empty worker caches and records, an empty execution log."""
        client = self.s3.client()
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        keys = [{"Key": item["Key"]} for page in pages for item in page.get("Contents", [])]
        for start in range(0, len(keys), 1000):
            client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys[start:start + 1000]})
        for worker in self.workers:
            for sub in ("cache", "jobs", "bundles", "doit"):
                _remove(worker.home / sub)
        self.log.unlink(missing_ok=True)

    def stop(self) -> None:
        for process in [*(w.process for w in self.workers), self.scheduler]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


def _remove(path: Path) -> None:
    if path.exists():
        for dirpath, _dirs, _files in os.walk(path):
            os.chmod(dirpath, 0o755)  # cache entries are read-only
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def dask_cluster(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("dask")
    cluster = Cluster(root, s3_server, s3_server.make_bucket())
    cluster.workers = [Worker(name, root / f"home-{name}", resources) for name, resources in WORKERS]
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_env(dask_cluster: Cluster, env, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """A clean cluster; the driver (the `env` home) uses its mirror and its scheduler."""
    for worker in dask_cluster.workers:
        dask_cluster.revive(worker)
    dask_cluster.reset()
    monkeypatch.setenv("MLPIPE_S3_MIRROR", dask_cluster.mirror_url)
    monkeypatch.setenv("MLPIPE_EXECUTOR", "dask")
    monkeypatch.setenv("MLPIPE_DASK_SCHEDULER", dask_cluster.address)
    monkeypatch.setenv("TOY_LOG", str(dask_cluster.log))  # jobs run here too (none should)
    return dask_cluster
