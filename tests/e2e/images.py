"""Building and running the scoring image in tests: docker, the engine check, a build through
``mlship image build``, and a container on a free loopback port.

The images themselves are session fixtures (``tests/e2e/conftest.py``): one build of each
runtime per test session, shared by every e2e module.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, run_cli

BASE_IMAGE = os.environ.get("MLSHIP_TEST_BASE_IMAGE", "mlship-base:bookworm")


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def engine_ready() -> bool:
    try:
        return docker("info", check=False).returncode == 0
    except FileNotFoundError:
        return False


def require_docker() -> None:
    """Skip (or, with MLSHIP_REQUIRE_DOCKER=1 as in CI, fail) without an engine and base."""
    if engine_ready() and docker("image", "inspect", BASE_IMAGE, check=False).returncode == 0:
        return
    message = f"no Docker engine or no base image {BASE_IMAGE} (see scripts/)"
    if os.environ.get("MLSHIP_REQUIRE_DOCKER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_image(model_dir: Path, runtime: str) -> str:
    tag = f"mlship-e2e:{runtime}-{uuid.uuid4().hex[:8]}"
    result = run_cli(
        "image", "build", "--model", str(model_dir), "--tag", tag, "--runtime", runtime,
        "--base-image", BASE_IMAGE, "--context", str(ROOT), "--file", str(ROOT / "Dockerfile"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"runtime {runtime}" in result.stdout
    assert not list((ROOT / ".docker-context").glob("model-*")), "staged model left behind"
    return tag


class Container:
    def __init__(
        self, image: str, container_port: int, *args: str, env: dict[str, str] | None = None
    ):
        self.port = free_port()
        env_args = [x for k, v in (env or {}).items() for x in ("-e", f"{k}={v}")]
        self.id = docker(
            "run",
            "-d",
            "--read-only",
            "-p",
            f"127.0.0.1:{self.port}:{container_port}",
            *env_args,
            image,
            *args,
        ).stdout.strip()
        self.url = f"http://127.0.0.1:{self.port}"

    def wait(self, route: str = "/ready", timeout: float = 90) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                if httpx.get(self.url + route, timeout=1).status_code == 200:
                    return time.monotonic() - start
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        logs = docker("logs", self.id, check=False)
        raise AssertionError(f"container not ready: {logs.stdout[-2000:]}{logs.stderr[-2000:]}")

    def logs(self) -> str:
        done = docker("logs", self.id, check=False)
        return done.stdout + done.stderr

    def stop(self) -> None:
        docker("rm", "-f", self.id, check=False)
