"""mlship vs the servers people already use, same OJ models, one run: `bench_peers.py`.

    uv run python benchmarks/bench_peers.py [--rounds 2] [--seconds 6] [--models lr,rf,hgb]
                                            [--skip-peers] [--concurrency 8]

Trains the three OJ models (`mlship train model.name=...`, a temp SQLite tracking store and
output dir), then serves each, one worker each, with:

- `mlship serve` (`--runtime auto`: what the model dir says it can serve with), `/score`;
- Seldon MLServer 1.7.1 + mlserver-sklearn (V2 inference protocol, pandas codec, one input per
  column, asking for `predict_proba`; `parallel_workers: 0`, as its parallel workers die under
  uvloop), on the same fitted pipeline dumped with joblib;
- `mlflow models serve --env-manager local` on the same model dir (its pyfunc answers the
  label and one probability per class);
- a no-op FastAPI/uvicorn endpoint (benchmarks/noop_app.py): the HTTP ceiling.

mlship, MLflow and the no-op get the same `dataframe_split` body; MLServer the same rows as a
V2 request. Cells: 1 row and 1,000 rows per request at concurrency 8 for `--seconds` each,
requests/s; start to ready (process start to the first 200 from its readiness route) per
round. Each cell is the median over `--rounds`, every server restarted each round.

The peers live in throwaway venvs under a cache dir (`--cache-dir`, default
~/.cache/mlship-bench), created with uv (pip if uv is missing), never in our lock; their
scikit-learn is pinned to ours so the pickled pipeline loads. The load generator is `wrk`
when installed, else the keep-alive asyncio client below; either way it shares the machine
with the server: with `taskset` and 2+ cores the server runs on core 0 and the load on
core 1. Nothing leaves the machine (everything on 127.0.0.1). Prints the table and writes
JSON to benchmarks/results/peers-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
MODELS = {"lr": "logistic_regression", "rf": "random_forest", "hgb": "hist_gradient_boosting"}
MLSERVER = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1"]
SERVERS = ("mlship", "mlserver", "mlflow")
LOADS = (1, 1000)
BODY_SIZES = (1, 1000, 10000)  # --loads picks among these
STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.0f} s] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# load generator: N keep-alive connections, each sending the same request back to back


@dataclass
class Load:
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 reply; its status and whether the server closes the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = dict(
        (k.strip().lower(), v.strip().lower())
        for k, v in (line.split(b":", 1) for line in lines[1:] if b":" in line)
    )
    if b"content-length" in headers:
        await reader.readexactly(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding") == b"chunked":
        while size := int((await reader.readline()).split(b";")[0].strip(), 16):
            await reader.readexactly(size + 2)
        await reader.readline()
    return status, headers.get(b"connection") == b"close"


async def connection(port: int, request: bytes, deadline: float, load: Load) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            status, close = await read_reply(reader)
            load.latencies.append(time.perf_counter() - start)
            load.requests += 1
            load.errors += status != 200
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
    finally:
        writer.close()


async def drive(port: int, request: bytes, concurrency: int, seconds: float) -> dict[str, float]:
    load = Load()
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(*(connection(port, request, deadline, load) for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {
        "requests_per_s": load.requests / elapsed,
        "errors": load.errors,
        "p50_ms": statistics.median(load.latencies) * 1e3 if load.latencies else 0.0,
    }


def loadgen_main(spec: str) -> None:
    """``--loadgen SPEC``: the load generator process (pinned apart from the server)."""
    args = json.loads(spec)
    request = Path(args["request"]).read_bytes()
    with suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    result = asyncio.run(drive(args["port"], request, args["concurrency"], args["seconds"]))
    print(json.dumps(result))


JSON_HEADERS = {"Content-Type": "application/json"}


def http_request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head = f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\n{lines}Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


WRK_LUA = """wrk.method = "POST"
{headers}
local f = io.open("{body}", "rb")
wrk.body = f:read("*all")
f:close()
"""


def wrk_command(
    port: int, path: str, body: Path, concurrency: int, seconds: float, headers: dict[str, str]
) -> list[str]:
    script = body.with_suffix(".lua")
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script.write_text(WRK_LUA.replace("{body}", str(body)).replace("{headers}", lines))
    return [
        "wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "-s", str(script),
        f"http://{HOST}:{port}{path}",
    ]  # fmt: skip


def parse_wrk(out: str) -> dict[str, float]:
    import re

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": float(rps[1]) if rps else 0.0,
        "errors": int(non2xx[1]) if non2xx else 0,
        "p50_ms": 0.0,
    }


@dataclass(frozen=True)
class Pinning:
    server: list[str]
    load: list[str]

    @classmethod
    def choose(cls, enabled: bool) -> Pinning:
        if enabled and shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
            return cls(["taskset", "-c", "0"], ["taskset", "-c", "1"])
        return cls([], [])


def measure(
    port: int, server: Server, body: Path, concurrency: int, seconds: float, pin: Pinning
) -> dict[str, float]:
    """One cell: requests/s of ``body`` to the server at ``concurrency`` for ``seconds``."""
    path, headers = server.score, server.headers
    if shutil.which("wrk"):
        command = [*pin.load, *wrk_command(port, path, body, concurrency, seconds, headers)]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        return parse_wrk(out)
    request = body.with_suffix(".http")
    request.write_bytes(http_request(path, body.read_bytes(), headers))
    spec = {"port": port, "request": str(request), "concurrency": concurrency, "seconds": seconds}
    command = [*pin.load, sys.executable, str(Path(__file__)), "--loadgen", json.dumps(spec)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


# --------------------------------------------------------------------------------------------
# servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def get_status(port: int, path: str) -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return 0
    finally:
        conn.close()


def post(port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        conn.request("POST", path, body, headers or JSON_HEADERS)
        reply = conn.getresponse()
        data = reply.read()
        if reply.status != 200:
            raise RuntimeError(f"POST {path}: {reply.status} {data[:300]!r}")
        return data
    finally:
        conn.close()


@dataclass(frozen=True)
class Server:
    """How to start one server, where it says it is ready, where it scores, what it is sent."""

    name: str
    command: list[str]
    ready: str
    score: str
    bodies: dict[int, Path]
    proba: Callable[[bytes], float]  # P(positive class) of row 0 in a reply
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON_HEADERS))


@dataclass
class Running:
    port: int
    seconds_to_ready: float
    proc: subprocess.Popen[bytes]


@contextmanager
def running(server: Server, pin: Pinning, work: Path, timeout: float = 180) -> Iterator[Running]:
    port = free_port()
    command = [*pin.server, *(part.replace("{port}", str(port)) for part in server.command)]
    log = work / f"{server.name}-{port}.log"
    with log.open("wb") as out:
        start = time.monotonic()
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=server.cwd,
            env={**os.environ, **server.env}, start_new_session=True,
        )  # fmt: skip
    try:
        while get_status(port, server.ready) != 200:
            if proc.poll() is not None or time.monotonic() - start > timeout:
                raise RuntimeError(f"{server.name} did not get ready: {log.read_text()[-3000:]}")
            time.sleep(0.05)
        yield Running(port, time.monotonic() - start, proc)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# --------------------------------------------------------------------------------------------
# models, bodies and the peers' venvs


def train(name: str, work: Path) -> Path:
    out = work / "models" / name
    command = [
        str(VENV_BIN / "mlship"), "train", "--config", str(ROOT / "configs" / "base.yaml"),
        "--env-dir", str(ROOT / "configs" / "env"), f"data.uri={ROOT / 'data' / 'oj.csv'}",
        f"model.name={name}",
        f"tracking.uri=sqlite:///{work / 'mlruns.db'}", f"output.model_dir={out}",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"mlship train {name} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return out


def rows(count: int) -> Any:
    import pandas as pd

    frame = pd.read_csv(ROOT / "data" / "oj.csv").drop(columns=["Purchase", "STORE"])
    return pd.concat([frame] * (count // len(frame) + 1), ignore_index=True).head(count)


def split_body(frame: Any) -> bytes:
    """MLflow's ``dataframe_split`` (mlship, MLflow and the no-op take it)."""
    data = json.loads(frame.to_json(orient="split", index=False))
    return json.dumps({"dataframe_split": data}).encode()


def v2_body(frame: Any, categorical: list[str]) -> bytes:
    """A V2 inference request, one input per column, decoded by MLServer's pandas codec."""
    inputs = []
    for column in frame.columns:
        if column in categorical:
            values = frame[column].astype(str).tolist()
            inputs.append({"name": column, "datatype": "BYTES", "shape": [len(values), 1],
                           "data": values, "parameters": {"content_type": "str"}})  # fmt: skip
        else:
            values = frame[column].astype(float).tolist()
            inputs.append({"name": column, "datatype": "FP64", "shape": [len(values), 1],
                           "data": values})  # fmt: skip
    body = {"inputs": inputs, "parameters": {"content_type": "pd"},
            "outputs": [{"name": "predict_proba"}]}  # fmt: skip
    return json.dumps(body).encode()


def model_meta(model_dir: Path) -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load((model_dir / "MLmodel").read_text())["metadata"])


def peer_venv(cache: Path, name: str, packages: list[str]) -> Path:
    """A venv with exactly ``packages`` under ``cache`` (reused when already complete)."""
    venv = cache / name
    marker = venv / ".bench-complete"
    wanted = "\n".join(packages)
    if marker.is_file() and marker.read_text() == wanted:
        return venv
    progress(f"creating venv {venv}: {' '.join(packages)}")
    shutil.rmtree(venv, ignore_errors=True)
    base = sys._base_executable  # type: ignore[attr-defined]
    uv = shutil.which("uv")
    if uv:
        subprocess.run([uv, "venv", "-q", "--python", base, str(venv)], check=True)
        install = [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python")]
    else:
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        install = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*install, *packages], check=True)
    marker.write_text(wanted)
    return venv


def our_version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


# --------------------------------------------------------------------------------------------
# the servers of one model


def write_bodies(work: Path, tag: str, make: Callable[[Any], bytes]) -> dict[int, Path]:
    out = {}
    for count in BODY_SIZES:
        path = work / f"{tag}-{count}.json"
        path.write_bytes(make(rows(count)))
        out[count] = path
    return out


def columnar_body(frame: Any) -> bytes:
    """MLflow's columnar ``{"inputs": {column: [values]}}``."""
    data = json.loads(frame.to_json(orient="split", index=False))
    columns = {name: [row[j] for row in data["data"]] for j, name in enumerate(data["columns"])}
    return json.dumps({"inputs": columns}).encode()


def arrow_body(frame: Any) -> bytes:
    """An Arrow IPC stream of the feature columns."""
    import io

    import pyarrow as pa

    sink = io.BytesIO()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def arrow_proba(reply: bytes, positive: str) -> float:
    import pyarrow as pa

    return float(pa.ipc.open_stream(reply).read_all().column(f"proba_{positive}")[0].as_py())


ARROW = "application/vnd.apache.arrow.stream"
# mlship's body variants: (name, body maker, route, headers, P(positive) of row 0)
VARIANTS: dict[str, tuple[Callable[[Any], bytes], str, dict[str, str], str]] = {
    "split": (split_body, "/score", JSON_HEADERS, "records"),
    "columnar": (columnar_body, "/score?format=columnar", JSON_HEADERS, "columnar"),
    "arrow": (arrow_body, "/score", {"Content-Type": ARROW, "Accept": ARROW}, "arrow"),
}


def mlship_server(
    model_dir: Path, work: Path, positive: str, options: argparse.Namespace, variant: str
) -> Server:
    command = [
        str(VENV_BIN / "mlship"), "serve", "--model", str(model_dir), "--host", HOST,
        "--port", "{port}", "--workers", "1", "--max-rows", "100000",
        "--runtime", options.runtime, "--threads", str(options.threads),
    ]  # fmt: skip
    make, route, headers, reply = VARIANTS[variant]
    readers: dict[str, Callable[[bytes], float]] = {
        "records": lambda r: float(json.loads(r)["probabilities"][0][positive]),
        "columnar": lambda r: float(json.loads(r)["probabilities"][positive][0]),
        "arrow": lambda r: arrow_proba(r, positive),
    }
    return Server(
        "mlship" if variant == "split" else f"mlship {variant}",
        command,
        "/ready",
        route,
        write_bodies(work, variant, make),
        readers[reply],
        headers=dict(headers),
    )


def mlserver_server(model_dir: Path, work: Path, venv: Path, meta: dict[str, Any]) -> Server:
    import pickle

    import joblib  # type: ignore[import-untyped]

    folder = work / f"mlserver-{model_dir.name}"
    (folder / "oj").mkdir(parents=True, exist_ok=True)
    with (model_dir / "model.pkl").open("rb") as handle:
        joblib.dump(pickle.load(handle), folder / "oj" / "model.joblib")  # our own model dir
    settings = {"name": "oj", "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib"}}  # fmt: skip
    (folder / "oj" / "model-settings.json").write_text(json.dumps(settings))
    script = folder / "start.sh"  # fresh ports for each start
    script.write_text(
        'cat >settings.json <<EOF\n{"parallel_workers": 0, "host": "127.0.0.1", "http_port": $1,'
        ' "grpc_port": $2, "metrics_port": $3, "debug": false}\nEOF\n'
        f'exec "{venv}/bin/mlserver" start .\n'
    )
    index = meta["classes"].index(meta["positive_class"])
    categorical = list(meta.get("categorical") or [])
    return Server(
        "mlserver",
        ["sh", str(script), "{port}", str(free_port()), str(free_port())],
        "/v2/models/oj/ready",
        "/v2/models/oj/infer",
        write_bodies(work, f"v2-{model_dir.name}", lambda f: v2_body(f, categorical)),
        lambda reply: float(json.loads(reply)["outputs"][0]["data"][index]),
        env={"MLSERVER_PARALLEL_WORKERS": "0", "PATH": f"{venv}/bin:{os.environ['PATH']}"},
        cwd=folder,
    )


def mlflow_server(model_dir: Path, work: Path, venv: Path, positive: str) -> Server:
    command = [
        str(venv / "bin" / "mlflow"), "models", "serve", "-m", str(model_dir),
        "--env-manager", "local", "-h", HOST, "-p", "{port}", "-w", "1",
    ]  # fmt: skip
    return Server(
        "mlflow",
        command,
        "/ping",
        "/invocations",
        write_bodies(work, "split", split_body),
        lambda reply: float(json.loads(reply)["predictions"][0][f"proba_{positive}"]),
        env={"PATH": f"{venv}/bin:{os.environ['PATH']}"},
    )


def noop_server(work: Path) -> Server:
    command = [
        str(VENV_BIN / "uvicorn"), "benchmarks.noop_app:app", "--host", HOST, "--port", "{port}",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    return Server(
        "no-op",
        command,
        "/ready",
        "/score",
        write_bodies(work, "split", split_body),
        lambda _reply: float("nan"),
    )


# --------------------------------------------------------------------------------------------
# one round


@dataclass
class Cell:
    model: str
    server: str
    round: int
    seconds_to_ready: float
    runtime: str = ""
    proba: float = float("nan")
    requests_per_s: dict[int, float] = field(default_factory=dict)
    errors: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    concurrency: int
    seconds: float
    pin: Pinning
    work: Path
    loads: tuple[int, ...] = LOADS


def bench_server(model: str, server: Server, round_no: int, plan: Plan) -> Cell:
    progress(f"round {round_no} {model}: starting {server.name}")
    with running(server, plan.pin, plan.work) as live:
        cell = Cell(model, server.name, round_no, live.seconds_to_ready)
        reply = post(live.port, server.score, server.bodies[1].read_bytes(), server.headers)
        cell.proba = server.proba(reply)
        if server.name.startswith("mlship"):
            meta = json.loads(http_get(live.port, "/metadata"))
            cell.runtime = str(meta.get("runtime", ""))
        for count in plan.loads:  # warm-up: a handful of requests of each size
            for _ in range(3):
                post(live.port, server.score, server.bodies[count].read_bytes(), server.headers)
        for count in plan.loads:
            body = server.bodies[count]
            got = measure(live.port, server, body, plan.concurrency, plan.seconds, plan.pin)
            cell.requests_per_s[count] = got["requests_per_s"]
            cell.errors[count] = int(got["errors"])
    progress(
        f"round {round_no} {model}: {server.name} ready in {cell.seconds_to_ready:.1f} s, "
        + ", ".join(f"{n:,} row(s) {cell.requests_per_s[n]:,.1f}/s" for n in plan.loads)
    )
    return cell


def http_get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# the table


def median_of(cells: list[Cell], model: str, server: str, load: int | None) -> float | None:
    values = [
        (c.requests_per_s.get(load, float("nan")) if load else c.seconds_to_ready)
        for c in cells
        if c.model == model and c.server == server
    ]
    return statistics.median(values) if values else None


def fmt(value: float | None, digits: int = 0) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "" if a is None or not b else f"{a / b:.1f}x"


TITLES = {"mlserver": "MLServer 1.7.1", "mlflow": "mlflow models serve", "no-op": "no-op FastAPI"}


def table(cells: list[Cell], models: list[str]) -> str:
    """requests/s per server (every mlship body variant that ran), then the ratios."""
    present = {c.server for c in cells}
    ours = [n for n in ("mlship", *(f"mlship {v}" for v in VARIANTS)) if n in present]
    columns = [*ours, *(n for n in ("mlserver", "mlflow", "no-op") if n in present)]
    ratios = [(o, p) for o in ours for p in ("mlserver", "mlflow") if p in present]
    loads = sorted({n for c in cells for n in c.requests_per_s})
    head = [TITLES.get(n, n) for n in columns] + [f"{o}/{TITLES[p]}" for o, p in ratios]
    lines = [
        "| model | load | " + " | ".join(head) + " |",
        "|---|---|" + "---:|" * len(head),
    ]
    for model in models:
        runtime = next((c.runtime for c in cells if c.model == model and c.runtime), "?")
        for load in loads:
            value = {n: median_of(cells, "" if n == "no-op" else model, n, load) for n in columns}
            rows_text = "1 row" if load == 1 else f"{load:,} rows"
            figures = [fmt(value[n]) for n in columns]
            figures += [ratio(value[o], value[p]) for o, p in ratios]
            lines.append(f"| {model} ({runtime}) | {rows_text}, c8 | " + " | ".join(figures) + " |")
    servers = [n for n in (*ours, *SERVERS[1:]) if n in present]
    lines += ["", "| model | start to ready, s | " + " | ".join(TITLES.get(n, n) for n in servers)
              + " |", "|---|---|" + "---:|" * len(servers)]  # fmt: skip
    for model in models:
        ready = [fmt(median_of(cells, model, s, None), 1) for s in servers]
        lines.append(f"| {model} | median | {' | '.join(ready)} |")
    return "\n".join(lines)


def agreement(cells: list[Cell], models: list[str]) -> str:
    """Row 0's P(positive) per server: every server must be scoring the same model."""
    parts = []
    for model in models:
        seen = {c.server: c.proba for c in cells if c.model == model}
        parts.append(f"{model}: " + ", ".join(f"{k} {v:.6f}" for k, v in sorted(seen.items())))
    return "row 0 P(positive) by server: " + "; ".join(parts)


# --------------------------------------------------------------------------------------------
# main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0, help="per cell")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--models", default="lr,rf,hgb", help="comma list of lr, rf, hgb")
    parser.add_argument("--skip-peers", action="store_true", help="mlship and the no-op only")
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument(
        "--cache-dir", type=Path,
        default=Path(os.environ.get("MLSHIP_BENCH_CACHE", Path.home() / ".cache" / "mlship-bench")),
    )  # fmt: skip
    parser.add_argument("--runtime", default="auto", help="mlship serve --runtime")
    parser.add_argument("--threads", type=int, default=1, help="mlship serve --threads")
    parser.add_argument(
        "--variants", default="split",
        help="mlship bodies, comma list of split (dataframe_split, records reply), columnar "
        "(columnar inputs, ?format=columnar), arrow (Arrow in and out); split is the main table",
    )  # fmt: skip
    parser.add_argument("--loads", default="1,1000", help="rows per request, comma list")
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.variants = args.variants.split(",")
    args.loads = [int(n) for n in args.loads.split(",")]
    if set(args.loads) - set(BODY_SIZES):
        parser.error(f"--loads: use {', '.join(map(str, BODY_SIZES))}")
    if set(args.variants) - set(VARIANTS):
        parser.error(f"--variants: use {', '.join(VARIANTS)}")
    unknown = set(args.models.split(",")) - set(MODELS)
    if unknown:
        parser.error(f"--models: unknown {', '.join(sorted(unknown))} (use lr, rf, hgb)")
    return args


def model_servers(
    model_dir: Path, plan: Plan, venvs: dict[str, Path], options: argparse.Namespace
) -> list[Server]:
    meta = model_meta(model_dir)
    positive = str(meta["positive_class"])
    servers = [mlship_server(model_dir, plan.work, positive, options, v) for v in options.variants]
    if venvs:
        servers.append(mlserver_server(model_dir, plan.work, venvs["mlserver"], meta))
        servers.append(mlflow_server(model_dir, plan.work, venvs["mlflow"], positive))
    return servers


def setup(args: argparse.Namespace, work: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    venvs: dict[str, Path] = {}
    if not args.skip_peers:
        sklearn = f"scikit-learn=={our_version('scikit-learn')}"
        mlflow = f"mlflow=={our_version('mlflow')}"
        venvs["mlserver"] = peer_venv(args.cache_dir, "mlserver-1.7.1", [*MLSERVER, sklearn])
        venvs["mlflow"] = peer_venv(args.cache_dir, f"mlflow-{mlflow[8:]}", [mlflow, sklearn])
    dirs = {}
    for key in args.models.split(","):
        progress(f"training {MODELS[key]}")
        dirs[MODELS[key]] = train(MODELS[key], work)
    return venvs, dirs


def main() -> None:
    args = parse_args()
    if args.loadgen:
        loadgen_main(args.loadgen)
        return
    work = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    pin = Pinning.choose(not args.no_pin)
    plan = Plan(args.concurrency, args.seconds, pin, work, tuple(args.loads))
    loadgen = "wrk" if shutil.which("wrk") else "asyncio keep-alive client (this file)"
    pinning = "server on core 0, load on core 1" if plan.pin.server else "not pinned"
    progress(f"load generator: {loadgen}; {pinning}; work dir {work}")
    venvs, dirs = setup(args, work)
    servers = {model: model_servers(d, plan, venvs, args) for model, d in dirs.items()}
    cells: list[Cell] = []
    for round_no in range(1, args.rounds + 1):
        cells.append(bench_server("", noop_server(work), round_no, plan))
        for model, group in servers.items():
            order = group if round_no % 2 else list(reversed(group))  # alternate who goes first
            cells += [bench_server(model, server, round_no, plan) for server in order]
    report(args, cells, list(dirs), loadgen, pinning)
    shutil.rmtree(work, ignore_errors=True)


def report(
    args: argparse.Namespace, cells: list[Cell], models: list[str], loadgen: str, pinning: str
) -> None:
    print()
    print(table(cells, models))
    print()
    print(agreement(cells, models))
    print(
        f"requests/s, medians of {args.rounds} round(s), {args.seconds:g} s per cell, "
        f"concurrency {args.concurrency}, one worker each; load: {loadgen}, {pinning}; "
        f"{os.cpu_count()} CPUs, {platform.platform()}"
    )
    errors = sum(sum(c.errors.values()) for c in cells)
    if errors:
        print(f"WARNING: {errors} non-200 replies during the cells")
    out = ROOT / "benchmarks" / "results" / f"peers-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    payload = {"args": {k: str(v) for k, v in vars(args).items()}, "loadgen": loadgen,
               "pinning": pinning, "cells": [asdict(c) for c in cells]}  # fmt: skip
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"saved {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
