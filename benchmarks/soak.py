"""Soak benchmark: one `mlship serve` worker under a bounded mix of good and bad requests.

Starts `mlship serve --workers 1` on 127.0.0.1 (a free port) and drives it for a fixed time
(default 5 minutes) from 16 concurrent keep-alive connections (asyncio + httpx), mixing good
requests (1-row and 1,000-row JSON records) with bad ones (a wrong type, a missing column,
malformed JSON, a boolean in a numeric field, a numeric cell nested 1,000 levels deep, a null
where training had none, an unknown column). The server's resident memory (summed over its
process tree, from /proc) is sampled every 5 s.

    uv run python benchmarks/soak.py --model models/oj-purchase [--seconds 300] [--check]

Without --model (and no models/oj-purchase), it trains the default OJ model into a temp dir
first (`mlship train`, everything written there). Reports requests, errors by status and by
kind, p50/p99 latency, the RSS samples and a trend verdict, and the number of 5xx replies;
prints a table and writes JSON to benchmarks/results/soak-<time>.json. Nothing leaves the
machine. With --check it exits 1 on any 5xx, transport error or upward RSS trend. It is a
benchmark, not a unit test: the client shares the machine's cores with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
MLSHIP = str(VENV_BIN / "mlship") if (VENV_BIN / "mlship").exists() else "mlship"
HOST = "127.0.0.1"
DEEP = 1_000  # the nesting depth the issue reports as a 500 (orjson itself stops at 1,024)

# (kind, weight, expected status). Good traffic is 60% of requests.
MIX: list[tuple[str, int, int]] = [
    ("good_1_row", 45, 200),
    ("good_1000_rows", 15, 200),
    ("wrong_type", 6, 422),
    ("missing_column", 6, 422),
    ("malformed_json", 6, 400),
    ("boolean_number", 6, 422),
    ("deep_nesting", 6, 422),
    ("null_value", 5, 422),
    ("unknown_column", 5, 422),
]


# --------------------------------------------------------------------------------------------
# the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def tree_rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    exit_code: int | None = None


@contextmanager
def serve(model: Path, runtime: str, extra: list[str]) -> Iterator[Server]:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="soak-serve-", suffix=".log")[1])
    command = [
        MLSHIP, "serve", "--model", str(model), "--host", HOST, "--port", str(port),
        "--workers", "1", "--runtime", runtime, *extra,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = Server(proc, f"http://{HOST}:{port}", log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                tail = log.read_text()[-2000:]
                raise RuntimeError(f"mlship serve exited {proc.returncode}: {tail}")
            try:
                if httpx.get(f"{server.url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlship serve not ready in 120 s: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        server.exit_code = proc.returncode


def train_default_model(work: Path) -> Path:
    """Train the default OJ model with every output inside ``work`` (like tests/conftest.py)."""
    model = work / "model"
    command = [
        MLSHIP, "train", "--config", str(ROOT / "configs" / "base.yaml"),
        "--env-dir", str(ROOT / "configs" / "env"),
        f"data.uri={ROOT / 'data' / 'oj.csv'}", f"output.model_dir={model}",
        f"tracking.uri=sqlite:///{work / 'mlruns.db'}",
    ]  # fmt: skip
    print(f"no model given: training the default OJ model into {model} ...", flush=True)
    subprocess.run(command, cwd=work, check=True, stdout=subprocess.DEVNULL, timeout=900)
    return model


# --------------------------------------------------------------------------------------------
# the requests


def json_body(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def bodies(signature: list[dict[str, Any]], data: Path) -> dict[str, bytes]:
    """One prepared body per kind, built from real rows typed by the served signature."""
    with data.open(newline="") as handle:
        raw = list(csv.DictReader(handle))
    numbers = {c["name"] for c in signature if c["type"] in {"number", "integer"}}
    records = [
        {c["name"]: float(row[c["name"]]) if c["name"] in numbers else row[c["name"]]
         for c in signature}
        for row in raw
    ]  # fmt: skip
    while len(records) < 1000:
        records += records
    numeric = next(c["name"] for c in signature if c["name"] in numbers)
    first = records[0]
    good = json_body([first])
    # Spliced as text: json.dumps itself recurses and stops short of 1,000 levels.
    marker = "__soak_deep__"
    deep = json_body([{**first, numeric: marker}]).replace(
        json.dumps(marker).encode(), b"[" * DEEP + json.dumps(first[numeric]).encode() + b"]" * DEEP
    )
    return {
        "good_1_row": good,
        "good_1000_rows": json_body(records[:1000]),
        "wrong_type": json_body([{**first, numeric: "cheap"}]),
        "missing_column": json_body([{k: v for k, v in first.items() if k != numeric}]),
        "malformed_json": good[: len(good) // 2],
        "boolean_number": json_body([{**first, numeric: True}]),
        "deep_nesting": deep,
        "null_value": json_body([{**first, numeric: None}]),
        "unknown_column": json_body([{**first, "soak_unknown_column": 1}]),
    }


@dataclass
class Tally:
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    examples: dict[str, str] = field(default_factory=dict)  # first reply per (kind, status)


async def worker(
    client: httpx.AsyncClient, payloads: dict[str, bytes], tally: Tally, rng: random.Random,
    stop_at: float,
) -> None:  # fmt: skip
    kinds = [k for k, _, _ in MIX]
    weights = [w for _, w, _ in MIX]
    headers = {"Content-Type": "application/json"}
    while time.monotonic() < stop_at:
        kind = rng.choices(kinds, weights)[0]
        start = time.perf_counter()
        try:
            reply = await client.post("/score", content=payloads[kind], headers=headers)
            status = str(reply.status_code)
            elapsed = (time.perf_counter() - start) * 1e3
            if f"{kind} {status}" not in tally.examples:
                tally.examples[f"{kind} {status}"] = reply.text[:300]
        except httpx.HTTPError as exc:
            status = f"transport:{type(exc).__name__}"
            elapsed = (time.perf_counter() - start) * 1e3
            tally.examples.setdefault(f"{kind} {status}", str(exc)[:300])
        tally.latencies_ms[kind].append(elapsed)
        tally.statuses[kind][status] += 1


async def sample_rss(pid: int, every: float, stop_at: float, out: list[tuple[float, int]]) -> None:
    start = time.monotonic()
    while True:
        out.append((round(time.monotonic() - start, 1), tree_rss_bytes(pid)))
        remaining = stop_at - time.monotonic()
        if remaining <= 0:
            return
        await asyncio.sleep(min(every, remaining))


async def drive(
    server: Server, payloads: dict[str, bytes], seconds: float, concurrency: int,
    every: float, seed: int,
) -> tuple[Tally, list[tuple[float, int]], float]:  # fmt: skip
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(30.0)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=timeout) as client:
        # Warm-up (not counted): every kind a few times, so first-call costs stay out of it.
        warm = Tally()
        await asyncio.gather(
            *(worker(client, payloads, warm, random.Random(seed - i), time.monotonic() + 3)
              for i in range(concurrency))
        )  # fmt: skip
        tally, samples = Tally(), []
        start = time.monotonic()
        stop_at = start + seconds
        tasks = [
            worker(client, payloads, tally, random.Random(seed + i), stop_at)
            for i in range(concurrency)
        ]
        await asyncio.wait_for(
            asyncio.gather(sample_rss(server.proc.pid, every, stop_at, samples), *tasks),
            timeout=seconds + 60,  # a request never takes longer than its 30 s timeout
        )
        return tally, samples, time.monotonic() - start


# --------------------------------------------------------------------------------------------
# the report


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def slope_per_min(points: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS over time, bytes per minute."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return 0.0 if den == 0 else 60 * cov / den


def rss_trend(samples: list[tuple[float, int]]) -> dict[str, Any]:
    """Upward when RSS grows over the second half by more than max(2 MiB, 1%), by both the
    fitted slope and the last-quarter vs second-quarter medians."""
    n = len(samples)
    second_half = samples[n // 2 :]
    q2 = [s[1] for s in samples[n // 4 : n // 2]] or [samples[0][1]]
    q4 = [s[1] for s in samples[(3 * n) // 4 :]] or [samples[-1][1]]
    slope = slope_per_min(second_half)
    span_min = (second_half[-1][0] - second_half[0][0]) / 60 if len(second_half) > 1 else 0.0
    growth_fit = slope * span_min
    growth_quarters = statistics.median(q4) - statistics.median(q2)
    threshold = max(2 * 2**20, 0.01 * statistics.median(q2))
    upward = growth_fit > threshold and growth_quarters > threshold
    return {
        "slope_second_half_mib_per_min": slope / 2**20,
        "growth_second_half_fit_mib": growth_fit / 2**20,
        "median_q2_mib": statistics.median(q2) / 2**20,
        "median_q4_mib": statistics.median(q4) / 2**20,
        "growth_q4_vs_q2_mib": growth_quarters / 2**20,
        "threshold_mib": threshold / 2**20,
        "verdict": "upward" if upward else "flat",
    }


def summarize(tally: Tally, samples: list[tuple[float, int]], elapsed: float) -> dict[str, Any]:
    expected = {k: str(s) for k, _, s in MIX}
    all_latencies = [v for vs in tally.latencies_ms.values() for v in vs]
    by_status: Counter[str] = Counter()
    for counts in tally.statuses.values():
        by_status.update(counts)
    kinds = {}
    for kind, _, want in MIX:
        counts = tally.statuses.get(kind, Counter())
        lat = tally.latencies_ms.get(kind, [])
        kinds[kind] = {
            "expected_status": want,
            "requests": sum(counts.values()),
            "statuses": dict(sorted(counts.items())),
            "unexpected": sum(n for s, n in counts.items() if s != expected[kind]),
            "p50_ms": percentile(lat, 50),
            "p99_ms": percentile(lat, 99),
        }
    requests = sum(by_status.values())
    return {
        "seconds": elapsed,
        "requests": requests,
        "requests_per_s": requests / elapsed if elapsed else 0.0,
        "statuses": dict(sorted(by_status.items())),
        "errors_by_status": {s: n for s, n in sorted(by_status.items()) if s != "200"},
        "server_errors_5xx": sum(n for s, n in by_status.items() if s.startswith("5")),
        "transport_errors": sum(n for s, n in by_status.items() if s.startswith("transport")),
        "p50_ms": percentile(all_latencies, 50),
        "p99_ms": percentile(all_latencies, 99),
        "kinds": kinds,
        "rss_samples": [{"t_s": t, "rss_mib": rss / 2**20} for t, rss in samples],
        "rss_trend": rss_trend(samples),
        "examples": dict(sorted(tally.examples.items())),
    }


def table(report: dict[str, Any]) -> str:
    s = report["summary"]
    lines = [
        f"soak: {s['requests']:,} requests in {s['seconds']:.0f} s "
        f"({s['requests_per_s']:,.0f}/s), concurrency {report['concurrency']}, 1 worker, "
        f"runtime {report['runtime']}",
        "",
        "| kind | expected | requests | statuses | unexpected | p50 ms | p99 ms |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for kind, k in s["kinds"].items():
        statuses = ", ".join(f"{st}: {n:,}" for st, n in k["statuses"].items())
        lines.append(
            f"| {kind} | {k['expected_status']} | {k['requests']:,} | {statuses} | "
            f"{k['unexpected']:,} | {k['p50_ms']:.2f} | {k['p99_ms']:.2f} |"
        )
    lines.append(
        f"| **all** | | **{s['requests']:,}** | | | **{s['p50_ms']:.2f}** | **{s['p99_ms']:.2f}** |"
    )
    errors = ", ".join(f"{st}: {n:,}" for st, n in s["errors_by_status"].items()) or "none"
    trend = s["rss_trend"]
    rss = " ".join(f"{p['rss_mib']:.1f}" for p in s["rss_samples"])
    lines += [
        "",
        f"errors by status (non-200): {errors}",
        f"5xx replies: {s['server_errors_5xx']:,}; transport errors: {s['transport_errors']:,}",
        f"RSS MiB every {report['sample_every_s']:g} s: {rss}",
        f"RSS trend: {trend['verdict']} (second-half slope "
        f"{trend['slope_second_half_mib_per_min']:+.2f} MiB/min, fitted growth "
        f"{trend['growth_second_half_fit_mib']:+.2f} MiB; median last quarter "
        f"{trend['median_q4_mib']:.1f} vs second quarter {trend['median_q2_mib']:.1f} MiB; "
        f"threshold {trend['threshold_mib']:.1f} MiB)",
        f"server exit code after SIGTERM: {report['server_exit_code']}",
    ]
    return "\n".join(lines)


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return result.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "src_dirty": bool(git("status", "--short", "src"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="saved model dir (default: models/oj-purchase)")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "oj.csv", help="rows to send")
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sample-every", type=float, default=5.0, help="RSS sampling period, s")
    parser.add_argument("--runtime", default="auto", help="mlship serve --runtime")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--serve-arg", action="append", default=[], help="extra serve argument")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--check", action="store_true", help="exit 1 on 5xx/transport/RSS up")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="soak-"))
    model = args.model or ROOT / "models" / "oj-purchase"
    if args.model is None and not (model / "MLmodel").exists():
        model = train_default_model(work)
    model = model.resolve()

    with serve(model, args.runtime, args.serve_arg) as server:
        metadata = httpx.get(f"{server.url}/metadata", timeout=10).json()
        payloads = bodies(metadata["signature"], args.data)
        print(
            f"soaking {server.url} (pid {server.proc.pid}) for {args.seconds:g} s at "
            f"concurrency {args.concurrency} ...",
            flush=True,
        )
        tally, samples, elapsed = asyncio.run(
            drive(server, payloads, args.seconds, args.concurrency, args.sample_every, args.seed)
        )
        alive = server.proc.poll() is None
        try:
            health = httpx.get(f"{server.url}/health", timeout=5).status_code
        except httpx.HTTPError as exc:
            health = f"transport:{type(exc).__name__}"
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "git": git_state(),
        "pythonpath": os.environ.get("PYTHONPATH"),
        "model": {k: metadata.get(k) for k in ("name", "version", "algorithm", "runtime")},
        "runtime": metadata.get("runtime", args.runtime),
        "concurrency": args.concurrency,
        "sample_every_s": args.sample_every,
        "seed": args.seed,
        "mix": [{"kind": k, "weight": w, "expected_status": s} for k, w, s in MIX],
        "deep_nesting_depth": DEEP,
        "summary": summarize(tally, samples, elapsed),
        "server_alive_at_end": alive,
        "health_after_soak": health,
        "server_exit_code": server.exit_code,
        "server_log_tail": server.log.read_text(errors="replace")[-3000:],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"\nsaved {out}")
    summary = report["summary"]
    failed = (
        summary["server_errors_5xx"] > 0
        or summary["transport_errors"] > 0
        or summary["rss_trend"]["verdict"] == "upward"
    )
    if args.check and failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
