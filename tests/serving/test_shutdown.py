"""Shutdown under load, against a real `mlship serve`: SIGTERM drains and exits 0.

What a drained stop means here: ``/ready`` answers 503 at once; no new connection is accepted;
a request in flight (a 10,000-row body, half sent when the signal comes) completes with 200;
a request sent on a connection that was already open gets a complete reply carrying
``Connection: close`` (never a read error); the process exits with status 0 within the grace
period, and when the grace period runs out it still exits 0, on time.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlship.serving.app import create_app
from mlship.serving.settings import ServeSettings
from mlship.serving.shutdown import Drain
from tests.services import HOST
from tests.serving.live import JSON, Live, exchange, live_server, oj_records

pytestmark = [pytest.mark.slow, pytest.mark.integration]

GRACE = 10
ROWS = 10_000


@pytest.fixture(scope="module")
def big_body() -> bytes:
    return json.dumps(oj_records(ROWS)).encode()


@pytest.fixture(scope="module")
def small_body() -> bytes:
    return json.dumps(oj_records(2)).encode()


def start_upload(live: Live, body: bytes) -> Any:
    """A POST /score whose headers and first half are sent; the rest is up to the caller.

    The connection first gets a 200 from ``GET /ready``, so a worker that has loaded the model
    holds it before the signal (a 503 closes the connection: the next try may reach another
    worker): a connection still in the kernel's accept queue when the listening socket closes
    is reset by the kernel, whatever the server does (the queue is the load balancer's side
    of a drain: Kubernetes stops routing to a terminating pod).
    """
    conn = live.connect(timeout=60)
    deadline = time.monotonic() + 60
    while exchange(conn, "GET", "/ready").status != 200:
        assert time.monotonic() < deadline, live.log_text()[-3000:]
        time.sleep(0.1)
    conn.putrequest("POST", "/score")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    conn.send(body[: len(body) // 2])
    return conn


def refused(port: int, within: float = 2.0) -> bool:
    """Whether new connections are refused (soon) at ``port``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        time.sleep(0.05)
    return False


def wait_exit(live: Live, within: float) -> tuple[int, float]:
    start = time.monotonic()
    code = live.proc.wait(timeout=within)
    return code, time.monotonic() - start


def test_sigterm_drains_then_exits_0(
    trained_oj: Path, tmp_path: Path, big_body: bytes, small_body: bytes
) -> None:
    with live_server(trained_oj / "model", tmp_path, "--grace-seconds", str(GRACE)) as live:
        probe, scorer = live.connect(), live.connect()
        assert exchange(probe, "GET", "/ready").status == 200  # both kept alive, now idle
        assert exchange(scorer, "POST", "/score", small_body, JSON).status == 200
        silent = socket.create_connection((HOST, live.port))  # open, never used
        in_flight = start_upload(live, big_body)
        time.sleep(0.3)  # the server has the headers: the request is in flight

        live.proc.send_signal(signal.SIGTERM)  # to the server only, as Kubernetes does
        signalled = time.monotonic()
        time.sleep(0.3)

        ready = exchange(probe, "GET", "/ready")
        assert ready.status == 503 and ready.closes
        assert ready.json() == {"error": "shutting down", "details": []}
        scored = exchange(scorer, "POST", "/score", small_body, JSON)
        assert scored.status == 200 and scored.closes
        assert len(scored.json()["predictions"]) == 2
        assert refused(live.port)

        in_flight.send(big_body[len(big_body) // 2 :])
        response = in_flight.getresponse()
        reply = json.loads(response.read())
        assert response.status == 200 and len(reply["predictions"]) == ROWS
        assert response.getheader("connection") == "close"

        code, _ = wait_exit(live, within=GRACE + 5)
        elapsed = time.monotonic() - signalled
        silent.close()
    assert code == 0, live.log_text()[-3000:]
    assert elapsed < GRACE, elapsed  # the idle connection was closed after keep-alive (5 s)


def test_grace_period_bounds_a_stuck_request(
    trained_oj: Path, tmp_path: Path, big_body: bytes
) -> None:
    grace = 2
    with live_server(trained_oj / "model", tmp_path, "--grace-seconds", str(grace)) as live:
        stuck = start_upload(live, big_body)  # the second half never comes
        time.sleep(0.3)
        live.proc.send_signal(signal.SIGTERM)
        code, elapsed = wait_exit(live, within=grace + 10)
        stuck.close()
        log = live.log_text()
    assert code == 0, log[-3000:]
    assert grace <= elapsed < grace + 3, elapsed
    assert "Grace period of 2 s over: cancelling 1 request(s)" in log


def test_workers_drain_and_the_supervisor_exits_0(
    trained_oj: Path, tmp_path: Path, big_body: bytes
) -> None:
    args = ("--workers", "2", "--grace-seconds", str(GRACE))
    with live_server(trained_oj / "model", tmp_path, *args) as live:
        deadline = time.monotonic() + 60  # /ready answered: one worker is up, maybe not both
        while live.log_text().count("Application startup complete.") < 2:
            assert time.monotonic() < deadline, live.log_text()[-3000:]
            time.sleep(0.1)
        in_flight = start_upload(live, big_body)
        time.sleep(0.3)
        live.proc.send_signal(signal.SIGTERM)  # to the supervisor, which tells the workers
        time.sleep(1.0)  # it looks at signals every 0.5 s
        assert refused(live.port)
        in_flight.send(big_body[len(big_body) // 2 :])
        response = in_flight.getresponse()
        assert response.status == 200 and len(json.loads(response.read())["predictions"]) == ROWS
        code, _ = wait_exit(live, within=GRACE + 10)
        log = live.log_text()
    assert code == 0, log[-3000:]
    assert log.count("Shutting down: draining") == 2


def test_draining_app_says_not_ready_and_closes_every_connection(trained_oj: Path) -> None:
    drain = Drain()
    app = create_app(
        ServeSettings(model_dir=trained_oj / "model"), background_load=False, drain=drain
    )
    with TestClient(app) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200 and "connection" not in ready.headers
        drain.begin()
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.headers["connection"] == "close"
        health = client.get("/health")
        assert health.status_code == 200 and health.headers["connection"] == "close"
        scored = client.post("/score", json=oj_records(1))
        assert scored.status_code == 200 and scored.headers["connection"] == "close"
