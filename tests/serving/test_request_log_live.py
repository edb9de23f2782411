"""Request logging on a real `mlship serve`: SIGTERM writes every queued row, workers write
their own files, and a destination that cannot work stops the start in one line."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.serving.live import CLEAN_ENV, JSON, MLSHIP, exchange, live_server, oj_records

pytestmark = pytest.mark.slow
# Nothing is written before the signal: every row on disk was flushed by the shutdown.
NO_ROTATION = ("--log-rotate-rows", "1000000", "--log-rotate-seconds", "3600")


def send(conn: http.client.HTTPConnection, rid: str, rows: int) -> Any:
    body = json.dumps(oj_records(rows)).encode()
    reply = exchange(conn, "POST", "/score", body, {**JSON, "X-Request-Id": rid})
    assert reply.status == 200 and reply.headers["x-request-id"] == rid
    return reply.json()


def test_sigterm_writes_every_queued_row(trained_oj: Path, tmp_path: Path) -> None:
    folder = tmp_path / "requests"
    args = ("--log-requests", str(folder), *NO_ROTATION)
    with live_server(trained_oj / "model", tmp_path, *args) as live:
        conn = live.connect()
        replies = {f"sig-{i}": send(conn, f"sig-{i}", 1 + i % 3) for i in range(30)}
        assert not list(folder.glob("*.parquet"))
        conn.close()  # (an idle keep-alive connection would hold the drain for 5 s)
        live.proc.send_signal(signal.SIGTERM)  # right after the requests
        assert live.proc.wait(timeout=30) == 0, live.log_text()[-2000:]
    table = pq.read_table(folder).to_pylist()
    assert len(table) == sum(len(r["predictions"]) for r in replies.values())
    for rid, reply in replies.items():
        rows = [r for r in table if r["request_id"] == rid]
        assert [r["prediction"] for r in rows] == reply["predictions"]
    assert len(list(folder.glob("*.parquet"))) == 1
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_each_worker_writes_its_own_files_and_no_row_twice(
    trained_oj: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "requests"
    args = ("--workers", "2", "--log-requests", str(folder), *NO_ROTATION)
    with live_server(trained_oj / "model", tmp_path, *args) as live:
        body = json.dumps(oj_records(1)).encode()
        for i in range(40):  # a new connection each: the kernel spreads them over the workers
            for _ in range(100):  # the other worker may still be loading its model (503)
                conn = live.connect()
                headers = {**JSON, "X-Request-Id": f"w-{i}"}
                status = exchange(conn, "POST", "/score", body, headers).status
                conn.close()
                if status == 200:
                    break
                time.sleep(0.1)
        live.proc.send_signal(signal.SIGTERM)  # to the supervisor, which tells each worker
        assert live.proc.wait(timeout=40) == 0, live.log_text()[-2000:]
    files = sorted(folder.glob("*.parquet"))
    ids = [r["request_id"] for f in files for r in pq.read_table(f).to_pylist()]
    assert sorted(ids) == sorted(f"w-{i}" for i in range(40))  # each once
    pids = {f.name.split("-p")[1].split("-")[0] for f in files}
    assert len(pids) == len(files)  # one file per worker that served something


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("nope://bucket/requests/", "Protocol not known: nope"),
        ("/proc/x/requests", "cannot create"),
    ],
)
def test_a_bad_destination_stops_the_start_in_one_line(
    trained_oj: Path, tmp_path: Path, uri: str, says: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    command = [str(MLSHIP), "serve", "--model", str(trained_oj / "model"), "--log-requests", uri]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path
    )
    assert done.returncode == 1
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "--log-requests" in lines[0] and says in lines[0], lines
