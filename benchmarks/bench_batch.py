"""Batch scoring benchmark: rows/s and peak memory, local streaming vs Spark, by input size.

Not a test: it prints a Markdown table for docs/scale.md. Each run is the real command
(``mlship predict ...``) in a child process; its memory is sampled every 0.1 s as the summed
RSS of the whole process tree (for Spark: the Python driver, the JVM and its Python
workers; forked workers share pages, so the sum overstates Spark a little). The in-process
``Predictor.predict`` rate on one 50,000-row frame is the ceiling either engine can reach.

    python -m benchmarks.bench_batch --model models/oj-purchase --work /tmp/bench
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmarks.generate_data import generate

ROOT = Path(__file__).resolve().parents[1]
MLSHIP = str(Path(sys.executable).with_name("mlship"))


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _tree_rss_kb(root: int) -> int:
    tree, total, todo = _children(), 0, [root]
    while todo:
        pid = todo.pop()
        todo += tree.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def measure(command: list[str], pycache: Path) -> Run:
    """Wall time and peak process-tree RSS of one command; a failure stops the benchmark.

    Bytecode is cached under ``pycache``, as an installed package would have it, even where
    PYTHONDONTWRITEBYTECODE is set: otherwise every Spark worker compiles pandas and
    scikit-learn from source and the start-up cost measured is that, not ours.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env |= {"PYSPARK_PYTHON": sys.executable, "PYTHONPYCACHEPREFIX": str(pycache)}
    start = time.perf_counter()
    child = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kb(child.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = child.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{stderr[-2000:]}")
    return Run(seconds, peak / 1024)


def predict_command(engine: str, model: Path, source: Path, output: Path) -> list[str]:
    command = [MLSHIP, "predict", "--model", str(model), "--input", str(source)]
    command += ["--output", str(output), "--id-column", "row_id"]
    if engine == "spark":
        command += ["--engine", "spark", "--master", "local[2]"]
    return command


def in_process_rate(model: Path, source: Path, repeats: int) -> float:
    """Rows/s of ``Predictor.predict`` on a 50,000-row frame already in memory."""
    import pyarrow.parquet as pq

    from mlship.scoring.predictor import Predictor

    predictor = Predictor.load(model)
    frame = next(pq.ParquetFile(source).iter_batches(batch_size=50_000)).to_pandas()
    predictor.predict_frame(frame.head(100))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.predict_frame(frame)
        times.append(time.perf_counter() - start)
    return len(frame) / statistics.median(times)


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True, help="Scratch dir for data/output.")
    parser.add_argument("--source", type=Path, default=ROOT / "data" / "oj.csv")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--engines", nargs="+", default=["local", "spark"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    source = pd.read_csv(args.source)
    inputs = {}
    for size in [1_000, *args.sizes]:
        path = args.work / f"rows-{size}.parquet"
        if not path.exists():
            generate(source, size, path, seed=0)
        inputs[size] = path
    rows = [
        "| engine | rows | runs | wall s (median) | rows/s (median) | peak RSS MB (median / max) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    rate = in_process_rate(args.model, inputs[args.sizes[0]], args.repeats)
    rows.append(f"| `Predictor.predict` in process (ceiling) | 50,000 | {args.repeats} | | "
                f"{rate:,.0f} | |")  # fmt: skip
    pycache = args.work / "pycache"
    for engine in args.engines:
        warm = args.work / f"out-{engine}-warmup.parquet"  # fills the bytecode cache; untimed
        measure(predict_command(engine, args.model, inputs[1_000], warm), pycache)
        subprocess.run(["rm", "-rf", str(warm)], check=True)
        for size in [1_000, *args.sizes]:
            runs = []
            for i in range(args.repeats):
                out = args.work / f"out-{engine}-{size}-{i}.parquet"
                command = predict_command(engine, args.model, inputs[size], out)
                runs.append(measure(command, pycache))
                subprocess.run(["rm", "-rf", str(out)], check=True)
                print(f"{engine} {size:,} run {i + 1}: {runs[-1]}", file=sys.stderr, flush=True)
            wall = statistics.median(r.seconds for r in runs)
            peaks = [r.peak_mb for r in runs]
            rows.append(
                f"| {engine} | {size:,} | {len(runs)} | {wall:.1f} | {size / wall:,.0f} | "
                f"{statistics.median(peaks):,.0f} / {max(peaks):,.0f} |"
            )
    print(f"Machine: {machine()}\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
