"""Real services for integration tests: an MLflow tracking server, a SeaweedFS S3 store and a
Google Cloud Storage emulator.

Each runs as a subprocess in its own process group on 127.0.0.1 with free ports, is waited on
until it answers (a bounded wait that fails with the tail of its log), and is torn down by
killing the whole group: SIGTERM, a short grace, then SIGKILL (SeaweedFS takes many seconds to
honour SIGTERM, so it gets SIGKILL almost at once).

Use as context managers::

    with mlflow_server(tmp) as url: ...              # http://127.0.0.1:<port>
    with seaweedfs_s3(tmp) as s3:                    # S3Service
        s3.upload("bucket", "key.csv", local_path)   # creates the bucket if needed
        pd.read_csv("s3://bucket/key.csv", storage_options=s3.storage_options)
    with gcs_emulator(tmp, bucket="data") as gcs:    # GCSService
        gcs.upload("data", "oj.csv", local_path)     # gs://data/oj.csv
        subprocess.run([...], env={**os.environ, **gcs.env})  # STORAGE_EMULATOR_HOST=...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
BIN_DIR = Path(sys.executable).parent

# SeaweedFS without an S3 identity config accepts any access key / secret (and anonymous).
S3_KEY = "mlship-test"
S3_SECRET = "mlship-test-secret"
S3_REGION = "us-east-1"


class ServiceError(RuntimeError):
    """A service did not start (or exited) in time."""


# ---------------------------------------------------------------------------------------------
# generic helpers


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (all sockets held open until every port is chosen)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def closed_port_url() -> str:
    """An http URL on loopback where nothing listens (connections are refused at once)."""
    return f"http://{HOST}:{free_port()}"


def executable(name: str) -> str:
    """The venv's copy of a console script, else whatever is on PATH."""
    local = BIN_DIR / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise ServiceError(f"{name!r} is not installed (not in {BIN_DIR} nor on PATH)")
    return found


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True if ``url`` answers with a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def stop_process(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    """Kill ``proc``'s process group: SIGTERM, wait ``grace`` seconds, then SIGKILL."""
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # Children (e.g. uvicorn workers) may outlive the leader: always sweep the group.
    _signal_group(proc, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _child_env(extra: dict[str, str | None] | None) -> dict[str, str]:
    """The current environment with ``extra`` applied (a ``None`` value removes the key)."""
    env = dict(os.environ)
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)  # the child leads its own session/group (start_new_session)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            if proc.poll() is None:
                proc.send_signal(sig)


@contextlib.contextmanager
def running(
    name: str,
    cmd: list[str],
    *,
    log_path: Path,
    ready: Callable[[], bool],
    timeout: float,
    cwd: Path,
    env: dict[str, str | None] | None = None,
    grace: float = 3.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``cmd`` in a new process group, wait until ``ready()``; always stop it after."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=_child_env(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise ServiceError(
                    f"{name} exited with code {proc.returncode} before it was ready.\n"
                    f"command: {' '.join(cmd)}\n--- last lines of {log_path} ---\n"
                    f"{log_tail(log_path)}"
                )
            if ready():
                break
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{name} did not become ready within {timeout:.0f}s.\n"
                    f"command: {' '.join(cmd)}\n--- last lines of {log_path} ---\n"
                    f"{log_tail(log_path)}"
                )
            time.sleep(0.25)
        yield proc
    finally:
        stop_process(proc, grace=grace)


# ---------------------------------------------------------------------------------------------
# MLflow tracking server


@contextlib.contextmanager
def mlflow_server(tmp_dir: Path, *, timeout: float = 90.0) -> Iterator[str]:
    """``mlflow server`` on SQLite + local proxied artifacts; yields ``http://127.0.0.1:<port>``.

    Artifacts are served by the server (``--serve-artifacts``, the default), so clients log
    over HTTP only and never touch ``tmp_dir`` directly.
    """
    tmp_dir = Path(tmp_dir).resolve()
    tmp_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://{HOST}:{port}"
    cmd = [
        executable("mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{tmp_dir / 'mlflow.db'}",
        "--artifacts-destination",
        str(tmp_dir / "artifacts"),
        "--serve-artifacts",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env: dict[str, str | None] = {
        # The server must not inherit a client-side tracking URI.
        "MLFLOW_TRACKING_URI": None,
        # No huey job-runner subprocess (GenAI jobs): less CPU on start, nothing left in
        # /dev/shm when the group is killed.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "PYTHONUNBUFFERED": "1",
    }
    with running(
        "mlflow server",
        cmd,
        log_path=tmp_dir / "mlflow-server.log",
        ready=lambda: http_ok(f"{url}/health"),
        timeout=timeout,
        cwd=tmp_dir,
        env=env,
    ):
        yield url


# ---------------------------------------------------------------------------------------------
# SeaweedFS S3


@dataclass(frozen=True)
class S3Service:
    """A running S3 endpoint and how to talk to it."""

    endpoint: str
    key: str = S3_KEY
    secret: str = S3_SECRET
    region: str = S3_REGION

    @property
    def storage_options(self) -> dict[str, Any]:
        """fsspec/s3fs ``storage_options`` for pandas (``data.storage_options``)."""
        return {
            "key": self.key,
            "secret": self.secret,
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": self.region},
        }

    def client(self) -> Any:
        import boto3
        from botocore.config import Config  # type: ignore[import-untyped]

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            region_name=self.region,
            config=Config(
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
                s3={"addressing_style": "path"},
            ),
        )

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` (names need 3-63 lowercase chars); no error if it exists."""
        s3 = self.client()
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        except s3.exceptions.BucketAlreadyExists:
            pass

    def upload(self, bucket: str, key: str, path: Path | str) -> str:
        """Upload a local file (creating the bucket if needed); returns its ``s3://`` URI."""
        self.create_bucket(bucket)
        self.client().upload_file(str(path), bucket, key)
        return f"s3://{bucket}/{key}"

    def put_bytes(self, bucket: str, key: str, body: bytes) -> str:
        self.create_bucket(bucket)
        self.client().put_object(Bucket=bucket, Key=key, Body=body)
        return f"s3://{bucket}/{key}"


def _seaweedfs_ready(endpoint: str, master: str) -> Callable[[], bool]:
    """S3 answers ListBuckets and the master knows a volume server (so writes can land)."""

    def check() -> bool:
        if not http_ok(f"{master}/cluster/healthz"):
            return False
        try:
            with urllib.request.urlopen(f"{master}/dir/status", timeout=2) as response:
                if b'"Url"' not in response.read():  # no data node has registered yet
                    return False
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return http_ok(f"{endpoint}/")

    return check


@contextlib.contextmanager
def seaweedfs_s3(tmp_dir: Path, *, timeout: float = 60.0) -> Iterator[S3Service]:
    """``weed server`` (master + volume + filer + S3) on free ports; yields an S3Service.

    Every listening port is chosen explicitly (SeaweedFS otherwise derives gRPC ports as
    port + 10000 and opens Iceberg/Lance ports at fixed defaults), so parallel runs coexist.
    """
    tmp_dir = Path(tmp_dir).resolve()
    data_dir = tmp_dir / "seaweedfs"
    data_dir.mkdir(parents=True, exist_ok=True)
    (
        master,
        master_grpc,
        volume,
        volume_grpc,
        filer,
        filer_grpc,
        s3_port,
        s3_grpc,
    ) = free_ports(8)
    endpoint = f"http://{HOST}:{s3_port}"
    cmd = [
        executable("weed"),
        f"-logdir={tmp_dir}",  # glog files; default is /tmp
        "server",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        f"-dir={data_dir}",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-volume.max=16",
        "-volume.preStopSeconds=0",
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        "-s3",
        f"-s3.port={s3_port}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    ports = (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3_port, s3_grpc)
    try:
        with running(
            "weed server (SeaweedFS)",
            cmd,
            log_path=tmp_dir / "seaweedfs.log",
            ready=_seaweedfs_ready(endpoint, f"http://{HOST}:{master}"),
            timeout=timeout,
            cwd=data_dir,
            grace=1.0,
        ):
            yield S3Service(endpoint)
    finally:
        _remove_weed_sockets(ports)


def _remove_weed_sockets(ports: tuple[int, ...]) -> None:
    """A killed ``weed`` leaves /tmp/seaweedfs-<role>-<port>.sock behind; remove ours only."""
    for port in ports:
        for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            with contextlib.suppress(OSError):
                sock.unlink()


# ---------------------------------------------------------------------------------------------
# Google Cloud Storage emulator (gcp-storage-emulator, the JSON API on loopback)

# gcsfs >= 2026.x otherwise swaps in a class that probes every bucket's type over gRPC, which
# the emulator does not speak: each call then waits ~60 s. Read once, when gcsfs is imported.
GCS_ENV_FLAGS = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}


@dataclass(frozen=True)
class GCSService:
    """A running GCS JSON-API endpoint and how to point clients at it."""

    endpoint: str
    data_dir: Path

    @property
    def storage_options(self) -> dict[str, Any]:
        """gcsfs ``storage_options`` (pandas, ``data.storage_options``): no credentials."""
        return {"endpoint_url": self.endpoint, "token": "anon"}

    @property
    def env(self) -> dict[str, str]:
        """Environment for a client process: gcsfs and google-cloud-storage (MLflow) both
        honour ``STORAGE_EMULATOR_HOST`` and then use anonymous credentials."""
        return {"STORAGE_EMULATOR_HOST": self.endpoint, **GCS_ENV_FLAGS}

    def fs(self) -> Any:
        """A fresh gcsfs filesystem on the emulator (the core class, whatever the env says)."""
        from gcsfs.core import GCSFileSystem  # type: ignore[import-untyped]

        return GCSFileSystem(
            endpoint_url=self.endpoint, token="anon", skip_instance_cache=True, retries=1
        )

    def create_bucket(self, bucket: str) -> None:
        fs = self.fs()
        if not fs.exists(bucket):
            fs.mkdir(bucket)

    def upload(self, bucket: str, key: str, path: Path | str) -> str:
        """Upload a local file (creating the bucket if needed); returns its ``gs://`` URI."""
        self.create_bucket(bucket)
        self.fs().put_file(str(path), f"{bucket}/{key}")
        return f"gs://{bucket}/{key}"

    def upload_dir(self, bucket: str, prefix: str, path: Path | str) -> str:
        """Upload a local directory tree under ``prefix``; returns its ``gs://`` URI."""
        self.create_bucket(bucket)
        fs = self.fs()
        root = Path(path)
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            fs.put_file(str(file), f"{bucket}/{prefix}/{file.relative_to(root).as_posix()}")
        return f"gs://{bucket}/{prefix}"

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object name in ``bucket`` under ``prefix`` (recursive, sorted)."""
        fs = self.fs()
        found = fs.find(f"{bucket}/{prefix}".rstrip("/"), withdirs=False)
        return sorted(str(p).removeprefix(f"{bucket}/") for p in found)


@contextlib.contextmanager
def gcs_emulator(
    tmp_dir: Path, *, bucket: str = "mlship", timeout: float = 30.0
) -> Iterator[GCSService]:
    """``gcp-storage-emulator`` on a free port, storing under ``tmp_dir``; yields a GCSService.

    ``bucket`` is created at start. The emulator lacks the ``moveTo`` API (HTTP 501), so
    ``fs.mv`` retries for ~30 s before falling back to copy + delete.
    """
    tmp_dir = Path(tmp_dir).resolve()
    data_dir = tmp_dir / "gcs"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    endpoint = f"http://{HOST}:{port}"
    cmd = [
        executable("gcp-storage-emulator"),
        "-d",
        str(data_dir),
        "start",
        "--host",
        HOST,
        "--port",
        str(port),
        "--default-bucket",
        bucket,
    ]
    with running(
        "gcp-storage-emulator",
        cmd,
        log_path=tmp_dir / "gcs-emulator.log",
        ready=lambda: http_ok(f"{endpoint}/storage/v1/b/{bucket}"),
        timeout=timeout,
        cwd=tmp_dir,
        env={"PYTHONUNBUFFERED": "1"},
    ):
        yield GCSService(endpoint, data_dir)
