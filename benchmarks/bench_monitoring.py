"""What watching the model costs a real server: `mlship serve` on the OJ model with live drift
off, with drift on, and with drift on plus request logging, side by side in one run.

    uv run python -m benchmarks.bench_monitoring [--rounds 3] [--seconds 5] [--model DIR]

The three servers run side by side, one worker each; every round drives each of them in
turn (the order rotates between rounds) with the keep-alive asyncio load generator of
`benchmarks/bench_peers.py` (concurrency 8; `wrk` when installed): 1 row and 1,000 rows per
`/score` request (`dataframe_split`), `--seconds` per cell. Logging writes every request
(sample rate 1) to a temporary folder, rotated every 10,000 rows, so the writer thread's
work is in the figures. With `taskset` and 2+ cores the server runs on core 0 and the load
on core 1. Prints requests/s (and rows/s), medians over the rounds, and the median of each
round's ratio to off. Then live drift alone in-process (the ASGI app called directly, no
HTTP, drift off and on in alternating rounds), the steadier figure on a shared machine.
Trains the default OJ model first unless `--model` names a saved model dir.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_peers import (
    HOST,
    VENV_BIN,
    Pinning,
    Server,
    measure,
    post,
    progress,
    rows,
    running,
    split_body,
    train,
)
from benchmarks.bench_request_log import call

SETTINGS = {
    "off": ["--drift", "off"],
    "drift": ["--drift", "on"],
    "drift+log": ["--drift", "on", "--log-requests", "{log}", "--log-sample-rate", "1"],
}
LOADS = (1, 1000)


def bodies(work: Path) -> dict[int, Path]:
    out = {}
    for count in LOADS:
        path = work / f"split-{count}.json"
        path.write_bytes(split_body(rows(count)))
        out[count] = path
    return out


def server(name: str, model: Path, work: Path, payloads: dict[int, Path]) -> Server:
    log = work / f"requests-{name}"
    flags = [part.replace("{log}", str(log)) for part in SETTINGS[name]]
    command = [
        str(VENV_BIN / "mlship"), "serve", "--model", str(model), "--host", HOST,
        "--port", "{port}", "--workers", "1", "--max-rows", "100000", *flags,
    ]  # fmt: skip
    return Server(name, command, "/ready", "/score", payloads, lambda _: 0.0)


Rounds = list[dict[str, dict[int, float]]]


def bench(servers: list[Server], pin: Pinning, work: Path, args: argparse.Namespace) -> Rounds:
    """requests/s of every setting and load, round by round. The three servers run at once
    (an idle one costs nothing) so that the cells compared are seconds apart, in an order
    that rotates from round to round."""
    with contextlib.ExitStack() as stack:
        ports = {srv.name: stack.enter_context(running(srv, pin, work)).port for srv in servers}
        bodies = servers[0].bodies
        for port in ports.values():  # warm: first-request paths, the model's first call
            post(port, "/score", bodies[LOADS[-1]].read_bytes())
        rounds: Rounds = []
        for number in range(args.rounds):
            progress(f"round {number + 1} of {args.rounds}")
            order = list(ports)[number % 3 :] + list(ports)[: number % 3]
            found: dict[str, dict[int, float]] = {name: {} for name in ports}
            for count in LOADS:
                for name in order:
                    cell = measure(ports[name], "/score", bodies[count], args.concurrency,
                                   args.seconds, pin)  # fmt: skip
                    if cell["errors"]:
                        raise RuntimeError(f"{name}: {cell['errors']} non-200 replies")
                    found[name][count] = cell["requests_per_s"]
            progress(
                "  " + ", ".join(f"{n} {found[n][1]:,.0f}/{found[n][1000]:,.1f}" for n in ports)
            )
            rounds.append(found)
    return rounds


async def in_process(model: Path, payloads: dict[int, Path], rounds: int) -> dict[int, float]:
    """Live drift alone, without HTTP or a second process: the whole ASGI app called in this
    process, drift off and on, rounds alternating; median over rounds of on/off time."""
    from mlship.serving.app import create_app
    from mlship.serving.settings import ServeSettings

    apps = {name: create_app(ServeSettings(model_dir=model, drift=name), background_load=False,
                             settle_heap=True)  # the heap as the serving process leaves it
            for name in ("off", "on")}  # fmt: skip
    ratios: dict[int, float] = {}
    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        for count in LOADS:
            body, requests = payloads[count].read_bytes(), 2000 if count == 1 else 40
            times: dict[str, list[float]] = {"off": [], "on": []}
            for i in range(rounds + 1):  # the first round warms up
                for name in ("off", "on") if i % 2 else ("on", "off"):
                    start = time.perf_counter()
                    for _ in range(requests):
                        if await call(apps[name], body) != 200:
                            raise RuntimeError("a request failed")
                    if i:
                        times[name].append((time.perf_counter() - start) / requests)
            ratios[count] = statistics.median(
                on / off for on, off in zip(times["on"], times["off"], strict=True)
            )
            off, on = (statistics.median(times[n]) * 1e6 for n in ("off", "on"))
            progress(f"in-process, {count} row(s): off {off:,.0f} us, on {on:,.0f} us a request")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--model", type=Path, help="a saved model dir (default: train OJ)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument("--in-process-rounds", type=int, default=15, help="0: skip that part")
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be 2 or more (medians)")
    work = Path(tempfile.mkdtemp(prefix="bench-monitoring-"))
    pin = Pinning.choose(not args.no_pin)
    try:
        model = args.model.resolve() if args.model else train("logistic_regression", work)
        payloads = bodies(work)
        servers = [server(name, model, work, payloads) for name in SETTINGS]
        report(bench(servers, pin, work, args), args, pin)
        if args.in_process_rounds:
            ratios = asyncio.run(in_process(model, payloads, args.in_process_rounds))
            print(f"in-process (ASGI app called directly, drift on / off, median of "
                  f"{args.in_process_rounds} alternating rounds): 1 row {ratios[1]:.3f}, "
                  f"1,000 rows {ratios[1000]:.3f}")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(rounds: Rounds, args: argparse.Namespace, pin: Pinning) -> None:
    """Medians of the throughputs, and medians of each round's ratio to off (cells seconds
    apart: steadier than the ratio of medians on a shared machine)."""

    def median(name: str, count: int) -> float:
        return statistics.median(r[name][count] for r in rounds)

    def ratio(name: str, count: int) -> float:
        return statistics.median(r[name][count] / r["off"][count] for r in rounds)

    c = args.concurrency
    print()
    print(f"| setting | 1 row, c{c}: req/s | ratio to off | 1,000 rows, c{c}: rows/s | ratio |")
    print("|---|---|---|---|---|")
    for name in SETTINGS:
        print(f"| {name} | {median(name, 1):,.0f} | {ratio(name, 1):.3f} "
              f"| {median(name, 1000) * 1000:,.0f} | {ratio(name, 1000):.3f} |")  # fmt: skip
    print()
    for count in LOADS:
        spread = {n: [round(r[n][count] / r["off"][count], 3) for r in rounds] for n in SETTINGS}
        print(f"{count}-row ratio to off, round by round: {spread}")
    pinning = "server on core 0, load on core 1" if pin.server else "not pinned"
    print(
        f"medians of {args.rounds} rounds, {args.seconds:g} s per cell, one worker each, ONNX "
        f"when the dir's twin passed parity; {pinning}; {os.cpu_count()} CPUs, "
        f"{platform.platform()}, Python {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    main()
