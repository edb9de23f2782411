"""Compiled trees: Treelite 4 + TL2cgen against our ONNX twin and scikit-learn, in process.

Issue 12 names TL2cgen (a tree ensemble compiled to C, double thresholds) as a candidate
runtime. This measures it on the OJ models before anything is built on it: ``mlship train``
trains each model into a temp dir; a throwaway venv (``~/.cache/mlship-bench``, never our
lock) with treelite, tl2cgen and our scikit-learn, onnxruntime and pandas versions loads the
saved ``model.pkl`` and ``extra_files/model.onnx`` and times, on the same rows, median per
call over ``--rounds`` rounds:

- ``sklearn``: the fitted pipeline's ``predict_proba`` (preprocessing and trees);
- ``onnx``: the twin in onnxruntime, one input per column as ``OnnxBackend`` feeds it
  (preprocessing and trees);
- ``onnx trees``: the twin's tree ensemble alone (the subgraph from the ``TreeEnsemble``
  node's input to ``probabilities``, cut out with ``onnx.utils.extract_model``), on rows the
  pipeline's preprocessing already turned into the matrix the trees see;
- ``tl2cgen``: the compiled trees alone, on the same matrix (the preprocessing is timed
  apart: ``preprocess``, scikit-learn's).

It prints compile time, the ``.so`` size and parity against scikit-learn (max |dp|, label
mismatches on the 1,000 rows). scikit-learn's forests compare float32 inputs, so a forest's rows
go to TL2cgen rounded to float32 as well (HistGradientBoosting compares float64).

    uv run python benchmarks/bench_treelite.py                   # rf and hgb, ~3 minutes
    uv run python benchmarks/bench_treelite.py --models rf --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"rf": "random_forest", "hgb": "hist_gradient_boosting"}
PEER_PACKAGES = ["treelite==4.8.1", "tl2cgen==1.0.0", "joblib"]
OURS = ["scikit-learn", "onnxruntime", "onnx", "pandas", "numpy"]


def our_version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def venv(cache: Path) -> Path:
    """A venv with the peers and our versions of what the pickle and the twin need."""
    target = cache / "treelite-4.8.1-onnx"
    python = target / "bin" / "python"
    if not python.exists():
        subprocess.run(["uv", "venv", "-q", "--python", "3.11", str(target)], check=True)
        pins = [f"{p}=={our_version(p)}" for p in OURS]
        command = ["uv", "pip", "install", "-q", "--python", str(python), *PEER_PACKAGES, *pins]
        subprocess.run(command, check=True)
    return python


def train(name: str, work: Path) -> Path:
    out = work / name
    command = [
        str(Path(sys.executable).parent / "mlship"), "train",
        "--config", str(ROOT / "configs" / "base.yaml"), "--env-dir", str(ROOT / "configs" / "env"),
        f"data.uri={ROOT / 'data' / 'oj.csv'}", f"model.name={name}", "explain.enabled=false",
        f"tracking.uri=sqlite:///{work / 'mlruns.db'}", f"output.model_dir={out}",
    ]  # fmt: skip
    subprocess.run(command, cwd=work, check=True, capture_output=True)
    return out


# ---------------------------------------------------------------------------------------
# inside the throwaway venv


def per_call(fn: Callable[[], Any], rounds: int, seconds: float) -> float:
    """Median over rounds of the mean seconds per call within a round."""
    fn()
    means = []
    for _ in range(rounds):
        calls, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            fn()
            calls += 1
        means.append(elapsed / calls)
    return statistics.median(means)


def compile_trees(estimator: Any, work: Path, out: dict[str, Any]) -> Any:
    """A TL2cgen predictor for ``estimator``, or None (the reason in ``out``)."""
    import tl2cgen
    import treelite

    start = time.perf_counter()
    try:
        model = treelite.sklearn.import_model(estimator)
    except Exception as exc:  # a converter gap is a result to print
        out["tl2cgen"] = f"treelite cannot import it: {type(exc).__name__}: {exc}"[:300]
        return None
    library = work / "trees.so"
    tl2cgen.export_lib(model, toolchain="gcc", libpath=str(library), nthread=2,
                       params={"parallel_comp": 8})  # fmt: skip
    out["compile_seconds"] = round(time.perf_counter() - start, 1)
    out["so_mb"] = round(library.stat().st_size / 1e6, 2)
    return tl2cgen.Predictor(str(library), nthread=1)


def onnx_trees(path: Path, work: Path, options: Any) -> tuple[Any, str]:
    """A session of the twin's tree ensemble alone, and the name of its input."""
    import onnx
    import onnx.utils
    import onnxruntime as ort

    node = next(n for n in onnx.load(path).graph.node if n.op_type.startswith("TreeEnsemble"))
    cut = work / "trees.onnx"
    onnx.utils.extract_model(str(path), str(cut), [node.input[0]], ["probabilities"])
    return ort.InferenceSession(str(cut), options), node.input[0]


def inner(model_dir: Path, rounds: int, seconds: float, work: Path) -> dict[str, Any]:
    import joblib
    import numpy as np
    import onnxruntime as ort
    import pandas as pd
    import tl2cgen

    pipeline = joblib.load(model_dir / "model.pkl")
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_dir / "extra_files" / "model.onnx"), options)
    inputs = {i.name: i.type for i in session.get_inputs()}
    frame = pd.read_csv(ROOT / "data" / "oj.csv").drop(columns=["Purchase", "STORE"])
    for name, kind in inputs.items():
        if kind == "tensor(string)":  # categorical columns are served as text
            frame[name] = frame[name].astype(str)
    rows = pd.concat([frame] * 2, ignore_index=True).head(1000)
    out: dict[str, Any] = {"model": model_dir.name, "ms": {}}
    predictor = compile_trees(pipeline[-1], work, out)
    trees, trees_input = onnx_trees(model_dir / "extra_files" / "model.onnx", work, options)

    def feeds(part: pd.DataFrame) -> dict[str, np.ndarray]:
        return {
            name: part[name].to_numpy(np.float64 if kind == "tensor(double)" else object)
            .reshape(-1, 1)
            for name, kind in inputs.items()
        }  # fmt: skip

    for n in (1, 1000):
        part, fed = rows.head(n), feeds(rows.head(n))
        timings = {
            "sklearn": per_call(lambda p=part: pipeline.predict_proba(p), rounds, seconds),
            "onnx": per_call(lambda f=fed: session.run(["probabilities"], f), rounds, seconds),
            "preprocess": per_call(lambda p=part: pipeline[:-1].transform(p), rounds, seconds),
        }
        matrix = pipeline[:-1].transform(part).astype(np.float64)
        if type(pipeline[-1]).__name__.startswith("RandomForest"):
            matrix = matrix.astype(np.float32).astype(np.float64)  # what its trees compare
        fed_trees = {trees_input: matrix}
        timings["onnx trees"] = per_call(
            lambda f=fed_trees: trees.run(["probabilities"], f), rounds, seconds
        )
        if n == 1000:
            out["onnx_trees_max_abs_dp"] = float(
                np.abs(
                    trees.run(["probabilities"], fed_trees)[0] - pipeline.predict_proba(part)
                ).max()
            )
        if predictor is not None:
            dmat = tl2cgen.DMatrix(matrix, dtype="float64")
            timings["tl2cgen"] = per_call(lambda d=dmat: predictor.predict(d), rounds, seconds)
            if n == 1000:
                out |= parity(predictor.predict(dmat), pipeline.predict_proba(part))
        out["ms"][n] = {k: round(v * 1e3, 3) for k, v in timings.items()}
    return out


def parity(got: Any, reference: Any) -> dict[str, Any]:
    import numpy as np

    got = got.reshape(len(reference), -1)
    if got.shape[1] != reference.shape[1]:  # binary: P(positive) only
        got = np.c_[1 - got, got]
    return {
        "tl2cgen_max_abs_dp": float(np.abs(got - reference).max()),
        "tl2cgen_label_mismatches": int((got.argmax(axis=1) != reference.argmax(axis=1)).sum()),
    }


# ---------------------------------------------------------------------------------------


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "| model | rows | sklearn ms | onnx ms | onnx trees ms | tl2cgen ms | preprocess ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for n, ms in r["ms"].items():
            keys = ("sklearn", "onnx", "onnx trees", "tl2cgen", "preprocess")
            cells = [ms.get(k) for k in keys]
            shown = ["" if c is None else f"{c:,.3f}" for c in cells]
            lines.append(f"| {r['model']} | {int(n):,} | " + " | ".join(shown) + " |")
    for r in results:
        extra = {k: v for k, v in r.items() if k not in ("model", "ms")}
        lines.append(f"{r['model']}: {json.dumps(extra)}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", default="rf,hgb", help="comma list of rf, hgb")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0, help="per round and cell")
    parser.add_argument("--cache-dir", type=Path, default=Path(
        os.environ.get("MLSHIP_BENCH_CACHE", Path.home() / ".cache" / "mlship-bench")))  # fmt: skip
    parser.add_argument("--inner", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-treelite-") as tmp:
        work = Path(tmp)
        if args.inner:
            print(json.dumps(inner(args.inner, args.rounds, args.seconds, work)))
            return
        python = venv(args.cache_dir)
        results = []
        for key in args.models.split(","):
            model_dir = train(MODELS[key], work)
            command = [str(python), __file__, "--inner", str(model_dir),
                       "--rounds", str(args.rounds), "--seconds", str(args.seconds)]  # fmt: skip
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(report(results))
        print(f"medians of {args.rounds} round(s) of {args.seconds} s, one thread, in process")


if __name__ == "__main__":
    main()
