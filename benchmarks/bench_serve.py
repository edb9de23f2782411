"""Serving benchmark: `mlship serve` (ONNX and scikit-learn) vs `mlflow models serve`.

Same saved model, same machine, same run. Every server listens on 127.0.0.1 and is driven by
`wrk` (apt: wrk) with bounded duration; nothing leaves the machine. Payloads: 1 row and
1,000 rows (JSON records with float numbers, which all servers accept), at concurrency 1 and
8. Two limits are measured alongside: the in-process raw ONNX predict time and a no-op
endpoint on the same HTTP stack (benchmarks/noop_app.py).

    uv run python benchmarks/bench_serve.py --model models/oj-purchase [--seconds 5] [--repeats 3]

Prints a Markdown table (medians over repeats) and writes JSON next to this file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@dataclass
class Result:
    server: str
    rows: int
    concurrency: int
    requests_per_s: float
    rows_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(name: str, command: list[str], ready_url: str, env: dict[str, str]) -> Iterator[None]:
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - the server writes it while it runs
        prefix=f"bench-{name}-", suffix=".log", delete=False
    )
    proc = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env},
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {Path(log.name).read_text()[-2000:]}")
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            raise RuntimeError(f"{name} not ready in 120 s: {Path(log.name).read_text()[-2000:]}")
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb")
wrk.body = f:read("*all")
f:close()
"""


def run_wrk(
    url: str, body: Path, concurrency: int, seconds: float
) -> tuple[float, float, float, int]:
    """requests/s, p50 ms, p99 ms, non-2xx+socket errors."""
    script = body.with_suffix(".lua")
    script.write_text(LUA.replace("{body}", str(body)))
    threads = 1 if concurrency == 1 else 2
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{int(seconds)}s", "--latency", "-s",
         str(script), url],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"\s+(50|99)%\s+([\d.]+\w+)", out))
    errors = 0
    for pattern in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: .*?(\d+)"):
        match = re.search(pattern, out)
        errors += int(match.group(1)) if match else 0
    return rps, _ms(lat["50"]), _ms(lat["99"]), errors


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def payloads(work: Path) -> dict[int, Path]:
    frame = pd.read_csv(ROOT / "data" / "oj.csv").drop(columns=["Purchase", "STORE"])
    numeric = frame.select_dtypes("number").columns.drop("StoreID")
    frame[numeric] = frame[numeric].astype(float)  # MLflow's signature rejects ints for doubles
    frame["StoreID"] = frame["StoreID"].astype(str)
    out = {}
    for rows in (1, 1000):
        records = pd.concat([frame] * 2).head(rows).to_dict("records")
        path = work / f"records-{rows}.json"
        path.write_text(json.dumps({"dataframe_records": records}))
        out[rows] = path
    return out


def raw_onnx(model: Path) -> dict[int, float]:
    """In-process onnxruntime session.run time (ms), median of many calls: the floor."""
    from mlship.scoring.columns import frame_columns
    from mlship.scoring.predictor import Predictor

    predictor = Predictor.load(model, runtime="onnx")
    frame = pd.read_csv(ROOT / "data" / "oj.csv")
    result = {}
    for rows in (1, 1000):
        head = pd.concat([frame] * 2).head(rows)
        names, values = frame_columns(head, predictor.column_names)
        cols = predictor.validate(predictor.select(names, values, "ignore")).columns
        backend = predictor.backend
        feeds = backend._feeds(cols)  # type: ignore[attr-defined]
        session = backend.session  # type: ignore[attr-defined]
        for _ in range(50):
            session.run(None, feeds)
        times = []
        for _ in range(500 if rows == 1 else 100):
            start = time.perf_counter()
            session.run(None, feeds)
            times.append(time.perf_counter() - start)
        result[rows] = statistics.median(times) * 1e3
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "oj-purchase")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="server names to run")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    model = args.model.resolve()
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    bodies = payloads(work)
    w = str(args.workers)
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    servers = {
        "mlship onnx": (
            [str(VENV_BIN / "mlship"), "serve", "--model", str(model), "--runtime", "onnx",
             "--workers", w, "--host", "127.0.0.1", "--port", "{port}", "--max-rows", "100000"],
            "/score", "/ready"),
        "mlship onnx, 1 worker": (
            [str(VENV_BIN / "mlship"), "serve", "--model", str(model), "--runtime", "onnx",
             "--workers", "1", "--host", "127.0.0.1", "--port", "{port}", "--max-rows", "100000"],
            "/score", "/ready"),
        "mlship sklearn": (
            [str(VENV_BIN / "mlship"), "serve", "--model", str(model), "--runtime", "sklearn",
             "--workers", w, "--host", "127.0.0.1", "--port", "{port}", "--max-rows", "100000"],
            "/score", "/ready"),
        "mlflow models serve": (
            [str(VENV_BIN / "mlflow"), "models", "serve", "-m", str(model), "--env-manager",
             "local", "-h", "127.0.0.1", "-p", "{port}", "-w", w],
            "/invocations", "/ping"),
        "no-op (HTTP ceiling)": (
            [str(VENV_BIN / "uvicorn"), "benchmarks.noop_app:app", "--host", "127.0.0.1",
             "--port", "{port}", "--workers", w, "--no-access-log", "--log-level", "warning"],
            "/score", "/ready"),
    }  # fmt: skip
    results: list[Result] = []
    for name, (command, route, ready) in servers.items():
        if args.only and name not in args.only:
            continue
        port = free_port()
        cmd = [part.replace("{port}", str(port)) for part in command]
        path_env = {**env, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
        with server(name, cmd, f"http://127.0.0.1:{port}{ready}", path_env):
            for rows, body in bodies.items():
                for concurrency in (1, 8):
                    url = f"http://127.0.0.1:{port}{route}"
                    run_wrk(url, body, concurrency, 1)  # warm-up
                    samples = [
                        run_wrk(url, body, concurrency, args.seconds) for _ in range(args.repeats)
                    ]
                    rps = statistics.median(s[0] for s in samples)
                    result = Result(
                        name, rows, concurrency, rps, rps * rows,
                        statistics.median(s[1] for s in samples),
                        statistics.median(s[2] for s in samples),
                        sum(s[3] for s in samples),
                    )  # fmt: skip
                    print(json.dumps(asdict(result)), flush=True)
                    results.append(result)
    raw = raw_onnx(model)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor(),
        },
        "workers": args.workers,
        "seconds": args.seconds,
        "repeats": args.repeats,
        "raw_onnx_ms": raw,
        "results": [asdict(r) for r in results],
    }
    out = ROOT / "benchmarks" / "results" / f"serve-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"\nsaved {out}")


def table(report: dict[str, object]) -> str:
    results = [Result(**r) for r in report["results"]]  # type: ignore[attr-defined]
    raw: dict[int, float] = {int(k): v for k, v in report["raw_onnx_ms"].items()}  # type: ignore[attr-defined]
    lines = [
        "| server | rows/request | concurrency | requests/s | rows/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.server} | {r.rows:,} | {r.concurrency} | {r.requests_per_s:,.0f} | "
            f"{r.rows_per_s:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} |"
        )
    lines.append("")
    lines.append(
        f"raw in-process ONNX predict: 1 row {raw[1] * 1e3:.0f} us, 1,000 rows {raw[1000]:.2f} ms"
    )
    by = {(r.server, r.rows, r.concurrency): r for r in results}
    base = by.get(("mlflow models serve", 1, 8))
    ours = by.get(("mlship onnx", 1, 8))
    noop = by.get(("no-op (HTTP ceiling)", 1, 8))
    if base and ours:
        lines.append(
            f"1-row c8: mlship onnx / mlflow = {ours.requests_per_s / base.requests_per_s:.1f}x"
        )
    if noop and ours:
        share = ours.requests_per_s / noop.requests_per_s
        lines.append(f"1-row c8: mlship onnx / no-op ceiling = {share:.0%}")
    big_base, big_ours = by.get(("mlflow models serve", 1000, 8)), by.get(("mlship onnx", 1000, 8))
    if big_base and big_ours:
        ratio = big_ours.rows_per_s / big_base.rows_per_s
        lines.append(f"1,000-row c8 rows/s: mlship onnx / mlflow = {ratio:.1f}x")
    single = by.get(("mlship onnx", 1, 1))
    if single:
        lines.append(
            f"1-row c1: p50 {single.p50_ms:.2f} ms; server overhead = served p50 / raw = "
            f"{single.p50_ms / raw[1]:.0f}x"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
