"""What request logging costs a 1-row request, in-process: the app with ``--log-requests`` on
(sample rate 1, every request queued and written) against the same app with it off.

Each request goes through the whole ASGI app (middleware, decoding, validation, ONNX, reply)
called directly, with no HTTP client or socket in the way, so the ratio is the service's own.
Rounds alternate off/on; an "on" round ends when its rows are on disk (one file per round), so
the writer thread's work is counted. The figure: the median over rounds of the mean time per
request.

    uv run python benchmarks/bench_request_log.py                    # trains the OJ model
    uv run python benchmarks/bench_request_log.py --model models/oj-purchase --rounds 31
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from mlship.serving.app import create_app
from mlship.serving.settings import ServeSettings

ROOT = Path(__file__).resolve().parents[1]


def train(work: Path) -> Path:
    """The default OJ model (configs/base.yaml) trained into ``work``."""
    command = [
        str(Path(sys.executable).with_name("mlship")), "train",
        "--config", str(ROOT / "configs" / "base.yaml"), "--env-dir", str(ROOT / "configs" / "env"),
        f"data.uri={ROOT / 'data' / 'oj.csv'}", f"output.model_dir={work / 'model'}",
        f"tracking.uri=sqlite:///{work / 'mlruns.db'}",
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=work, capture_output=True)
    return work / "model"


def one_row() -> bytes:
    frame = pd.read_csv(ROOT / "data" / "oj.csv").drop(columns=["Purchase", "STORE"])
    return json.dumps(frame.head(1).to_dict(orient="records")).encode()


async def call(app: Any, body: bytes) -> int:
    """One POST /score through the ASGI app; the reply's status."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/score", "raw_path": b"/score", "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8888),
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    }  # fmt: skip
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def written(app: Any) -> float:
    registry = app.state.service.metrics.registry
    return float(registry.get_sample_value("mlship_request_log_written_rows_total") or 0)


async def per_request(app: Any, body: bytes, requests: int) -> float:
    """Mean seconds per request, until the request log (if on) has written every row."""
    target = written(app) + requests if app.state.service.request_log else 0
    start = time.perf_counter()
    for _ in range(requests):
        if await call(app, body) != 200:
            raise RuntimeError("a request failed")
    while written(app) < target:  # the writer's work counts against logging
        await asyncio.sleep(0.0005)
    return (time.perf_counter() - start) / requests


async def measure(model: Path, folder: Path, rounds: int, requests: int) -> dict[str, Any]:
    body = one_row()
    apps = {
        "off": create_app(ServeSettings(model_dir=model), background_load=False, settle_heap=True),
        "on": create_app(  # one file per round: its writing is inside the round's time
            ServeSettings(model_dir=model, log_requests=str(folder), log_rotate_rows=requests),
            background_load=False,
            settle_heap=True,  # as the serving process does
        ),
    }
    times: dict[str, list[float]] = {"off": [], "on": []}
    contexts = [app.router.lifespan_context(app) for app in apps.values()]
    for context in contexts:
        await context.__aenter__()
    try:
        for app in apps.values():
            await per_request(app, body, requests)  # warm-up
        for i in range(rounds):  # alternate which goes first: drifts in load hit both
            for name in ("off", "on") if i % 2 == 0 else ("on", "off"):
                times[name].append(await per_request(apps[name], body, requests))
    finally:
        for context in contexts:
            await context.__aexit__(None, None, None)
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    written = len(pd.read_parquet(folder)) if list(folder.glob("*.parquet")) else 0
    return {"off_us": off * 1e6, "on_us": on * 1e6, "ratio": on / off, "rows_written": written}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, help="A saved model dir (default: train OJ).")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=1000, help="Requests per round.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-request-log-") as tmp:
        work = Path(tmp)
        model = args.model.resolve() if args.model else train(work)
        result = asyncio.run(measure(model, work / "requests", args.rounds, args.requests))
    print(
        f"1-row POST /score, in-process, median of {args.rounds} rounds x {args.requests}: "
        f"off {result['off_us']:.0f} us, on {result['on_us']:.0f} us, "
        f"ratio {result['ratio']:.3f} ({result['rows_written']:,} rows written)"
    )


if __name__ == "__main__":
    main()
