"""A real `mlship serve` process on a free loopback port, and raw keep-alive connections to it.

Tests that are about the wire (connections kept alive or closed, signals, exit status) need a
real server: the in-process TestClient has no connections and no signals.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tests.conftest import OJ_CSV
from tests.services import HOST, free_port, http_ok, running

MLSHIP = Path(sys.executable).with_name("mlship")
# Nothing of the test runner's environment may choose the port, host or platform contract.
CLEAN_ENV: dict[str, str | None] = {
    name: None
    for name in (
        "PORT", "AIP_HTTP_PORT", "AIP_PREDICT_ROUTE", "AIP_HEALTH_ROUTE",
        "SAGEMAKER_BIND_TO_PORT", "MLSHIP_HOST", "MLSHIP_PORT", "MLSHIP_API_KEYS_FILE",
        "MLSHIP_GRACE_SECONDS", "MLSHIP_WORKERS", "MLSHIP_DOCS", "MLSHIP_EXTRA_COLUMNS",
    )
}  # fmt: skip


def oj_records(n: int) -> list[dict[str, Any]]:
    """``n`` OJ rows as records (the training rows, repeated), without the target."""
    frame = pd.read_csv(OJ_CSV).drop(columns=["Purchase", "STORE"])
    repeated = pd.concat([frame] * (n // len(frame) + 1), ignore_index=True).head(n)
    return repeated.to_dict(orient="records")


@dataclass
class Live:
    """A running server: its process, port and log."""

    proc: Any
    port: int
    log: Path

    def connect(self, timeout: float = 30) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(HOST, self.port, timeout=timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def live_server(
    model_dir: Path, tmp: Path, *args: str, ready: str = "/ready", timeout: float = 120
) -> Iterator[Live]:
    """`mlship serve --model MODEL_DIR --port P ARGS...`, waited on until ``ready`` answers 200."""
    port = free_port()
    command = [str(MLSHIP), "serve", "--model", str(model_dir), "--port", str(port), *args]
    log = tmp / f"serve-{port}.log"
    with running(
        "mlship serve",
        command,
        log_path=log,
        ready=lambda: http_ok(f"http://{HOST}:{port}{ready}"),
        timeout=timeout,
        cwd=tmp,
        env=CLEAN_ENV,
        grace=30,
    ) as proc:
        yield Live(proc, port, log)


@dataclass
class Reply:
    """A complete reply read off a connection."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def closes(self) -> bool:
        return "close" in self.headers.get("connection", "").lower()


def exchange(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request on ``conn`` and its whole reply (a short read raises)."""
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()  # raises IncompleteRead if the body is cut short
    return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)


JSON = {"Content-Type": "application/json"}
