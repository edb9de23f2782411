"""Byte-compile what a serving process imports: ``python -m mlship.deploy.warmup MODEL_DIR``.

Run at image build, in the builder stage. The serving dependencies are installed without
bytecode (``pip install --no-compile``); this starts one real ``mlship serve`` on loopback
with bytecode writing on, waits for ``/ready``, touches the other routes (``/metadata``,
``/metrics``, ``/health``, a ``/score`` that is refused) and stops the server with SIGTERM,
then runs the healthcheck module once. Python writes a ``.pyc`` for every module imported on
the way and for nothing else, so the image carries the bytecode a start needs (its root
filesystem is read-only at run time: a module without a ``.pyc`` would be compiled at every
start) without the library bytecode serving never loads (most of scipy and pandas).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROUTES = ("/metadata", "/metrics", "/health")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(url: str, body: bytes | None = None) -> int:
    """The HTTP status of a GET (or a JSON POST with ``body``); 0 when nothing answers."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"error: warm-up server exited with {proc.returncode}")
        if request(url + "/ready") == 200:
            return
        time.sleep(0.2)
    raise SystemExit(f"error: warm-up server not ready in {timeout:.0f} s")


def warm(model_dir: Path, timeout: float = 120) -> None:
    """Start ``mlship serve`` on ``model_dir``, exercise it, stop it (exit 0 expected)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    port = free_port()
    cli = Path(sys.executable).with_name("mlship")
    command = [str(cli), "serve", "--model", str(model_dir), "--port", str(port)]
    proc = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, timeout)
        for route in ROUTES:
            request(url + route)
        request(url + "/score", b"[]")
        request(url + "/score", b'[{"": null}]')
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    if code != 0:
        raise SystemExit(f"error: warm-up server stopped with exit {code}")
    # The image's HEALTHCHECK: its imports, in a process of its own (it fails here, no server).
    subprocess.run([sys.executable, "-m", "mlship.cli.healthcheck"], env=env, check=False)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m mlship.deploy.warmup MODEL_DIR")
    warm(Path(sys.argv[1]))
